package proxy

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"ngxsockify/luahooks"
	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
)

// maxCycles is nginx's limit on rewrite "last" and internal redirects.
const maxCycles = 10

// request is one request going through the phases.
type request struct {
	s    *Server
	st   *state
	w    *respWriter
	r    *http.Request
	srv  *nginxconf.Server
	loc  *nginxconf.Location
	conf *nginxconf.LocConf
	v    *vars.Request
	conn uint64

	lua        *luahooks.Request
	internal   bool // reached through an internal redirect (error_page, try_files, index)
	cycles     int
	errPaged   bool // an error_page was already applied
	hijacked   bool
	realIPDone bool
	subrequest bool // ngx.location.capture: no access phase, no access log
	depth      int  // subrequest nesting
	closed     bool // ngx.exit(444): close without a reply
	logged     bool
}

// stmt results.
type flow int

const (
	flowNext  flow = iota // go on with the next statement
	flowBreak             // stop the rewrite statements, stay in this location
	flowLast              // the URI changed: search the locations again
	flowDone              // a response was sent
)

// ServeHTTP runs one request through nginx's phases on the configuration
// in effect when it arrived (see the package doc).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := s.state.Load()
	l, _ := r.Context().Value(ctxListener).(*listener)
	connID, _ := r.Context().Value(ctxConnID).(uint64)
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	rw := &respWriter{w: w}
	if st.cfg.HTTP == nil || l == nil {
		http.Error(w, "no http block", http.StatusInternalServerError)
		return
	}
	g := st.groupFor(l.spec, local)
	if g == nil {
		http.Error(w, "no server", http.StatusInternalServerError)
		return
	}
	srv, caps := g.find(hostOf(r))
	rq := &request{s: s, st: st, w: rw, r: r, srv: srv, conf: srv.Conf, conn: connID}
	rw.onHeaders = rq.outputHeaders
	rq.v = vars.NewRequest(st.cfg.HTTP.Vars, r)
	rq.v.ConnID = connID
	rq.v.ServerName = srv.PrimaryName()
	if caps != nil {
		rq.v.SetCaptures(caps)
	}
	defer rq.finish()
	rq.run()
}

// hostOf is the request's host name as nginx uses it for server selection:
// lowercased, without port or trailing dot.
func hostOf(r *http.Request) string {
	h := r.Host
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

func (rq *request) run() {
	if rq.r.Host == "" && rq.r.ProtoAtLeast(1, 1) {
		// net/http answers a missing Host itself: this was an empty one.
		rq.logf(LevelInfo, "client sent invalid host header while reading client request headers")
		rq.finalize(http.StatusBadRequest)
		return
	}
	rq.realIP(rq.srv.Conf)
	if !validMethod(rq.r.Method) {
		rq.logf(LevelInfo, "client sent invalid method while reading client request line")
		rq.finalize(http.StatusBadRequest)
		return
	}
	if len(rq.r.Method)+len(rq.r.RequestURI)+len(rq.r.Proto)+4 > maxRequestLine {
		rq.logf(LevelInfo, "client sent too long URI while reading client request line")
		rq.w.Header().Set("Connection", "close")
		rq.finalize(http.StatusRequestURITooLong)
		return
	}
	if rq.v.URIErr != nil || !strings.HasPrefix(rq.v.URI, "/") {
		rq.finalize(http.StatusBadRequest)
		return
	}
	rq.fromServerRewrite()
}

// fromServerRewrite runs the phases from the server rewrite phase on.
func (rq *request) fromServerRewrite() {
	if rq.runStmts(rq.srv.Stmts) == flowDone {
		return
	}
	rq.findAndRun()
}

// findAndRun searches the location for the current URI and runs the phases
// from location rewrite on.
func (rq *request) findAndRun() {
	for {
		rq.cycles++
		if rq.cycles > maxCycles {
			rq.logf(LevelErr, `rewrite or internal redirection cycle while processing "%s"`, rq.v.URI)
			rq.finalize(http.StatusInternalServerError)
			return
		}
		loc, caps, _, fail := searchLocations(rq.srv.Root, rq.v.URI)
		if fail != nil {
			rq.regexFailed(fail.re, fail.subject)
			return
		}
		rq.loc = loc
		rq.conf = rq.srv.Conf
		if loc == nil {
			break
		}
		rq.conf = loc.Conf
		stmts := loc.Stmts
		if le := loc.Conf.LimitExcept; le != nil && !le.Methods[rq.r.Method] {
			// nginx switches to the limit_except block's configuration when
			// it picks the location, before the rewrite phase: the
			// location's rewrite statements do not run for these methods.
			rq.conf, stmts = le.Conf, nil
		}
		if caps != nil {
			rq.v.SetCaptures(caps)
		}
		if loc.Conf.Internal && !rq.internal {
			rq.finalize(http.StatusNotFound)
			return
		}
		if max := loc.Conf.ClientMaxBodySize; max > 0 && rq.r.ContentLength > max {
			rq.logf(LevelErr, "client intended to send too large body: %d bytes", rq.r.ContentLength)
			rq.w.Header().Set("Connection", "close")
			rq.finalize(http.StatusRequestEntityTooLarge)
			return
		}
		rq.setPaths()
		f := rq.runStmts(stmts)
		if f == flowDone {
			return
		}
		if f != flowLast {
			break
		}
	}
	rq.afterRewrite()
}

// runNamed runs a named location (try_files, error_page @x).
func (rq *request) runNamed(name string) {
	loc, ok := rq.srv.Named[name]
	if !ok {
		rq.logf(LevelErr, `could not find named location "%s"`, name)
		rq.finalize(http.StatusInternalServerError)
		return
	}
	rq.cycles++
	if rq.cycles > maxCycles {
		rq.logf(LevelErr, `rewrite or internal redirection cycle while redirect to named location "%s"`, name)
		rq.finalize(http.StatusInternalServerError)
		return
	}
	rq.internal = true
	rq.loc, rq.conf = loc, loc.Conf
	switch rq.runStmts(loc.Stmts) {
	case flowDone:
		return
	case flowLast:
		rq.findAndRun()
		return
	}
	rq.afterRewrite()
}

// internalRedirect restarts processing with uri (and args) from the server
// rewrite phase, as nginx's ngx_http_internal_redirect does.
func (rq *request) internalRedirect(uri string) {
	path, args, hasArgs := strings.Cut(uri, "?")
	rq.v.URI = path
	if hasArgs {
		rq.v.Args = args
	}
	rq.internal = true
	if rq.cycles >= maxCycles {
		rq.logf(LevelErr, `rewrite or internal redirection cycle while internally redirecting to "%s"`, uri)
		rq.finalize(http.StatusInternalServerError)
		return
	}
	rq.fromServerRewrite()
}

func (rq *request) runStmts(list []nginxconf.Stmt) flow {
	for _, s := range list {
		switch s := s.(type) {
		case *nginxconf.SetStmt:
			s.Var.Set(rq.v, s.Value.Eval(rq.v))
		case *nginxconf.SetLuaStmt:
			if f := rq.setByLua(s); f != flowNext {
				return f
			}
		case *nginxconf.RewriteStmt:
			if f := rq.rewrite(s); f != flowNext {
				return f
			}
		case *nginxconf.ReturnStmt:
			rq.doReturn(s)
			return flowDone
		case *nginxconf.BreakStmt:
			return flowBreak
		case *nginxconf.IfStmt:
			if !rq.test(&s.Cond) {
				if rq.w.wrote {
					return flowDone // the condition's regex failed
				}
				continue
			}
			if s.Loc.Conf != nil {
				rq.conf = s.Loc.Conf
				rq.setPaths()
			}
			if f := rq.runStmts(s.Loc.Stmts); f != flowNext {
				return f
			}
		}
	}
	return flowNext
}

func (rq *request) rewrite(s *nginxconf.RewriteStmt) flow {
	caps, ok, err := s.Regex.Exec(rq.v.URI)
	if err != nil {
		rq.regexFailed(s.Regex, rq.v.URI)
		return flowDone
	}
	if !ok {
		rq.v.SetCaptures(nil) // nginx ran the regex into the request's capture vector
		return flowNext
	}
	rq.v.SetCaptures(caps)
	rawPath, _, _ := strings.Cut(rq.r.RequestURI, "?")
	quoted := vars.QuotedURI(rawPath)
	redirect := s.Redirect || s.Flag == "redirect" || s.Flag == "permanent"
	var target string
	if redirect {
		target = s.Replacement.EvalRedirect(rq.v, quoted)
	} else {
		target = s.Replacement.EvalRewrite(rq.v, quoted)
	}
	if redirect {
		code := http.StatusFound
		if s.Flag == "permanent" {
			code = http.StatusMovedPermanently
		}
		if s.KeepArgs && rq.v.Args != "" {
			if strings.Contains(target, "?") {
				target += "&" + rq.v.Args
			} else {
				target += "?" + rq.v.Args
			}
		}
		rq.redirect(code, target)
		return flowDone
	}
	path, args, hasArgs := strings.Cut(target, "?")
	switch {
	case hasArgs && s.KeepArgs && rq.v.Args != "":
		rq.v.Args = args + "&" + rq.v.Args
	case hasArgs:
		rq.v.Args = args
	case !s.KeepArgs:
		rq.v.Args = ""
	}
	rq.v.URI = path
	rq.setPaths()
	switch s.Flag {
	case "last":
		return flowLast
	case "break":
		return flowBreak
	}
	return flowNext
}

// test evaluates an `if` condition.
func (rq *request) test(c *nginxconf.Cond) bool {
	left := c.Left.Eval(rq.v)
	switch c.Op {
	case "":
		return left != "" && left != "0"
	case "=":
		return left == c.Right.Eval(rq.v)
	case "!=":
		return left != c.Right.Eval(rq.v)
	case "~", "~*", "!~", "!~*":
		// nginx runs the regex with the request's capture vector: a failed
		// match leaves $1..$9 empty.
		caps, ok, err := c.Regex.Exec(left)
		if err != nil {
			rq.regexFailed(c.Regex, left)
			return false
		}
		rq.v.SetCaptures(caps)
		return ok == (c.Op[0] == '~')
	}
	neg := strings.HasPrefix(c.Op, "!")
	fi, err := os.Stat(left)
	var r bool
	switch strings.TrimPrefix(c.Op, "!") {
	case "-f":
		r = err == nil && fi.Mode().IsRegular()
	case "-d":
		r = err == nil && fi.IsDir()
	case "-e":
		r = err == nil
	case "-x":
		r = err == nil && fi.Mode()&0o111 != 0
	}
	return r != neg
}

func (rq *request) doReturn(s *nginxconf.ReturnStmt) {
	code := s.Code
	if code == 444 {
		rq.closeConn()
		return
	}
	text := ""
	if s.Text != nil {
		text = s.Text.Eval(rq.v)
	}
	switch code {
	case 301, 302, 303, 307, 308:
		if s.Text != nil {
			rq.redirect(code, text)
			return
		}
	}
	if s.Text == nil {
		rq.finalize(code)
		return
	}
	rq.send(code, rq.conf.DefaultType, []byte(text))
}

// redirect answers code with a Location header (made absolute as nginx does
// with absolute_redirect on).
func (rq *request) redirect(code int, location string) {
	if strings.HasPrefix(location, "/") && rq.conf.AbsoluteRedirect {
		location = rq.absolute(location)
	}
	rq.w.Header().Set("Location", location)
	rq.finalize(code)
}

func (rq *request) absolute(path string) string {
	scheme := "http"
	defPort := "80"
	if rq.r.TLS != nil {
		scheme, defPort = "https", "443"
	}
	host := hostOf(rq.r)
	port := ""
	if a, ok := rq.r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if h, p, err := net.SplitHostPort(a.String()); err == nil {
			if p != defPort {
				port = ":" + p
			}
			if host == "" {
				// no Host: nginx names the local address
				host = h
				if strings.Contains(h, ":") {
					host = "[" + h + "]"
				}
			}
		}
	}
	return scheme + "://" + host + port + path
}

// afterRewrite runs rewrite_by_lua, the access phase, try_files and content.
func (rq *request) afterRewrite() {
	if rq.conf.RewriteLua != nil {
		if !rq.runLuaPhase(rq.conf.RewriteLua) {
			return
		}
	}
	rq.realIP(rq.conf)
	if !rq.access() {
		return
	}
	if len(rq.conf.TryFiles) > 0 {
		if !rq.tryFiles() {
			return
		}
	}
	rq.content()
}

// send writes a complete response with body.
func (rq *request) send(code int, ctype string, body []byte) {
	h := rq.w.Header()
	if ctype != "" {
		h.Set("Content-Type", ctype)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	rq.writeHeader(code)
	if rq.r.Method != http.MethodHead {
		rq.w.Write(body)
	}
}

// writeHeader adds the add_header headers and the Server header, then writes.
func (rq *request) writeHeader(code int) {
	rq.w.WriteHeader(code)
}

// outputHeaders runs when the response headers go out, whoever writes them
// (our responses, the static file server): $status, Server, add_header,
// expires and header_filter_by_lua, as nginx's header filters do. It
// returns the status to send.
func (rq *request) outputHeaders(code int) int {
	rq.v.Status = code // add_header values may read $status
	h := rq.w.Header()
	if rq.conf.ServerTokens {
		h.Set("Server", "ngxsockify")
	}
	if cs := rq.conf.Charset; cs != "" {
		if ct := h.Get("Content-Type"); ct != "" && !strings.Contains(ct, ";") && charsetTypes[ct] {
			h.Set("Content-Type", ct+"; charset="+cs)
		}
	}
	ok := false
	switch code {
	case 200, 201, 204, 206, 301, 302, 303, 304, 307, 308:
		ok = true
	}
	if ok && rq.conf.Expires != nil {
		setExpires(h, rq.conf.Expires, rq.v, time.Now())
	}
	for _, ah := range rq.conf.AddHeaders {
		if ok || ah.Always {
			if v := ah.Value.Eval(rq.v); v != "" {
				h.Add(ah.Name, v)
			}
		}
	}
	if c := rq.conf.HeaderFilterLua; c != nil {
		code = rq.headerFilter(c, code)
	}
	rq.v.Status = code
	return code
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
	out := rq.st.lua.Run(rq.r.Context(), ch, lr)
	if out.Err != nil {
		rq.logf(LevelErr, "%v", out.Err)
		return code
	}
	if lr.Status != 0 {
		return lr.Status
	}
	return code
}

// finalize ends the request with status: an error_page when one applies,
// else nginx's built-in page.
func (rq *request) finalize(code int) {
	if rq.hijacked || rq.closed || rq.w.wrote {
		return
	}
	if code >= 300 && !rq.errPaged {
		if ep, ok := rq.conf.ErrorPages[code]; ok {
			rq.errPaged = true
			rq.v.Status = code
			if ep.Code > 0 {
				rq.v.Status = ep.Code
			}
			rq.applyErrorPage(code, ep)
			return
		}
	}
	switch {
	case code == 204 || code == 304 || (code >= 100 && code < 200):
		rq.writeHeader(code)
	case code >= 300:
		page := errorPage(code, rq.conf.ServerTokens)
		if code == 401 {
			// headers set by auth_basic stay
		}
		if page == nil {
			rq.w.Header().Set("Content-Length", "0")
			rq.writeHeader(code)
			return
		}
		rq.send(code, "text/html", page)
	default:
		rq.w.Header().Set("Content-Length", "0")
		rq.writeHeader(code)
	}
}

func (rq *request) applyErrorPage(code int, ep *nginxconf.ErrorPage) {
	target := ep.Target.Eval(rq.v)
	status := code
	if ep.Code > 0 {
		status = ep.Code
	}
	switch {
	case strings.HasPrefix(target, "@"):
		if ep.Code > 0 {
			rq.w.override = ep.Code
		} else if ep.Code == 0 {
			rq.w.override = code
		}
		rq.runNamed(target)
	case strings.HasPrefix(target, "/"):
		if ep.Code == 0 {
			rq.w.override = code
		} else if ep.Code > 0 {
			rq.w.override = ep.Code
		}
		if rq.r.Method != http.MethodHead {
			rq.r.Method = http.MethodGet
		}
		rq.internalRedirect(target)
	default:
		if status < 301 || status > 308 {
			status = http.StatusFound
		}
		rq.w.Header().Set("Location", target)
		rq.errPaged = true
		rq.finalize(status)
	}
}

// closeConn closes the connection without a reply (return 444).
func (rq *request) closeConn() {
	rq.closed = true
	rq.v.Status = 444
	if hj, ok := rq.w.w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
		}
	}
}

func (rq *request) logf(level int, format string, args ...any) {
	el := rq.st.elog
	if el == nil || !el.enabled(level) {
		return
	}
	el.Logf(level, rq.conn, "%s%s", fmt.Sprintf(format, args...), rq.logWhere().format(rq.v.UpstreamAddr))
}

// logWhere is the request part of an error-log line, kept apart so that a
// tunnel can log its end without holding the whole request.
type logWhere struct {
	client, server, request, host string
}

func (rq *request) logWhere() logWhere {
	client, _, err := net.SplitHostPort(rq.r.RemoteAddr)
	if err != nil {
		client = rq.r.RemoteAddr
	}
	return logWhere{client: client, server: rq.srv.PrimaryName(),
		request: rq.r.Method + " " + rq.r.RequestURI + " " + rq.r.Proto, host: rq.r.Host}
}

// format gives nginx's ", client: ..., server: ..., request: "...",
// upstream: "...", host: "..."" (upstream only when known).
func (w logWhere) format(upstream string) string {
	s := ", client: " + w.client + ", server: " + w.server + `, request: "` + w.request + `"`
	if upstream != "" {
		s += `, upstream: "` + upstream + `"`
	}
	return s + `, host: "` + w.host + `"`
}

// clientIP is the request's peer address.
func clientIP(r *http.Request) net.IP {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return nil
	}
	return net.ParseIP(host)
}

// respWriter records the status and body size for the access log, and
// applies an error_page status override.
type respWriter struct {
	w        http.ResponseWriter
	status   int
	bytes    int64
	wrote    bool
	override int
	// onHeaders adds the configured headers when the status is known.
	onHeaders func(code int) int
}

func (w *respWriter) Header() http.Header { return w.w.Header() }

func (w *respWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	if w.override != 0 {
		code = w.override
	}
	if w.onHeaders != nil {
		code = w.onHeaders(code)
	}
	w.wrote = true
	w.status = code
	w.w.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.w.Write(p)
	w.bytes += int64(n)
	return n, err
}

// finish writes the access-log line.
func (rq *request) finish() {
	if rq.hijacked || rq.logged {
		return
	}
	rq.logAccess(rq.w.status, rq.w.bytes)
}

func (rq *request) logAccess(status int, bodyBytes int64) {
	rq.logged = true
	if status == 0 {
		status = rq.v.Status
	}
	rq.v.Status = status
	rq.v.BodyBytesSent = bodyBytes
	rq.v.BytesSent = bodyBytes
	conf := rq.conf
	if conf == nil || conf.AccessLogOff {
		return
	}
	logs := conf.AccessLogs
	for i := range logs {
		al := &logs[i]
		f := rq.st.access[al]
		if f == nil {
			p := al.Path.Eval(rq.v)
			var err error
			if f, err = rq.s.logs.open(p); err != nil {
				rq.logf(LevelErr, "%v", err)
				continue
			}
		}
		line := al.Format.Template.EvalLog(rq.v)
		if _, err := f.Write([]byte(line + "\n")); err != nil && f.shouldReport() {
			rq.logf(LevelAlert, `write() to "%s" failed (%v) while logging request`, f.path, errnoError{err})
		}
	}
}

var _ http.Handler = (*Server)(nil)

// setPaths updates $document_root and $request_filename for the current
// configuration and URI.
func (rq *request) setPaths() {
	conf := rq.conf
	if conf.Alias != nil {
		rq.v.DocumentRoot = rq.st.cfg.FullName(conf.Alias.Eval(rq.v))
	} else {
		root := "html"
		if conf.Root != nil {
			root = conf.Root.Eval(rq.v)
		}
		rq.v.DocumentRoot = rq.st.cfg.FullName(root)
	}
	rq.v.RequestFilename = rq.mapPath(rq.v.URI)
}

// charsetTypes is nginx's default charset_types: the types `charset` adds
// itself to.
var charsetTypes = map[string]bool{
	"text/html": true, "text/xml": true, "text/plain": true, "text/vnd.wap.wml": true,
	"application/javascript": true, "application/rss+xml": true,
}

// regexFailed ends the request when a regex hit the match limit while
// deciding where it goes: 500, with nginx's alert.
func (rq *request) regexFailed(re *vars.Regex, subject string) {
	rq.logf(LevelAlert, `pcre2_match() failed: -47 on "%s" using "%s"`, subject, re.String())
	rq.finalize(http.StatusInternalServerError)
}

// maxRequestLine is nginx's large_client_header_buffers size (8k): a longer
// request line answers 414.
const maxRequestLine = 8192

// validMethod reports whether m is a method nginx's parser accepts:
// upper-case letters, "_" and "-".
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if (c < 'A' || c > 'Z') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}
