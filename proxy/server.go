package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"ngxsockify/luahooks"
	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/http1"
	"ngxsockify/proxy/websockify"
)

// Options are the process-level settings of a Server.
type Options struct {
	// ErrorLog receives nginx-style error-log lines. Nil: the config's
	// error_log, or stderr.
	ErrorLog *ErrorLog
	// LuaTimeout bounds one run of a Lua hook (default 1s).
	LuaTimeout time.Duration
	// CheckRequires (-t) makes New fail when a hook requires a module
	// that cannot be found (lua_requires.go).
	CheckRequires bool
	// ConfigureArgs is what ngx.config.nginx_configure() answers in Lua:
	// the "configure arguments" line of -V.
	ConfigureArgs string
}

// Server serves one loaded configuration. Reload swaps in a new one while
// the listeners and the running tunnels stay.
type Server struct {
	opts    Options
	state   atomic.Pointer[state]
	mu      sync.Mutex
	ls      map[string]*listener // by bind key
	servers []*http1.Server
	tunnels *websockify.Tunnels
	logs    *logFiles
	connID  atomic.Uint64
	gens    atomic.Uint64 // the last state's gen
	wg      sync.WaitGroup
	stats   connStats // stub_status (stub_status.go)
	metrics *metrics  // prometheus_metrics (metrics.go)
}

// state is everything derived from one Config: what each module built at
// load, in slices indexed by the IDs the config carries. Reload builds a new
// state and swaps it in whole; requests keep the one they started with.
type state struct {
	cfg      *nginxconf.Config
	gen      uint64 // numbers the states of a Server: its tunnels' websockify.Options.Generation
	elog     *ErrorLog
	groups   map[string]*addrGroup // by listen key (network + addr)
	binds    map[string]bindSpec
	warnings []string // load-time notes, such as Lua syntax errors

	confs   []confRuntime   // by LocConf.ID (HTTP.Confs)
	servers []serverRuntime // by Server.ID (HTTP.Servers)

	lua *luahooks.Runtime // lua: nil when the config has no Lua
	// exitWorker is exit_worker_by_lua's chunk, run by closeLua.
	exitWorker     *luahooks.Chunk
	exitWorkerKind string
	// initWorker is init_worker_by_lua's code, run once by startWorker.
	initWorker     *nginxconf.LuaCode
	initWorkerOnce sync.Once
	chunks         []*luahooks.Chunk                          // lua: by LuaCode.ID (HTTP.LuaCodes); nil: compiled per request, or failed
	upstreams      map[string]websockify.Dialer               // upstream: upstream{} blocks by name (a websockify_pass $var may name one)
	hashKeys       hashKeys                                   // upstream: hash's key of the blocks that have one
	implicit       map[string]websockify.Dialer               // proxy: the servers of constant proxy_pass URLs, by host:port (nginx's implicit upstreams)
	auth           *authCache                                 // auth_basic: htpasswd files by path
	recoders       map[*nginxconf.CharsetMap][2]*recodeTables // charset: each charset_map's tables, as written and reversed
}

// confRuntime is what the modules built at load for one level (http,
// server, location, if or limit_except block).
type confRuntime struct {
	// content answers the request in the content phase in place of the
	// content-phase handlers: the handler of the level's content directive
	// (nginx's clcf->handler). Nil: none.
	content contentHandler
	// logs is set when a log-phase handler writes for this level, so that
	// a tunnel keeps its request for the log line only then.
	logs bool
	// errorLog is the level's own error_log (nil: the main level's).
	errorLog *ErrorLog

	resolver   resolverConf
	lua        luaConf
	websockify websockifyConf
	proxy      proxyConf
	accessLog  accessLogConf
	limits     limitConf
	sub        *subTables // sub_filter with constant patterns
}

// serverRuntime is what the modules built at load for one server block.
type serverRuntime struct {
	tls serverTLS
}

// bindSpec is one socket to open and the listen keys it serves.
type bindSpec struct {
	network, addr string
	tls           bool
	h2            bool // HTTP/2 (http2.go)
}

// New compiles the runtime objects of cfg (Lua chunks, targets, log files,
// certificates). It opens no socket; call Listen and Serve for that.
func New(cfg *nginxconf.Config, opts Options) (*Server, error) {
	s := &Server{opts: opts, ls: map[string]*listener{}, tunnels: &websockify.Tunnels{}, logs: newLogFiles(),
		metrics: newMetrics()}
	st, err := s.build(cfg)
	if err != nil {
		s.logs.close()
		return nil, err
	}
	s.state.Store(st)
	s.stats.cur = &s.state
	s.tunnels.SetLoops(loops(cfg))
	return s, nil
}

// StartWorker runs what nginx's worker runs as it starts, before it
// accepts: init_worker_by_lua (lua.go). The first configuration's waits
// for this call, made once the process runs as the user directive's user
// and the daemon's foreground process has returned; a reload's runs as it
// is built.
func (s *Server) StartWorker() { s.state.Load().startWorker() }

// loops is the number of relay event loops for cfg's worker_processes.
func loops(cfg *nginxconf.Config) int {
	if cfg.WorkerProcesses == 0 {
		return runtime.NumCPU()
	}
	return cfg.WorkerProcesses
}

// ErrorLog is the error log in use.
func (s *Server) ErrorLog() *ErrorLog { return s.state.Load().elog }

// Warnings are load-time notes from compiling the runtime, such as Lua
// syntax errors (nginx reports those only per request).
func (s *Server) Warnings() []string { return s.state.Load().warnings }

func (s *Server) build(cfg *nginxconf.Config) (*state, error) {
	st := &state{
		cfg:    cfg,
		gen:    s.gens.Add(1),
		groups: map[string]*addrGroup{},
		binds:  map[string]bindSpec{},
	}
	st.elog = s.opts.ErrorLog
	if st.elog == nil {
		el, err := s.openErrorLog(cfg.ErrorLog)
		if err != nil {
			return nil, err
		}
		if el == nil {
			el = NewErrorLog(os.Stderr, ngxlog.Err)
		}
		st.elog = el
	}
	h := cfg.HTTP
	if h == nil {
		return st, nil
	}
	if err := st.buildListens(h); err != nil {
		return nil, err
	}
	st.confs = make([]confRuntime, len(h.Confs))
	st.servers = make([]serverRuntime, len(h.Servers))
	if err := provision(s, st); err != nil {
		if st.lua != nil {
			st.lua.Close()
		}
		return nil, err
	}
	return st, nil
}

// buildListens groups servers by listen address and decides which sockets
// to open: a wildcard address on a port serves the specific addresses of
// that port too, as in nginx.
func (st *state) buildListens(h *nginxconf.HTTP) error {
	wildPorts := map[string]bool{}
	for _, srv := range h.Servers {
		for _, l := range srv.Listens {
			if l.Wildcard {
				wildPorts[family(l)+fmt.Sprint(l.Port)] = true
			}
		}
	}
	for _, srv := range h.Servers {
		seen := map[string]bool{}
		for _, l := range srv.Listens {
			key := listenKey(l)
			if seen[key] {
				continue
			}
			seen[key] = true
			g := st.groups[key]
			if g == nil {
				g = newAddrGroup()
				st.groups[key] = g
			}
			g.add(srv, l.DefaultServer)
			g.proxyProtocol = g.proxyProtocol || l.ProxyProtocol
			var b bindSpec
			switch {
			case l.Network == "unix":
				b = bindSpec{network: "unix", addr: l.Addr}
			case l.Wildcard:
				b = bindSpec{network: "tcp4", addr: fmt.Sprintf("0.0.0.0:%d", l.Port)}
				if strings.HasPrefix(l.Addr, "[") {
					b = bindSpec{network: "tcp6", addr: fmt.Sprintf("[::]:%d", l.Port)}
				}
			case wildPorts[family(l)+fmt.Sprint(l.Port)]:
				continue // served by the wildcard socket
			default:
				b = bindSpec{network: "tcp", addr: l.Addr}
			}
			bk := b.network + " " + b.addr
			prev := st.binds[bk]
			b.tls = prev.tls || l.SSL
			b.h2 = prev.h2 || l.HTTP2 || srv.Conf.HTTP2On
			st.binds[bk] = b
		}
	}
	for _, g := range st.groups {
		g.finish()
	}
	return nil
}

func family(l nginxconf.Listen) string {
	if strings.HasPrefix(l.Addr, "[") {
		return "6:"
	}
	return "4:"
}

func listenKey(l nginxconf.Listen) string {
	return l.Network + " " + l.Addr
}

// groupFor returns the servers for a connection accepted on b with local
// address local.
func (st *state) groupFor(b bindSpec, local net.Addr) *addrGroup {
	if b.network == "unix" {
		return st.groups["unix "+b.addr]
	}
	ta, ok := local.(*net.TCPAddr)
	if !ok {
		return nil
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return nil
	}
	ip = ip.Unmap()
	// the keys are built in place: a lookup with string(key) copies nothing
	var buf [64]byte
	key := append(buf[:0], "tcp "...)
	if ip.Is6() {
		key = append(append(ip.AppendTo(append(key, '[')), ']'), ':')
	} else {
		key = append(ip.AppendTo(key), ':')
	}
	key = strconv.AppendInt(key, int64(ta.Port), 10)
	if g, ok := st.groups[string(key)]; ok {
		return g
	}
	if ip.Is4() {
		key = strconv.AppendInt(append(buf[:0], "tcp *:"...), int64(ta.Port), 10)
		if g, ok := st.groups[string(key)]; ok {
			return g
		}
	}
	key = strconv.AppendInt(append(buf[:0], "tcp [::]:"...), int64(ta.Port), 10)
	return st.groups[string(key)]
}

// listener is one open socket.
type listener struct {
	spec bindSpec
	ln   net.Listener
	// accepting is what srv accepts on: ln wrapped by websockify.Listener,
	// which waits on a duplicate of ln's descriptor (nil before Serve).
	accepting net.Listener
	srv       *http1.Server
	h2        h2Conns // its HTTP/2 connections (http2.go)
}

// Listen opens every socket the configuration needs (keeping the ones
// already open from before a reload) and closes those no longer needed.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state.Load()
	keys := make([]string, 0, len(st.binds))
	for k := range st.binds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var opened []*listener
	for _, k := range keys {
		b := st.binds[k]
		if old, ok := s.ls[k]; ok {
			if old.spec == b {
				continue
			}
			// TLS switched on or off for this address: serve it anew.
			// (A listener's spec never changes: requests read it.)
			if old.srv != nil {
				old.srv.Close()
			}
			old.ln.Close()
			delete(s.ls, k)
		}
		ln, err := s.openListener(b) // inherit.go
		if err != nil {
			for _, l := range opened {
				l.ln.Close()
				delete(s.ls, l.spec.network+" "+l.spec.addr)
			}
			return err
		}
		l := &listener{spec: b, ln: ln}
		s.ls[k] = l
		opened = append(opened, l)
	}
	for k, l := range s.ls {
		if _, ok := st.binds[k]; !ok {
			if l.srv != nil {
				l.srv.Close()
			}
			l.ln.Close()
			delete(s.ls, k)
		}
	}
	for _, l := range opened {
		s.startServing(l)
	}
	return nil
}

// connCtx is the context of a client connection's requests, holding what
// the proxy looks up per request: the listener, the connection's number,
// its stub_status counters and its TLS state. One object answers them all
// (a chain of context.WithValue cost five objects per connection), and it
// is allocated with the connection's statConn.
type connCtx struct {
	context.Context
	l   *listener
	id  uint64    // $connection, and the error log's *N
	st  *connStat // nil: not counted (no statConn)
	tls *connTLS  // nil: plain
	// g is the connection's address group in gst, the state in effect
	// when it came (connParams found it): its requests under that state
	// need not search again (group)
	gst *state
	g   *addrGroup
}

type ctxConnKey struct{}

// Value answers ctxConnKey with c, ctxTLSConn with its TLS state, and
// other keys from its parent.
func (c *connCtx) Value(key any) any {
	switch key.(type) {
	case ctxConnKey:
		return c
	case ctxTLSConn:
		if c.tls != nil {
			return c.tls
		}
	}
	return c.Context.Value(key)
}

// connOf is the connection context under ctx; nil when ctx is not a
// client connection's (a timer's, a test's).
func connOf(ctx context.Context) *connCtx {
	c, _ := ctx.Value(ctxConnKey{}).(*connCtx)
	return c
}

// group is the address group of the connection's request r under st
// (nil: none).
func (c *connCtx) group(st *state, r *http.Request) *addrGroup {
	if c.gst == st {
		return c.g
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return st.groupFor(c.l.spec, local)
}

// connContext is the connection layer's ConnContext: c's connCtx (within
// its statConn when it has one) under ctx, and what the relay looks up.
func (s *Server) connContext(l *listener, ctx context.Context, c net.Conn) context.Context {
	var cc *connCtx
	if sc := statConnOf(c); sc != nil {
		cc = &sc.ctx // its group is set already (connParams)
		cc.st = &sc.st
	} else {
		cc = new(connCtx)
	}
	cc.Context, cc.l, cc.id = ctx, l, s.connID.Add(1)
	ctx = websockify.WithConn(cc, c) // its tunnel's event loop
	if l.spec.tls {
		cc.tls = &connTLS{}
		ctx = vars.WithTLSConn(ctx, &cc.tls.vars)
	}
	return ctx
}

func (s *Server) startServing(l *listener) {
	hs := &http1.Server{
		Handler: s,
		Reject:  s.reject,
		ConnParams: func(c net.Conn) http1.Params {
			return s.connParams(l, c)
		},
		ConnState: s.stats.connState,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return s.connContext(l, ctx, c)
		},
		Logf: func(format string, args ...any) {
			httpLogWriter{s}.Write([]byte(fmt.Sprintf(format, args...)))
		},
		ConnLog: func(ctx context.Context, c net.Conn, level ngxlog.Level, msg string) {
			s.connLog(l, ctx, c, level, msg)
		},
	}
	l.srv = hs
	if l.spec.h2 {
		hs.H2 = func(ctx context.Context, c net.Conn) { s.serveH2(l, ctx, c) }
	}
	if l.spec.tls {
		hs.TLSConfig = &tls.Config{
			GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
				return s.configForClient(l, hello)
			},
			NextProtos: []string{"http/1.1"},
		}
		if l.spec.h2 {
			hs.TLSConfig.NextProtos = h2Protos
		}
	}
	s.servers = append(s.servers, hs)
	// websockify.Listener: a tunnel takes its client socket over without a dup
	l.accepting = websockify.Listener(l.ln, s.tunnels)
	accepting := s.stats.listener(l.accepting)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		hs.Serve(accepting)
	}()
}

// connParams are the connection layer's settings of the default server of
// the address c came to, as nginx starts a connection with. The address's
// group is kept in c's connCtx for its requests.
func (s *Server) connParams(l *listener, c net.Conn) http1.Params {
	p := http1.DefaultParams()
	st := s.state.Load()
	g := st.groupFor(l.spec, c.LocalAddr())
	if sc := statConnOf(c); sc != nil {
		sc.ctx.gst, sc.ctx.g = st, g
	}
	if g == nil || g.def == nil {
		return p
	}
	setParams(&p, g.def.Conf)
	p.ProxyProtocol = g.proxyProtocol
	if g.rulesVary {
		p.LineRulesFor = g.lineRulesFor
	}
	return p
}

// setParams copies a server's connection settings into p: those of the
// header stage, then the per-location ones (setLocationParams).
func setParams(p *http1.Params, c *nginxconf.LocConf) {
	p.HeaderTimeout, p.HeaderBufferSize = c.ClientHeaderTimeout, c.ClientHeaderBufferSize
	p.LargeBufferSize, p.LargeBuffers = c.LargeHeaderBufferSize, c.LargeHeaderBuffers
	p.UnderscoresInHeaders = c.UnderscoresInHeaders
	p.KeepInvalidHeaders = c.KeepInvalidHeaders
	p.MaxHeaders = c.MaxHeaders
	setLocationParams(p, c)
}

// setLocationParams copies the settings nginx takes from the request's
// location: body and send timeouts, keep-alive, lingering close. The header
// stage's stay those of the address's default server.
func setLocationParams(p *http1.Params, c *nginxconf.LocConf) {
	p.BodyTimeout, p.SendTimeout = c.ClientBodyTimeout, c.SendTimeout
	p.KeepaliveTimeout, p.KeepaliveHeader, p.KeepaliveRequests = c.KeepaliveTimeout, c.KeepaliveHeader, c.KeepaliveRequests
	p.KeepaliveTime = c.KeepaliveTime
	p.KeepaliveDisableMSIE6 = c.KeepaliveDisable&nginxconf.KeepaliveDisableMSIE6 != 0
	p.KeepaliveDisableSafari = c.KeepaliveDisable&nginxconf.KeepaliveDisableSafari != 0
	p.LingeringClose, p.LingeringTime, p.LingeringTimeout = http1.Linger(c.LingeringClose), c.LingeringTime, c.LingeringTimeout
	p.NoChunked = c.NoChunked
}

// connLog writes a line about connection c of l before its first request,
// as nginx's ngx_http_log_error words it then: the client's address and
// the listening socket's ("server: 0.0.0.0:80").
func (s *Server) connLog(l *listener, ctx context.Context, c net.Conn, level ngxlog.Level, msg string) {
	el := s.state.Load().elog
	if !el.enabled(level) {
		return
	}
	var id uint64
	if cc := connOf(ctx); cc != nil {
		id = cc.id
	}
	client := "unix:"
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		client = ta.IP.String()
	}
	server := l.spec.addr
	if l.spec.network == "unix" {
		server = "unix:" + server
	}
	el.Logf(level, id, "%s, client: %s, server: %s", msg, client, server)
}

// Addrs returns the addresses of the open sockets (for tests and logs).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.Addr
	for _, l := range s.ls {
		out = append(out, l.ln.Addr())
	}
	return out
}

// Reload swaps in cfg: new requests use it at once, running tunnels and
// keep-alive connections go on, listeners are kept, opened or closed.
func (s *Server) Reload(cfg *nginxconf.Config) error {
	st, err := s.build(cfg)
	if err != nil {
		return err
	}
	st.startWorker() // as nginx's new workers, before they accept
	old := s.state.Swap(st)
	if err := s.Listen(); err != nil {
		s.state.Store(old)
		return err
	}
	s.tunnels.SetLoops(loops(cfg))
	s.h2GoAway(false) // HTTP/2 connections keep no old configuration (http2.go)
	s.retire(old)
	old.closeLua(true)
	return nil
}

// retire ends the connections that came under the configuration old, as
// nginx's old workers do after a reload: idle keep-alive connections close
// now, the others close after their current request (serve answers them
// with "Connection: close"), and when old's worker_shutdown_timeout is set
// (an old worker's timer is its own configuration's, and a later reload
// neither extends nor resets it), whatever of them is still open closes
// once it has passed: connections, and the tunnels (websockify_pass and
// proxy_pass upgrades) that started under old, which get a close frame
// (1001) and quitGrace to answer it, as on a graceful quit. Without
// worker_shutdown_timeout, tunnels run on across reloads until they end.
func (s *Server) retire(old *state) {
	s.mu.Lock()
	servers := append([]*http1.Server(nil), s.servers...)
	s.mu.Unlock()
	for _, hs := range servers {
		hs.SetKeepAlivesEnabled(false) // closes the idle ones
		hs.SetKeepAlivesEnabled(true)
	}
	if timeout := old.cfg.WorkerShutdownTimeout; timeout > 0 {
		time.AfterFunc(timeout, func() {
			s.stats.closeOld(old)
			s.tunnels.Retire(old.gen, quitGrace)
		})
	}
}

// Reopen reopens every log file (-s reopen, SIGUSR1).
func (s *Server) Reopen() error { return s.logs.reopen() }

// Shutdown stops accepting, ends idle keep-alive connections, sends close
// frames (1001) to every tunnel, and waits for requests until ctx ends; then
// it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error { return s.shutdown(ctx, true, "") }

// shutdown is Shutdown; exitHook runs exit_worker_by_lua once the
// connections are closed (not for Close: -t, or a start that failed), and
// exitNote, if any, is logged after it, before the logs close, as nginx's
// worker logs "exit" last.
func (s *Server) shutdown(ctx context.Context, exitHook bool, exitNote string) error {
	s.mu.Lock()
	servers := append([]*http1.Server(nil), s.servers...)
	s.mu.Unlock()
	s.h2GoAway(true)
	var wg sync.WaitGroup
	for _, hs := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hs.Shutdown(ctx)
		}()
	}
	s.tunnels.Shutdown(ctx)
	wg.Wait()
	for _, hs := range servers {
		hs.Close()
	}
	s.wg.Wait()
	s.state.Load().closeLua(exitHook)
	if exitNote != "" {
		s.ErrorLog().Logf(ngxlog.Notice, 0, "%s", exitNote)
	}
	s.logs.close()
	return ctx.Err()
}

// Close stops at once: every connection and tunnel is closed.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.shutdown(ctx, false, "")
	return nil
}

// defaultTokens is server_tokens of the default server of l's first address
// (what nginx uses for requests it cannot route).
func (s *Server) defaultTokens(l *listener) bool {
	st := s.state.Load()
	var g *addrGroup
	if l.spec.network == "unix" {
		g = st.groups["unix "+l.spec.addr]
	} else {
		g = st.groupFor(l.spec, l.ln.Addr())
	}
	if g == nil || g.def == nil {
		return true
	}
	return g.def.Conf.ServerTokens
}

// httpLogWriter sends net/http's own messages (TLS handshake failures,
// recovered handler panics) to the error log: panics at "alert", the rest
// at "info", where nginx logs client-side failures.
type httpLogWriter struct{ s *Server }

func (w httpLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\n")
	level := ngxlog.Info
	if strings.HasPrefix(msg, "http: Accept error: ") {
		// nginx: [crit] accept4() failed (24: Too many open files)
		var en syscall.Errno
		if i := strings.LastIndex(msg, "; retrying"); i > 0 {
			msg = msg[:i]
		}
		level = ngxlog.Crit
		if strings.Contains(msg, "too many open files") {
			en = syscall.EMFILE
		}
		if en != 0 {
			msg = "accept4() failed (" + errnoError{en}.Error() + ")"
		}
	}
	if strings.Contains(msg, "panic") {
		level = ngxlog.Alert
		os.Stderr.Write(p) // a bug: keep it visible to whoever watches the process
	}
	w.s.state.Load().elog.Logf(level, 0, "%s", msg)
	return len(p), nil
}
