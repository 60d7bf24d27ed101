package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/upstream"
	"ngxsockify/proxy/websockify"
	"ngxsockify/proxyproto"
)

// websockifyModule is websockify_pass: a level's content handler, and the
// dialer of its target when the target holds no variables (built at load;
// upstreamModule has built the upstream{} blocks by then).
var websockifyModule = module{
	name:      "websockify",
	provision: provisionWebsockify,
}

// websockifyConf is a level's runtime part of the websockify module.
type websockifyConf struct {
	dialer websockify.Dialer // nil: the target is computed per request
	// metrics are the tunnel metrics of the level's location, from its
	// first tunnel (metrics.tunnelsIn)
	metrics atomic.Pointer[locTunnels]
}

func provisionWebsockify(_ *Server, st *state) error {
	built := map[*nginxconf.Websockify]websockify.Dialer{} // levels may share one directive
	for _, lc := range st.cfg.HTTP.Confs {
		ws := lc.Websockify
		if ws == nil {
			continue
		}
		rt := &st.confs[lc.ID]
		if rt.content == nil {
			rt.content = websockifyContent
		}
		d, done := built[ws]
		if !done {
			var err error
			if d, err = st.staticDialer(ws); err != nil {
				return fmt.Errorf("%v in %s:%d", err, ws.File, ws.Line)
			}
			built[ws] = d
		}
		rt.websockify.dialer = d
	}
	return nil
}

func websockifyContent(rq *request) { rq.websockify(rq.conf.Websockify) }

// staticDialer builds the dialer of a websockify_pass whose target holds no
// variables: an upstream block, or one address (a host name is resolved
// now, every address becoming a server, as nginx does). It returns nil for
// targets computed per request.
func (st *state) staticDialer(ws *nginxconf.Websockify) (websockify.Dialer, error) {
	if ws.Upstream != nil {
		return st.upstreams[ws.Upstream.Name], nil
	}
	v, ok := ws.Target.Const()
	if !ok {
		return nil, nil
	}
	srv, err := upstream.ParseTarget(v)
	if err != nil {
		return nil, err
	}
	servers, err := resolveStatic(srv)
	if err != nil {
		return nil, err
	}
	return upstream.New(v, servers), nil
}

// websockify relays the request through websockify_pass.
func (rq *request) websockify(ws *nginxconf.Websockify) {
	d, code := rq.dialerFor(ws)
	if d == nil {
		rq.finalize(code)
		return
	}
	d = rq.balanced(d)
	conf := rq.conf
	if len(conf.WSAllow) > 0 {
		if addr, ok := allowedTarget(d, conf.WSAllow); !ok {
			rq.logf(ngxlog.Err, `websockify target "%s" is not allowed by websockify_allow`, addr)
			rq.finalize(http.StatusForbidden)
			return
		}
	}
	opts := websockify.Options{
		ConnectTimeout: conf.WSConnectTimeout,
		ReadTimeout:    conf.WSReadTimeout,
		SendTimeout:    conf.WSSendTimeout,
		BufferSize:     conf.WSBufferSize,
		PingInterval:   conf.WSPingInterval,
		Logger:         noDebugLog, // websockify logs at debug only
		Generation:     rq.st.gen,
	}
	if rq.errorLog().enabled(ngxlog.Debug) {
		opts.Logger = rq.errorLog().Slog().With("conn", rq.conn)
	}
	if conf.ServerTokens {
		opts.Server = "ngxsockify" // in the 101: a header of w.Header() would cost a map
	}
	if conf.MoreOutput {
		opts.Server = rq.more101(opts.Server) // more_set_headers (headers_more.go)
	}
	// ServeAsync returns once the tunnel runs, so that the handler goroutine
	// and its buffers are not held for the tunnel's lifetime; the access-log
	// line is written from the tunnel's goroutine when it ends.
	//
	// An idle tunnel should hold as little as possible: its end keeps the
	// whole request (its headers are what log formats read) only when an
	// access log needs it, else just the words of its error-log lines.
	end := &tunnelEnd{s: rq.s, elog: rq.errorLog(), conn: rq.conn, where: rq.logWhere(),
		tunnels: rq.s.metrics.tunnelsIn(rq), cleanups: rq.cleanups}
	if rq.st.confs[conf.ID].logs {
		end.rq = rq
	} else if len(end.cleanups) == 0 && !end.elog.enabled(ngxlog.Info) {
		// Counters only (an error-log line only after a panic of the
		// loop): the loop may call ended itself, with no write to wait for.
		opts.DoneOnLoop = true
	}
	end.handler.Lock() // until the handler returns: it may still be writing rq below
	defer end.handler.Unlock()
	res := websockify.ServeAsync(rq.w.w, rq.r, d, opts, rq.s.tunnels, end.ended)
	s := rq.s
	s.metrics.handshake(end.tunnels, res)
	if res.Status == http.StatusSwitchingProtocols && res.Err != nil {
		// The 101 went out but no tunnel runs (Shutdown began, or
		// writing the 101 failed): ended is never called.
		s.metrics.tunnelEnded(end.tunnels, res)
		s.stats.tunnelEnded()
	}
	rq.v.UpstreamAddr = res.UpstreamAddr
	rq.v.UpstreamConnectTime = res.ConnectTime
	if res.Status != http.StatusSwitchingProtocols {
		if conf.ServerTokens {
			rq.w.Header().Set("Server", "ngxsockify") // as in the 101, whatever a hook set
		}
		if errors.Is(res.Err, syscall.EMFILE) || errors.Is(res.Err, syscall.ENFILE) {
			// out of file descriptors: nginx fails before connecting, with 500
			rq.logf(ngxlog.Alert, "socket() failed (%v) while connecting to upstream", errnoError{unwrapErrno(res.Err)})
			rq.finalize(http.StatusInternalServerError)
			return
		}
		rq.logRelayFailure(res)
		rq.finalize(res.Status)
		return
	}
	rq.hijacked = true
	if res.Err == nil {
		rq.cleanups = nil // end's now: they run when the tunnel ends
	}
	rq.w = nil // hijacked: the response writer is not ours any more
	rq.v.Status = http.StatusSwitchingProtocols
	if end.rq != nil {
		rq.keepForLog() // before the handler returns: ended reads rq after
		if d, ok := rq.wire.(interface{ Detach() }); ok {
			rq.connHold.stopWatching() // limit_conn asks the writer no more
			d.Detach()
		}
	} else {
		rq.letGo = true
	}
}

// tunnelEnd is what a running tunnel keeps of its request for when it ends
// (ended): the words of its error-log lines, its metrics, the request's
// cleanups (limit_conn) and, only when a log format reads it, the request.
type tunnelEnd struct {
	s        *Server
	elog     *ErrorLog
	conn     uint64
	where    logWhere
	tunnels  *locTunnels
	cleanups []func()
	rq       *request // nil: no access-log line
	// handler is held until the handler returns
	handler sync.Mutex
}

// ended is the tunnel's end (websockify.ServeAsync's done): the error-log
// line, the access-log line, the cleanups and the counts.
func (e *tunnelEnd) ended(res websockify.Result) {
	// The handler may still be writing rq, or counting the handshake
	// that this undoes. On a loop (DoneOnLoop) this waits at most for the
	// end of a handler that no longer waits for the loop: its tunnel
	// began after everything it waited for there.
	e.handler.Lock()
	defer e.handler.Unlock()
	switch {
	case errors.Is(res.Err, websockify.ErrInternal):
		e.elog.Logf(ngxlog.Alert, e.conn, "websockify tunnel ended: %v%s", res.Err, e.where.format(res.UpstreamAddr))
	case res.Err != nil && !errors.Is(res.Err, websockify.ErrShutdown) && e.elog.enabled(ngxlog.Info):
		e.elog.Logf(ngxlog.Info, e.conn, "websockify tunnel ended: %v%s", res.Err, e.where.format(res.UpstreamAddr))
	}
	if e.rq != nil {
		e.rq.v.Completed = tunnelCompleted(res.Err) // as a proxied WebSocket's in nginx
		e.rq.logPhase(http.StatusSwitchingProtocols, res.BytesSent)
	}
	for _, f := range e.cleanups {
		f()
	}
	e.s.metrics.tunnelEnded(e.tunnels, res)
	e.s.stats.tunnelEnded()
}

// noDebugLog is websockify.Options.Logger when the error log takes no
// debug lines: the tunnel then keeps no logger.
var noDebugLog = slog.New(slog.DiscardHandler)

// keepForLog trims a request that a running tunnel keeps for its
// access-log line to what log formats read: its context becomes one with
// only the values variables look up ($server_addr, $ssl_*,
// $proxy_protocol_*) instead of net/http's chain of connection and
// request contexts, and its Lua view goes (log_by_lua does not run). That is about 0.8 KiB less per idle
// tunnel. The request is changed in place, since rq.v and others point to
// it; net/http does not read it once the connection is hijacked.
func (rq *request) keepForLog() {
	ctx := rq.r.Context()
	keep := context.WithValue(context.Background(), http.LocalAddrContextKey, ctx.Value(http.LocalAddrContextKey))
	if c := connTLSOf(ctx); c != nil {
		keep = context.WithValue(keep, ctxTLSConn{}, c)
		keep = vars.WithTLSConn(keep, &c.vars)
	}
	if h := proxyproto.FromContext(ctx); h != nil {
		keep = proxyproto.NewContext(keep, h) // $proxy_protocol_*
	}
	*rq.r = *rq.r.WithContext(keep)
	rq.lua = nil
}

// allowedTarget checks, before any dial, that every address d may dial
// matches a websockify_allow rule; it returns the first that does not. A
// dialer that cannot list its addresses is refused.
func allowedTarget(d websockify.Dialer, rules []nginxconf.TargetRule) (string, bool) {
	u, ok := d.(interface{ Addrs() []string })
	if !ok {
		return "?", false
	}
	for _, a := range u.Addrs() {
		allowed := false
		for _, r := range rules {
			if r.Allows(a) {
				allowed = true
				break
			}
		}
		if !allowed {
			return a, false
		}
	}
	return "", true
}

// logRelayFailure logs why a tunnel did not start: connect errors in
// nginx's words at "error" (upstream named in the context, as nginx does),
// handshake errors at "info" (nginx logs client errors there).
func (rq *request) logRelayFailure(res websockify.Result) {
	if res.Err == nil {
		return
	}
	switch res.Status {
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		rq.logf(ngxlog.Err, "%v", res.Err)
	default:
		rq.logf(ngxlog.Info, "%v", res.Err)
	}
}

// dialerFor returns the dialer for this request's target, or the status to
// answer with when the target is unusable (logged in nginx's words).
func (rq *request) dialerFor(ws *nginxconf.Websockify) (websockify.Dialer, int) {
	if d := rq.st.confs[rq.conf.ID].websockify.dialer; d != nil {
		return d, 0
	}
	v := ws.Target.Eval(rq.v)
	if u, ok := rq.st.upstreams[v]; ok {
		return u, 0
	}
	srv, err := upstream.ParseTarget(v)
	if err != nil {
		rq.logf(ngxlog.Err, "%v", err)
		return nil, http.StatusInternalServerError
	}
	return rq.lookupDialer(v, srv)
}

// lookupDialer returns a dialer of the one server srv (named v in error
// texts), its host name resolved through the level's resolver.
func (rq *request) lookupDialer(v string, srv upstream.Server) (websockify.Dialer, int) {
	if strings.HasPrefix(srv.Addr, "unix:") {
		return upstream.New(v, []upstream.Server{srv}), 0
	}
	host, port, _ := net.SplitHostPort(srv.Addr)
	if net.ParseIP(host) != nil {
		return upstream.New(v, []upstream.Server{srv}), 0
	}
	if len(rq.conf.Resolver) == 0 {
		rq.logf(ngxlog.Err, `no resolver defined to resolve %s`, host)
		return nil, http.StatusBadGateway
	}
	res := rq.st.confs[rq.conf.ID].resolver.r // built at load for every level with a resolver
	addrs, err := res.LookupHost(rq.r.Context(), host)
	if err != nil {
		rq.logf(ngxlog.Err, "%v", err) // "<host> could not be resolved (3: Host not found)"
		return nil, http.StatusBadGateway
	}
	servers := make([]upstream.Server, 0, len(addrs))
	for _, a := range addrs {
		s := srv
		s.Addr = net.JoinHostPort(a, port)
		servers = append(servers, s)
	}
	return upstream.New(v, servers), 0
}
