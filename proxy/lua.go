package proxy

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"ngxsockify/internal/certcheck"
	"ngxsockify/luahooks"
	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/static"
)

// luaModule is lua-nginx-module: rewrite_by_lua, access_by_lua,
// content_by_lua and header_filter_by_lua (set_by_lua runs among the
// rewrite statements, init_by_lua at load).
var luaModule = module{
	name:      "lua",
	provision: provisionLua,
	register: func(e *engine) {
		e.add(phaseRewrite, luaRewrite)
		e.add(phaseAccess, luaAccess)
		// access_by_lua_no_postpone on: the hook runs first, where nginx
		// runs a dynamic module's access handler (before allow/deny,
		// auth_basic, auth_request), after ngxsockify's fail-closed
		// check, which the core module registered first.
		acc := e.phases[phaseAccess]
		e.phases[phaseAccess] = append(acc[:1:1], append([]phaseHandler{luaAccessFirst}, acc[1:]...)...)
		e.addHeaderFilter(luaBodyFilterStart)
		e.add(phaseLog, luaLog)
	},
}

// luaFilterModule is lua-nginx-module's header filter, header_filter_by_lua.
// A dynamic module's filters run before nginx's own: in Debian's nginx,
// with headers-more loaded after it, it runs second, before add_header,
// expires, charset and gzip. Its body filter starts from the Lua
// module's own place in the chain (luaBodyFilterStart), so that its
// body_filter_by_lua sees the body before the charset, sub_filter, ssi
// and addition filters change it.
var luaFilterModule = module{
	name: "lua_header_filter",
	register: func(e *engine) {
		e.addHeaderFilter(luaHeaderFilter)
	},
}

// luaServerRewrite runs server_rewrite_by_lua (serverRewrite calls it
// first): rcDone when the hook answered.
func luaServerRewrite(rq *request) rc {
	if c := rq.srv.Conf.ServerRewriteLua; c != nil && !rq.runLuaPhase(c) {
		return rcDone
	}
	return rcDeclined
}

func luaRewrite(rq *request) rc {
	if rq.st.cfg.HTTP.Lua.RewriteNoPostpone {
		return rcDeclined // ran first, in locationRewrite
	}
	if c := rq.conf.RewriteLua; c != nil && !rq.runLuaPhase(c) {
		return rcDone
	}
	return rcDeclined
}

// luaAccess grants when the hook returns normally; a hook that exits has
// answered.
func luaAccess(rq *request) rc {
	c := rq.conf.AccessLua
	if c == nil || rq.st.cfg.HTTP.Lua.AccessNoPostpone {
		return rcDeclined
	}
	return runLuaAccess(rq, c)
}

// luaAccessFirst is access_by_lua under access_by_lua_no_postpone on.
func luaAccessFirst(rq *request) rc {
	c := rq.conf.AccessLua
	if c == nil || !rq.st.cfg.HTTP.Lua.AccessNoPostpone {
		return rcDeclined
	}
	return runLuaAccess(rq, c)
}

func runLuaAccess(rq *request, c *nginxconf.LuaCode) rc {
	if !rq.runLuaPhase(c) {
		return rcDone
	}
	return rcOK
}

func luaContent(rq *request) { rq.runLuaContent(rq.conf.ContentLua) }

// luaLog runs log_by_lua after the response (before the access log, as in
// nginx): what it returns changes nothing; an error is logged.
func luaLog(rq *request) rc {
	c := rq.conf.LogLua
	if c == nil {
		return rcDeclined
	}
	ch, _ := rq.chunk(c)
	if ch == nil {
		return rcDeclined
	}
	lr := rq.luaRequest()
	lr.Status = rq.v.Status
	if out := rq.runLuaIn(context.Background(), "log", ch, lr); out.Err != nil {
		rq.logf(ngxlog.Err, "%v", out.Err)
	}
	return rcDeclined
}

func luaHeaderFilter(rq *request, code int) int {
	if c := rq.conf.HeaderFilterLua; c != nil {
		code = rq.headerFilter(c, code)
	}
	return code
}

// luaBodyFilterStart puts body_filter_by_lua in front of the body writes
// (startBodyFilter) once the headers are out.
func luaBodyFilterStart(rq *request, code int) int {
	if c := rq.conf.BodyFilterLua; c != nil && !rq.w.discard && !rq.closed {
		rq.startBodyFilter(c, code)
	}
	return code
}

// startBodyFilter puts body_filter_by_lua in front of the body writes of a
// response with a body: each write passes through it as ngx.arg[1], and
// the end of the response as an empty chunk with ngx.arg[2] true. nginx's
// filter runs before charset recoding (a dynamic module's filters come
// first). A subrequest's body passes it too: a capture gets what it made,
// and res.truncated when it took the eof flag from the last buffer.
func (rq *request) startBodyFilter(c *nginxconf.LuaCode, code int) {
	if rq.r.Method == http.MethodHead || code < 200 ||
		code == http.StatusNoContent || code == http.StatusNotModified {
		return
	}
	ch, _ := rq.chunk(c)
	if ch == nil {
		return
	}
	if rq.w.Header().Get("Content-Length") == "" {
		rq.w.stream = true // the length is not known: chunked, as nginx
	}
	next := rq.w.body
	done := false // the body ended: eof seen, or the filter failed
	filter := func(p []byte, eof bool) []byte {
		if done || len(p) == 0 && !eof {
			// An empty write (a response without a body) is no buffer
			// in nginx: the filter sees only the last one.
			return nil
		}
		lr := rq.luaRequest()
		lr.Status = code
		out, last, err := rq.st.lua.RunBodyFilter(rq.r.Context(), ch, lr, p, eof)
		if err != nil {
			// nginx's filter returns NGX_ERROR: the response is cut.
			done = true
			rq.logf(ngxlog.Err, "%v", err)
			rq.closeConn()
			rq.w.discard = true
			return nil
		}
		done = last
		if next != nil {
			out = next(out)
		}
		return out
	}
	rq.w.body = func(p []byte) []byte { return filter(p, false) }
	rq.w.end = func() {
		if done {
			return
		}
		if out := filter(nil, true); len(out) > 0 && !rq.w.discard {
			n, _ := rq.w.write(out) // paced, compressed
			rq.w.bytes += int64(n)
		}
		if !done && rq.subrequest {
			// the filter took the eof flag away: the subrequest's
			// body never ended (ngx.location.capture: res.truncated)
			rq.truncated = true
		}
	}
}

// headerFilter runs header_filter_by_lua just before the headers go out:
// it may change headers and ngx.status, nothing else (nginx's API there).
func (rq *request) headerFilter(c *nginxconf.LuaCode, code int) int {
	ch, _ := rq.chunk(c)
	if ch == nil {
		return code
	}
	lr := rq.luaRequest()
	lr.Status = code
	out := rq.runLua(c.Phase, ch, lr)
	if out.Err != nil {
		// nginx's filter returns NGX_ERROR: the request ends without a
		// response.
		rq.logf(ngxlog.Err, "%v", out.Err)
		rq.closeConn()
		rq.w.discard = true
		return code
	}
	switch out.Action {
	case luahooks.Close, luahooks.Respond, luahooks.ErrorPage:
		if out.Status < 0 { // ngx.exit(ngx.ERROR)
			rq.closeConn()
			rq.w.discard = true
			return code
		}
		// ngx.exit(status): nginx finalizes the request with status
		// (ngx_http_filter_finalize_request): its own page for an error,
		// headers only otherwise (444 too is sent as a status), and the
		// response being sent is dropped.
		return rq.filterFinalize(out.Status)
	}
	if lr.Status != 0 {
		return lr.Status
	}
	return code
}

// filterFinalize answers status from inside the header filter chain in
// place of the response whose headers were going out, which is then
// dropped.
func (rq *request) filterFinalize(status int) int {
	h := rq.w.Header()
	var page []byte
	if status >= 300 {
		page = rq.specialPage(status)
	}
	// The headers of the dropped response go (measured: ngx.header
	// values, Content-Type); the server's own stay.
	for k := range h {
		if k != "Server" && k != "Date" {
			delete(h, k)
		}
	}
	if page != nil {
		h.Set("Content-Type", "text/html")
	}
	h.Set("Content-Length", strconv.Itoa(len(page)))
	rq.w.w.WriteHeader(status)
	if rq.r.Method != http.MethodHead && len(page) > 0 {
		n, _ := rq.w.w.Write(page)
		rq.w.bytes += int64(n)
	}
	rq.w.discard = true
	return status
}

var luaPhases = map[string]luahooks.Phase{
	"set":            luahooks.PhaseSet,
	"rewrite":        luahooks.PhaseRewrite,
	"server_rewrite": luahooks.PhaseServerRewrite,
	"access":         luahooks.PhaseAccess,
	"content":        luahooks.PhaseContent,
	"header_filter":  luahooks.PhaseHeaderFilter,
	"log":            luahooks.PhaseLog,
	"body_filter":    luahooks.PhaseBodyFilter,
	"init":           luahooks.PhaseInit,
	"init_worker":    luahooks.PhaseInitWorker,
	"exit_worker":    luahooks.PhaseExitWorker,
}

// provisionLua makes content_by_lua the content handler of its levels
// (unless an earlier module claimed them), and starts the Lua runtime
// (buildLua).
// luaConf is a level's runtime part of the Lua module.
type luaConf struct {
	// lua_ssl_trusted_certificate's self-signed certificates (nil for
	// none), and what is checked of a chain they verify
	// (lua_ssl_verify_depth, lua_ssl_crl, the file's other certificates)
	trusted *x509.CertPool
	chain   *certcheck.Chain
}

func provisionLua(s *Server, st *state) error {
	type caFile struct {
		roots *x509.CertPool
		inter []*x509.Certificate
	}
	files := map[string]caFile{}
	crls := map[string][]*certcheck.CRL{}
	for _, lc := range st.cfg.HTTP.Confs {
		if lc.ContentLua != nil && st.confs[lc.ID].content == nil {
			st.confs[lc.ID].content = luaContent
		}
		if lc.LogLua != nil {
			st.confs[lc.ID].logs = true // a tunnel keeps its request for it
		}
		chain := &certcheck.Chain{Depth: lc.LuaSSLVerifyDepth}
		if f := lc.LuaSSLTrustedCertificate; f != "" {
			ca, ok := files[f]
			if !ok {
				data, err := os.ReadFile(f)
				certs := loadedCerts(data)
				if err != nil || len(certs) == 0 {
					return fmt.Errorf(`SSL_CTX_load_verify_locations("%s") failed`, f)
				}
				ca.roots, ca.inter = certcheck.Trust(certs)
				files[f] = ca
			}
			st.confs[lc.ID].lua.trusted, chain.Inter = ca.roots, ca.inter
		}
		if f := lc.LuaSSLCRL; f != "" {
			if _, ok := crls[f]; !ok {
				l, err := certcheck.LoadCRLs(f)
				if err != nil {
					return err
				}
				crls[f] = l
			}
			chain.CRLs = crls[f]
		}
		st.confs[lc.ID].lua.chain = chain
	}
	var prev *luahooks.Runtime // a reload keeps the dictionaries (luahooks.Options.Previous)
	if old := s.state.Load(); old != nil {
		prev = old.lua
	}
	if err := st.buildLua(st.cfg, s.opts.LuaTimeout, s.opts.ConfigureArgs, prev, s.opts.CheckRequires); err != nil || !s.opts.CheckRequires {
		return err
	}
	return st.checkRequires()
}

// buildLua starts the Lua runtime when the config has any Lua, compiles
// every chunk once, and runs init_by_lua.
func (st *state) buildLua(cfg *nginxconf.Config, timeout time.Duration, configure string, prev *luahooks.Runtime, check bool) error {
	h := cfg.HTTP
	if h.Lua.PackagePath != "" && !check {
		// lua-nginx-module loads resty.core as it creates the VM (not
		// under -t), from lua_package_path; without it nginx does not start
		if why := luahooks.RestyCoreMissing(luahooks.Options{
			Prefix: cfg.Prefix, LuaPathEnv: luaEnv("LUA_PATH"), LuaCPathEnv: luaEnv("LUA_CPATH"),
			PackagePath: h.Lua.PackagePath, PackageCPath: h.Lua.PackageCPath,
		}); why != "" {
			return AlertError{fmt.Sprintf("%s in %s:%d", luahooks.RestyCoreFailure(why), h.Lua.File, h.Lua.CloseLine)}
		}
	}
	if len(h.LuaCodes) == 0 {
		return nil
	}
	env := map[string]string{}
	for _, e := range cfg.Env {
		if e.HasValue {
			env[e.Name] = e.Value
		} else if v, ok := os.LookupEnv(e.Name); ok {
			env[e.Name] = v
		}
	}
	if timeout == 0 {
		timeout = time.Second
	}
	elog := st.elog
	confPrefix := ""
	if filepath.IsAbs(cfg.Main) {
		confPrefix = filepath.Dir(cfg.Main)
	}
	pools := map[string]luahooks.ThreadPool{}
	for name, p := range cfg.ThreadPools {
		pools[name] = luahooks.ThreadPool{Threads: p.Threads, MaxQueue: p.MaxQueue}
	}
	vms := h.Lua.WorkerThreadVMPoolSize
	if h.Lua.WorkerThreadVMPoolSet && vms == 0 {
		vms = -1 // none
	}
	rt, err := luahooks.New(luahooks.Options{
		Prefix:           cfg.Prefix,
		LuaPathEnv:       luaEnv("LUA_PATH"),
		LuaCPathEnv:      luaEnv("LUA_CPATH"),
		ConfigureArgs:    configure,
		MainRequest:      st.luaMainRequest,
		ConfPrefix:       confPrefix,
		PackagePath:      h.Lua.PackagePath,
		PackageCPath:     h.Lua.PackageCPath,
		Env:              env,
		SharedDicts:      h.Lua.SharedDicts,
		Previous:         prev,
		CodeCache:        h.Lua.CodeCache,
		MaxPendingTimers: h.Lua.MaxPendingTimers,
		MaxRunningTimers: h.Lua.MaxRunningTimers,
		ThreadPools:      pools,
		WorkerThreadVMs:  vms,
		Timeout:          timeout,
		Log:              func(level ngxlog.Level, msg string) { elog.Logf(level, 0, "%s", msg) },
	})
	if err != nil {
		return err
	}
	st.lua = rt
	st.chunks = make([]*luahooks.Chunk, len(h.LuaCodes))
	for _, c := range h.LuaCodes {
		if c.Phase != "init" && c.Phase != "init_worker" && c.Phase != "exit_worker" {
			st.compileLua(c)
		}
	}
	if c := h.Lua.ExitWorker; c != nil {
		// compiled now, run when the configuration retires (closeLua);
		// a syntax error is reported then, as nginx loads it at exit
		ch, err := st.compileOne(c)
		if err != nil && ch == nil {
			return fmt.Errorf("%v in %s:%d", err, c.File, c.Line)
		}
		st.exitWorker, st.exitWorkerKind = ch, "exit_worker_by_lua"
		if c.PathTmpl != nil {
			st.exitWorkerKind += "_file"
		}
	}
	for _, c := range []*nginxconf.LuaCode{h.Lua.Init, h.Lua.InitWorker} {
		if c == nil {
			continue
		}
		if c.Phase == "init_worker" {
			if !check { // nginx -t starts no worker
				st.initWorker = c // run by startWorker
			}
			continue
		}
		ch, err := st.compileOne(c)
		var le *luahooks.LoadError
		if errors.As(err, &le) && le.Err != nil && !errors.Is(err, fs.ErrNotExist) {
			// a syntax error: "init_by_lua error: ...", as nginx logs it
			kind := c.Phase + "_by_lua"
			if c.PathTmpl != nil {
				kind += "_file"
			}
			return fmt.Errorf("%s error: %v", kind, le.Err)
		}
		if err != nil {
			return fmt.Errorf("%v in %s:%d", err, c.File, c.Line)
		}
		if err := rt.RunInit(ch); err != nil {
			return err // already "init_by_lua error: ..." as nginx prints it
		}
	}
	return nil
}

// closeLua ends the configuration's Lua runtime, first running (exitHook)
// exit_worker_by_lua as nginx does in a worker that exits (stop, quit, or
// a reload retiring it).
func (st *state) closeLua(exitHook bool) {
	if st.lua == nil {
		return
	}
	if exitHook && st.exitWorker != nil {
		st.lua.RunExitWorker(st.exitWorker, st.exitWorkerKind)
	}
	st.lua.Close()
}

// luaMainRequest is a Lua request with the http block's settings, for
// init_worker_by_lua and exit_worker_by_lua (and their timers): nginx
// runs them on a fake request with the http level's configuration.
func (st *state) luaMainRequest() *luahooks.Request {
	confs := st.cfg.HTTP.Confs
	if len(confs) == 0 {
		return nil
	}
	lc := confs[0] // the http block's own level
	r := &luahooks.Request{
		TrustedCAs:   st.confs[lc.ID].lua.trusted,
		SSLProtocols: lc.LuaSSLProtocols,
		SSLCiphers:   lc.LuaSSLCiphers,
		SSLChain:     st.confs[lc.ID].lua.chain,
		Socket:       luahooks.SocketOptions(lc.LuaSocket),
	}
	if res := st.confs[lc.ID].resolver.r; res != nil {
		r.Resolve = res.LookupHost
	}
	return r
}

// luaEnv is the environment variable name, nil when it is not set.
func luaEnv(name string) *string {
	if v, ok := os.LookupEnv(name); ok {
		return &v
	}
	return nil
}

// AlertError is a startup error nginx reports at level alert, not emerg.
type AlertError struct{ Msg string }

func (e AlertError) Error() string { return e.Msg }

// Level is the error log level of the error.
func (AlertError) Level() ngxlog.Level { return ngxlog.Alert }

// startWorker runs the configuration's init_worker_by_lua*, once.
func (st *state) startWorker() {
	st.initWorkerOnce.Do(func() {
		if st.initWorker != nil && st.lua != nil {
			st.runInitWorker(st.initWorker)
		}
	})
}

// runInitWorker runs init_worker_by_lua* c. As in nginx, where the worker
// runs it and goes on whatever happens, an error (loading or running) is
// logged, "init_worker_by_lua error: ...", and the server starts anyway.
func (st *state) runInitWorker(c *nginxconf.LuaCode) {
	ch, err := st.compileOne(c)
	if err == nil {
		if err = st.lua.RunInitWorker(ch); err != nil {
			st.elog.Logf(ngxlog.Err, 0, "%v", err) // already "init_worker_by_lua error: ..."
		}
		return
	}
	kind := "init_worker_by_lua"
	if c.PathTmpl != nil {
		kind += "_file"
	}
	var le *luahooks.LoadError
	if errors.As(err, &le) && le.Err != nil {
		err = le.Err
	}
	st.elog.Logf(ngxlog.Err, 0, "%s error: %v", kind, err)
}

func (st *state) compileOne(c *nginxconf.LuaCode) (*luahooks.Chunk, error) {
	if c.PathTmpl != nil {
		return st.lua.CompileFile(luaPhases[c.Phase], c.Path)
	}
	return st.lua.CompileInline(luaPhases[c.Phase], c.Source, c.File, c.Line)
}

// compileLua compiles c at load. A syntax error becomes a warning (nginx
// reports it only per request) and the chunk answers 500 per request, as
// nginx does. *_file chunks are looked up per request instead (luahooks
// caches them unless lua_code_cache is off); one whose name holds no
// variables is compiled now only to report its problems early.
func (st *state) compileLua(c *nginxconf.LuaCode) {
	if c.PathTmpl != nil {
		if _, ok := c.PathTmpl.Const(); !ok {
			return
		}
	}
	ch, err := st.compileOne(c)
	if err != nil {
		st.warnings = append(st.warnings, fmt.Sprintf("%v in %s:%d", err, c.File, c.Line))
	}
	if ch != nil && c.PathTmpl == nil {
		st.chunks[c.ID] = ch
	}
}

// chunk returns the compiled chunk of c. A chunk that failed to load still
// answers (404 or 500, with nginx's log line) when run; nil means no Lua
// runtime at all.
func (rq *request) chunk(c *nginxconf.LuaCode) (*luahooks.Chunk, int) {
	if c.ID < len(rq.st.chunks) && rq.st.chunks[c.ID] != nil {
		return rq.st.chunks[c.ID], 0
	}
	if rq.st.lua == nil || c.PathTmpl == nil {
		return nil, http.StatusInternalServerError
	}
	ch, _ := rq.st.lua.CompileFile(luaPhases[c.Phase], c.PathTmpl.Eval(rq.v))
	if ch == nil {
		return nil, http.StatusInternalServerError
	}
	return ch, 0
}

// luaRequest returns the Lua view of this request (one for all phases, so
// that ngx.ctx survives), brought up to date with the current location.
func (rq *request) luaRequest() *luahooks.Request {
	if rq.lua == nil {
		rq.lua = rq.newLuaRequest()
	}
	rq.lua.Internal, rq.lua.Subrequest = rq.internal, rq.subrequest
	rq.lua.DefaultType = static.ContentType(rq.v.URI, rq.staticOptions())
	if rq.conf.LuaNoDefaultType {
		rq.lua.DefaultType = "" // lua_use_default_type off
	}
	rq.lua.ClientMaxBodySize = rq.conf.ClientMaxBodySize
	rq.lua.PostponeOutput, rq.lua.PostponeSet = rq.conf.PostponeOutput, true
	rq.lua.ClientBodyBufferSize = rq.conf.ClientBodyBufferSize
	rq.lua.BodyInFileOnly, rq.lua.BodyTempPath = rq.conf.ClientBodyInFileOnly, rq.conf.ClientBodyTempPath
	if rq.lua.ClientBodyBufferSize == 0 {
		rq.lua.ClientBodyBufferSize = luahooks.ClientBodyBufferZero
	}
	rq.lua.KeepUnderscores = rq.conf.LuaKeepUnderscores
	rq.lua.NoHTTP10Buffering = rq.conf.LuaNoHTTP10Buffering
	rq.lua.TrustedCAs = rq.st.confs[rq.conf.ID].lua.trusted
	rq.lua.SSLProtocols, rq.lua.SSLCiphers = rq.conf.LuaSSLProtocols, rq.conf.LuaSSLCiphers
	rq.lua.SSLChain = rq.st.confs[rq.conf.ID].lua.chain
	rq.lua.Socket = luahooks.SocketOptions(rq.conf.LuaSocket)
	rq.lua.WatchClient = nil
	if rq.conf.LuaCheckClientAbort && !rq.subrequest {
		rq.lua.WatchClient = rq.luaWatchClient
	}
	rq.lua.Resolve = nil
	if res := rq.st.confs[rq.conf.ID].resolver.r; res != nil {
		rq.lua.Resolve = res.LookupHost
	}
	if rq.conf.NeedRequestBody {
		if _, err := rq.st.lua.ReadBody(rq.lua); err != nil {
			rq.logf(bodyErrLevel(err), "%v", err)
		}
	}
	return rq.lua
}

func (rq *request) newLuaRequest() *luahooks.Request {
	lr := &luahooks.Request{HTTP: rq.r, Vars: rq.v, RespHeader: rq.w.Header(), Capture: rq.capture}
	if rq.snapped {
		lr.HeaderOrder = rq.order.Clone()
	} else if rq.parent != nil { // a subrequest starts with its parent's header list
		lr.HeaderOrder = rq.parent.headerOrder().Clone()
	}
	lr.Log = func(level ngxlog.Level, msg string) { rq.logf(level, "%s", msg) }
	lr.TimerLog = rq.luaTimerLog
	if rq.w.notes() != nil {
		// ngx.header's writes go out in their order, as in nginx's list
		lr.NoteHeader = func(name string, set bool) {
			if set {
				rq.w.note(name)
			} else {
				rq.w.unnote(name)
			}
		}
	}
	rq.cleanups = append(rq.cleanups, lr.End)
	lr.SetURI = func(uri string) {
		rq.v.URI = uri
		rq.internal = true
		rq.setPaths()
	}
	if !rq.subrequest {
		lr.RawSocket = func() (net.Conn, *bufio.Reader, error) { return rq.luaRawSocket(lr) }
		lr.Flush = func(p []byte) {
			if p = rq.luaClamp(p, lr); len(p) > 0 && rq.r.Method != http.MethodHead {
				rq.w.Write(p)
				rq.w.Flush()
			} else if p == nil && rq.r.Method != http.MethodHead {
				rq.w.Flush() // the headers, by themselves
			}
		}
		lr.Finish = func() {
			if rq.w.end != nil || rq.w.tail != nil || rq.w.gz != nil || rq.w.gunz != nil || rq.trailers || rq.mirrors != nil {
				return // they write after the hook
			}
			if f, ok := rq.wire.(interface{ Finish() }); ok && !rq.hijacked && !rq.closed && rq.r.Method != http.MethodHead {
				rq.w.Flush()
				f.Finish()
			}
		}
		lr.WriteFailed = func() bool {
			we, ok := rq.wire.(interface{ WriteErr() error })
			return ok && we.WriteErr() != nil
		}
		lr.FlushDelayed = func() (buffered uint, delayed bool) {
			if pc := rq.w.pace; pc != nil && pc.delayed {
				if pc.held {
					buffered = 0x10 // NGX_HTTP_WRITE_BUFFERED
				}
				return buffered, true
			}
			return 0, false
		}
	}
	lr.SendHeaders = func() bool {
		status := lr.Status
		if status == 0 {
			status = http.StatusOK
		}
		return rq.luaHeaders(status, -1)
	}
	return lr
}

// runLuaPhase runs a rewrite or access hook. It reports whether the request
// goes on to the next phase.
func (rq *request) runLuaPhase(c *nginxconf.LuaCode) bool {
	ch, code := rq.chunk(c)
	if ch == nil {
		rq.finalize(code)
		return false
	}
	lr := rq.luaRequest()
	out := rq.runLua(c.Phase, ch, lr)
	if out.Action == luahooks.Continue && out.Err == nil {
		if lr.Status != 0 {
			rq.w.override = lr.Status
		}
		if out.URIJump {
			rq.uriChanged = true // post-rewrite searches the locations again
			// ngx_http_lua_handle_rewrite_jump starts the module's
			// context afresh: ngx.ctx is forgotten.
			lr.ResetCtx()
		}
		return true
	}
	rq.luaOutcome(out, lr)
	return false
}

func (rq *request) runLuaContent(c *nginxconf.LuaCode) {
	ch, code := rq.chunk(c)
	if ch == nil {
		rq.finalize(code)
		return
	}
	lr := rq.luaRequest()
	out := rq.runLua(c.Phase, ch, lr)
	rq.luaOutcome(out, lr)
}

// luaOutcome sends the response a hook asked for.
func (rq *request) luaOutcome(out luahooks.Outcome, lr *luahooks.Request) {
	if out.Action == luahooks.Close && rq.subrequest && out.Status < 0 && out.Err == nil {
		// ngx.exit(ngx.ERROR) in a subrequest: the parent sees 500.
		rq.finalize(http.StatusInternalServerError)
		return
	}
	if out.Action == luahooks.Close {
		// ngx.exit(444), ngx.ERROR, or an error after output began: nginx
		// cuts the connection.
		if out.Err != nil {
			rq.logf(bodyErrLevel(out.Err), "%v", out.Err)
		}
		rq.closeConn()
		if out.Status == 499 {
			rq.v.Status = 499 // the client went away (or ngx.exit(499))
		}
		return
	}
	if out.Err != nil {
		rq.logf(ngxlog.Err, "%v", out.Err)
		code := out.Status
		if code == 0 {
			code = http.StatusInternalServerError
		}
		rq.finalize(code)
		return
	}
	status := out.Status
	if status == 0 {
		status = lr.Status
	}
	if status == 0 {
		status = http.StatusOK
	}
	switch out.Action {
	case luahooks.Exec:
		rq.luaExec(out.ExecURI, out.ExecArgs, lr)
	case luahooks.ErrorPage, luahooks.Redirect:
		if status >= 300 {
			// ngx.exit sets the response status: Lua that an error_page
			// runs reads it in ngx.status and answers with it (or with
			// the error_page's =code).
			lr.Status = status
			if ep, ok := rq.conf.ErrorPages[status]; ok && ep.Code > 0 {
				lr.Status = ep.Code
			}
		}
		rq.finalize(status)
	default:
		body := rq.luaClamp(out.Body, lr)
		if !rq.w.wrote {
			rq.luaHeaders(status, len(body))
		}
		if rq.r.Method != http.MethodHead {
			rq.w.Write(body)
		}
	}
}

// luaTimerLog is the log of a timer the request's Lua creates: nginx
// writes a timer's lines with the client's address and the listening
// socket's ("server: 0.0.0.0:80"), from the request's connection. It
// keeps only those, not the request.
func (rq *request) luaTimerLog() func(level ngxlog.Level, msg string) {
	el, conn := rq.errorLog(), rq.conn
	client, _, err := net.SplitHostPort(rq.r.RemoteAddr)
	if err != nil {
		client = rq.r.RemoteAddr
	}
	where := ", client: " + client
	if cc := connOf(rq.r.Context()); cc != nil && cc.l != nil {
		where += ", server: " + cc.l.spec.addr
	}
	return func(level ngxlog.Level, msg string) {
		if el != nil && el.enabled(level) {
			el.Logf(level, conn, "%s%s", msg, where)
		}
	}
}

// luaWatchClient watches the client's connection while a hook waits, for
// lua_check_client_abort (luahooks.Request.WatchClient).
func (rq *request) luaWatchClient(gone func()) (stop func()) {
	cw, ok := rq.w.w.(interface{ WatchClose(func(error)) func() })
	if !ok {
		return func() {}
	}
	return cw.WatchClose(func(error) { gone() })
}

// luaRawSocket hands the client connection to ngx.req.socket(true): what
// was sent of the response goes out first; nothing of ours follows, and
// the connection closes when the request ends (luahooks closes the socket
// with the run; the cleanup is for a run that does not end normally).
func (rq *request) luaRawSocket(lr *luahooks.Request) (net.Conn, *bufio.Reader, error) {
	hj, ok := rq.w.w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("no raw socket")
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	rq.closed = true
	rq.w.wrote, rq.w.discard = true, true
	rq.w.status = lr.Status
	if rq.w.status == 0 {
		rq.w.status = http.StatusOK
	}
	rq.cleanups = append(rq.cleanups, func() { c.Close() })
	return c, brw.Reader, nil
}

// luaClamp cuts output of a hook (p, after the lr.Streamed bytes already
// sent) to the ngx.header.content_length the hook set: that goes out as
// it is, and the client reads no more body than it says.
func (rq *request) luaClamp(p []byte, lr *luahooks.Request) []byte {
	if n, err := strconv.ParseInt(rq.w.Header().Get("Content-Length"), 10, 64); err == nil && n >= 0 {
		if left := max(n-lr.Streamed, 0); left < int64(len(p)) {
			return p[:left]
		}
	}
	return p
}

// luaHeaders sends the headers of a hook's output through the header
// filters: at the first output (Request.SendHeaders, bodyLen -1), or when
// the hook ends with bodyLen bytes of output. nginx streams ngx.say's output: no length, chunked on
// HTTP/1.1 and for HEAD, even when there is none; HTTP/1.0 output is
// buffered to the end (lua_http10_buffering) and sent with its length.
//
// It reports false when the not-modified filter ended the request with 412
// instead (nginx's NGX_ERROR from ngx_http_send_header).
func (rq *request) luaHeaders(status, bodyLen int) bool {
	if rq.w.wrote || rq.closed {
		return true
	}
	h := rq.w.Header()
	if status == http.StatusOK && !rq.subrequest && (h.Get("Last-Modified") != "" || h.Get("ETag") != "") {
		// nginx's not-modified filter, on the Last-Modified and ETag the
		// hook set (If-Modified-Since compared exactly).
		mtime := int64(-1)
		if t, err := http.ParseTime(h.Get("Last-Modified")); err == nil {
			mtime = t.Unix()
		}
		switch code := static.Preconditions(rq.r, mtime, h.Get("ETag"), rq.conf.IfModifiedSince); code {
		case http.StatusNotModified:
			h.Del("Content-Type")
			h.Del("Content-Length")
			rq.writeHeader(code)
			rq.w.discard = true
			return true
		case http.StatusPreconditionFailed:
			h.Del("Last-Modified") // nginx's error page goes out without them
			h.Del("ETag")
			rq.finalize(code)
			rq.w.discard = true // the hook's output does not follow
			return false
		}
	}
	// ngx_http_lua_set_content_type: not for a 304 the hook set.
	if h.Get("Content-Type") == "" && !rq.lua.NoDefaultType && !rq.conf.LuaNoDefaultType && status != http.StatusNotModified {
		h.Set("Content-Type", rq.conf.DefaultType)
	}
	switch {
	case h.Get("Content-Length") != "":
	case rq.r.Method == http.MethodHead:
		// No length either; the headers go when the hook ends (nothing
		// follows them, and what the hook does meanwhile happens first).
	case bodyLen >= 0 && !rq.r.ProtoAtLeast(1, 1) && !rq.conf.LuaNoHTTP10Buffering:
		h.Set("Content-Length", strconv.Itoa(bodyLen))
	default:
		rq.w.stream = true
	}
	rq.writeHeader(status)
	return true
}

// bodyErrLevel is the level nginx logs a failure with: info for a client
// that went away while sending its body, error otherwise.
func bodyErrLevel(err error) ngxlog.Level {
	if errors.Is(err, luahooks.ErrClientClosed) || errors.Is(err, luahooks.ErrClientTimedOut) {
		return ngxlog.Info
	}
	return ngxlog.Err
}

// luaExec is ngx.exec's internal redirect (ngx_http_lua_handle_exec):
// $args become args (also when empty), ngx.ctx is forgotten, and a URI
// starting with "@" runs that named location, ignoring args.
func (rq *request) luaExec(uri, args string, lr *luahooks.Request) {
	lr.ResetCtx()
	if strings.HasPrefix(uri, "@") {
		if args != "" {
			rq.logf(ngxlog.Warn, `query strings %s ignored when exec'ing named location %s`, args, uri)
		}
		rq.runNamed(uri)
		return
	}
	rq.v.Args = args
	rq.internalRedirect(uri)
}

// setByLua runs set_by_lua and stores its result.
func (rq *request) setByLua(s *nginxconf.SetLuaStmt) flow {
	ch, code := rq.chunk(s.Code)
	if ch == nil {
		rq.finalize(code)
		return flowDone
	}
	lr := rq.luaRequest()
	lr.Args = lr.Args[:0]
	for _, a := range s.Args {
		lr.Args = append(lr.Args, a.Eval(rq.v))
	}
	out := rq.runLua(s.Code.Phase, ch, lr)
	if out.Err != nil {
		rq.logf(ngxlog.Err, "%v", out.Err)
		rq.finalize(http.StatusInternalServerError)
		return flowDone
	}
	s.Var.Set(rq.v, out.Value)
	return flowNext
}
