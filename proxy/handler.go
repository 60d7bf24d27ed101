package proxy

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"ngxsockify/luahooks"
	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/http1"
)

// maxURIChanges is nginx's limit on a request's URI changes (rewrite
// ... last, internal redirects, named locations): the next one is a
// redirection cycle (NGX_HTTP_MAX_URI_CHANGES).
const maxURIChanges = 10

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
	wire http1.Wire // the connection layer, for its per-location settings (nil: none)
	// headSent is the response head written on a hijacked connection
	// (an upgrade's 101): $bytes_sent counts it, the connection layer
	// having seen none of it.
	headSent int64
	// bodyDiscarded: the body bytes received were dropped before the
	// response (discardBody), which happens once
	bodyDiscarded bool

	lua      *luahooks.Request
	internal bool // reached through an internal redirect (error_page, try_files, index) or a rewrite
	// addURIToAlias: try_files found a file under a regex location's alias,
	// which from then on is a directory the URI is added to (nginx's
	// r->add_uri_to_alias)
	addURIToAlias bool
	uriChanges    int  // how many times the URI changed (changeURI)
	errPaged      bool // an error_page was already applied
	hijacked      bool
	letGo         bool // hijacked by a websockify tunnel that holds nothing of the request
	realIPDone    bool
	subrequest    bool // ngx.location.capture: no access phase, no access log
	filtered      bool // an SSI include's or an addition's subrequest: its body goes through its own filters (bodySubrequest)
	depth         int  // subrequest nesting
	closed        bool // ngx.exit(444): close without a reply
	staticFields  bool // the static handler answers: Last-Modified, Accept-Ranges are nginx's fields (headers_more.go)
	absLocation   bool // redirect: make a relative Location absolute once the header filters ran
	trailers      bool // add_trailer's go after the chunked body (headers.go)
	ifProxy       bool // an "if" holding proxy_pass matched: its handler stays (contentPhase)
	truncated     bool // the response body ended early (a backend failed mid-body): a capture's res.truncated
	bodyTimedOut  bool // ... because the backend timed out (proxy_read_timeout)
	logged        bool // the log phase ran (or must not run)
	uriChanged    bool // a rewrite changed the URI: post-rewrite searches the locations again
	// parent is the request that issued this subrequest (nil: a main
	// request): error-log lines name the main request.
	parent *request
	// action, kept on the main request, is what nginx's connection log
	// says the connection is doing ("sending to client" once an upstream
	// ended; reset when a request or subrequest starts, as
	// ngx_http_handler does): error-log lines end with " while <action>".
	// Atomic: capture_multi's and mirror's subrequests run beside each
	// other and their main request (nil: none).
	action atomic.Pointer[string]
	// cleanups run when the request ends (nginx's pool cleanups), or for
	// a tunnel when the tunnel ends: limit_conn's counts.
	cleanups      []func()
	connHold      *connHold // limit_conn's, when it counted the request
	proxyWholeURI bool      // rewrite ... break: proxy_pass puts the whole URI after its URI part (nginx's valid_location = 0)
	// paths: what $document_root and $request_filename come from (setPaths)
	paths pathsAt
	// upstream is the first proxy_pass's (newProxyUpstream), allocated
	// with the request
	upstream      proxyUpstream
	upstreamTaken bool
	// bodyRead: readBody read the body whole, into body (which is
	// $request_body, or in $request_body_file)
	bodyRead bool
	// h2Length: an HTTP/2 body sent without content-length, read whole,
	// whose length proxy_pass declares as nginx does
	h2Length bool
	// bodyQueued: the response is return's text, made whole in memory
	// (on HTTP/2, limit_conn's count is given back without waiting for it
	// to be sent)
	bodyQueued bool
	body       []byte
	// accelCharset is a backend's X-Accel-Charset: the charset the
	// response is recoded into and named with (charset.go)
	accelCharset string
	// postActed: post_action ran (post_action.go)
	postActed bool
	// mirrors are the mirror subrequests under way (mirror.go): the
	// request ends once they are done
	mirrors *sync.WaitGroup
	// mirrorGate, closed by releaseMirrors, holds the last mirrors started
	// until the request reached the point where nginx runs them
	mirrorGate chan struct{}
	// ssiWaits are where, in the SSI filter's output of the last piece,
	// waited includes ended (nginx's filter stops there until the
	// subrequest is done): the addition filter puts the after-body there
	ssiWaits []int
	// posted are subrequests a body filter made and that run once the
	// body filters are done with the current piece, as nginx runs its
	// posted requests (an addition's before-body subrequest): runPosted
	posted []func()
	// served, set when an HTTP/2 stream ended before its mirrors
	// (mirror.go), is closed once serve returned: the request's end (log
	// phase, cleanups) waits for it and for the mirrors.
	served chan struct{}
	// order, when snapped, is the header list's order as a mirror
	// subrequest got it from its parent when it was made (its headers are
	// a copy taken then, as nginx's): the parent's own moves on beside it.
	order   *luahooks.HeaderOrder
	snapped bool
	// limitMu, on a main request, is held by a subrequest while limit_req
	// or limit_conn judges it: subrequests run side by side
	// (capture_multi, mirrors) and the main request has one verdict.
	limitMu sync.Mutex
	// onWait, on a subrequest of capture_multi, starts the next one when
	// this one waits (a proxy_pass exchange) or ends.
	onWait func()
	// gzip is the gzip modules' verdict on the request (gzip.go)
	gzip gzipReq
}

// coreModule is what nginx's core module and its header filter do in
// the phases: the Server header, directives we cannot enforce (refused in
// the access phase before any other check), and content directives we do
// not implement (502).
var coreModule = module{
	name: "core",
	provision: func(_ *Server, st *state) error {
		for _, lc := range st.cfg.HTTP.Confs {
			if lc.Unsupported != nil {
				st.confs[lc.ID].content = unsupportedContent
			}
		}
		return nil
	},
	register: func(e *engine) {
		e.add(phaseAccess, failClosed)
		e.addHeaderFilter(serverHeader)
	},
}

// failClosed refuses every request of a level that holds an access
// directive we cannot enforce (auth_request, limit_req, ...), whatever
// satisfy says.
func failClosed(rq *request) rc {
	if len(rq.conf.FailClosed) == 0 {
		return rcDeclined
	}
	w := rq.conf.FailClosed[0]
	rq.logf(ngxlog.Err, `"%s" directive in %s:%d is not supported by ngxsockify, request refused`, w.Directive, w.File, w.Line)
	rq.finalize(http.StatusInternalServerError)
	return rcDone
}

// unsupportedContent answers 502 where a content directive we do not
// implement (proxy_pass, fastcgi_pass, ...) is set.
func unsupportedContent(rq *request) {
	u := rq.conf.Unsupported
	rq.logf(ngxlog.Err, `"%s" directive in %s:%d is not supported by ngxsockify`, u.Directive, u.File, u.Line)
	rq.finalize(http.StatusBadGateway)
}

// serverHeader adds "Server: ngxsockify" under server_tokens on.
func serverHeader(rq *request, code int) int {
	if h := rq.w.Header(); rq.conf.ServerTokens {
		if _, set := h["Server"]; !set {
			h["Server"] = serverValue[:1:1]
		}
	}
	return code
}

// serverValue is the Server header's value, shared by every response: an
// append to it copies it (its capacity is its length), and nothing
// changes a header value in place.
var serverValue = []string{"ngxsockify"}

// ServeHTTP runs one request through nginx's phases on the configuration
// in effect when it arrived (see the package doc).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	objs := requestPool.Get().(*requestObjects)
	if s.serve(objs, w, r) { // not after a panic
		objs.rq, objs.rw = request{}, respWriter{}
		objs.v.Reset() // keeps the array of its variables' values
		requestPool.Put(objs)
	}
}

// requestPool keeps the objects of requests that ended with nothing left
// holding them (requestObjects.reusable).
var requestPool = sync.Pool{New: func() any { return new(requestObjects) }}

// serve is ServeHTTP with objs, zero (its variables Reset); it reports
// whether objs can serve another request.
func (s *Server) serve(objs *requestObjects, w http.ResponseWriter, r *http.Request) (reusable bool) {
	st := s.state.Load()
	reusable = true
	cc := connOf(r.Context())
	if st.cfg.HTTP == nil || cc == nil || cc.l == nil {
		http.Error(w, "no http block", http.StatusInternalServerError)
		return
	}
	if cc.gst != st && cc.gst != nil && r.ProtoMajor == 1 && len(r.Header["Upgrade"]) == 0 {
		// a connection of a configuration reloaded since: no keep-alive
		// (nginx's old worker is exiting)
		w.Header().Set("Connection", "close")
	}
	g := cc.group(st, r)
	if g == nil {
		http.Error(w, "no server", http.StatusInternalServerError)
		return
	}
	srv, caps := g.find(hostOf(r))
	// objs is zero: set field by field (a composite literal would be built
	// aside and copied, a kilobyte)
	rw, rq := &objs.rw, &objs.rq
	rw.w, rw.wire, rw.onHeaders = w, true, rq
	rq.s, rq.st, rq.w, rq.r, rq.srv, rq.conf, rq.conn = s, st, rw, r, srv, srv.Conf, cc.id
	rq.v = &objs.v
	vars.InitRequest(rq.v, st.cfg.HTTP.Vars, r)
	if g.def.Conf.NoMergeSlashes {
		rq.v.URI, rq.v.URIErr = unmergedURI(r)
	}
	rq.v.RespHeader = rw.Header() // $sent_http_*
	rq.v.ConnID = cc.id
	rq.v.ServerName = srv.PrimaryName()
	if raw := http1.RawHeader(r); raw != nil {
		// its bytes never change (http1.Head.Raw)
		rq.v.RequestHead = unsafe.String(unsafe.SliceData(raw), len(raw))
	}
	rq.v.Conns = &s.stats
	rq.wire = wireOf(w)
	rq.setWire()
	if rq.wire != nil {
		p := rq.wire.Params()
		// (a virtual server may read its lines under other settings)
		rq.v.OddHeaderNames = p.UnderscoresInHeaders || p.KeepInvalidHeaders || p.LineRulesFor != nil
		rq.v.RequestLength = rq.wire.RequestLength()
		rq.v.ConnRequests, rq.v.ConnStart = rq.wire.ConnRequests(), rq.wire.ConnStart()
	}
	if caps != nil {
		rq.v.SetCaptures(caps)
	}
	for _, n := range http1.Notes(r) {
		rq.logf(ngxlog.Info, "%s while reading client request headers", n)
	}
	defer func() {
		if rq.served != nil {
			close(rq.served) // the request's end may now run (mirror.go)
		}
	}()
	defer func() { reusable = rq.reusable() }() // once the others ran
	defer s.requestEnd(rq, s.stats.requestStart(cc.st))
	defer rq.finish()
	rq.run()
	return
}

// unmergedURI is r's $uri under merge_slashes off.
func unmergedURI(r *http.Request) (string, error) {
	raw := r.RequestURI
	if raw == "" && r.URL != nil {
		raw = r.URL.RequestURI()
	}
	path, _, _ := vars.SplitRequestURI(raw)
	return vars.NormalizeURIMerge(path, false)
}

// reusable reports whether nothing holds rq (and its respWriter and
// variables) once its handler returned: not a hijacked connection, unless
// it is a websockify tunnel that keeps nothing of it (no log line), nor a
// request Lua saw, whose states outlive it.
func (rq *request) reusable() bool {
	return (!rq.hijacked || rq.letGo) && !rq.closed && rq.lua == nil && rq.st.lua == nil && rq.served == nil
}

// requestObjects are the objects of a request allocated at once (or
// taken from requestPool).
type requestObjects struct {
	rq request
	rw respWriter
	v  vars.Request
}

// hostOf is the request's host name as nginx uses it for server selection:
// lowercased, without port or trailing dot.
func hostOf(r *http.Request) string {
	// one pass over the bytes tells whether there is a colon (a port)
	// and whether the name is plain: ASCII without upper case
	// (strings.ToLower changes some non-ASCII letters), which ToLower
	// would leave as it is
	h, seen := r.Host, uint8(0)
	for i := 0; i < len(h); i++ {
		seen |= hostBytes[h[i]]
	}
	if seen&hostColon != 0 && !strings.HasSuffix(h, "]") {
		h = h[:strings.LastIndexByte(h, ':')]
	}
	plain := seen&hostUnplain == 0
	if plain && !strings.HasSuffix(h, ".") {
		return h
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// hostBytes classes the bytes of a Host for hostOf.
var hostBytes = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c == ':':
			t[c] = hostColon
		case c >= 0x80 || 'A' <= c && c <= 'Z':
			t[c] = hostUnplain
		}
	}
	return t
}()

const (
	hostColon   = 1 << iota // ':'
	hostUnplain             // upper case, non-ASCII
)

func (rq *request) run() {
	if rq.r.Host == "" && rq.r.ProtoAtLeast(1, 1) {
		// net/http answers a missing Host itself: this was an empty one.
		rq.logf(ngxlog.Info, "client sent invalid host header while reading client request headers")
		rq.finalize(http.StatusBadRequest)
		return
	}
	if rq.runHandlers(phasePostRead) == rcDone {
		return
	}
	if !rq.validRequestLine() {
		return
	}
	rq.runPhases(phaseServerRewrite)
}

// validRequestLine answers the requests nginx refuses while reading the
// request line (here after the post-read phase, which may change the client
// address the log names).
func (rq *request) validRequestLine() bool {
	if !validMethod(rq.r.Method) {
		rq.logf(ngxlog.Info, "client sent invalid method while reading client request line")
		rq.finalize(http.StatusBadRequest)
		return false
	}
	if rq.r.ProtoMajor < 2 && len(rq.r.Method)+len(rq.r.RequestURI)+len(rq.r.Proto)+4 > maxRequestLine { // HTTP/2: no request line (http2.go bounds :path)
		rq.logf(ngxlog.Info, "client sent too long URI while reading client request line")
		rq.w.Header().Set("Connection", "close")
		rq.finalize(http.StatusRequestURITooLong)
		return false
	}
	if rq.v.URIErr != nil || !strings.HasPrefix(rq.v.URI, "/") {
		rq.finalize(http.StatusBadRequest)
		return false
	}
	return true
}

// changeURI counts a change of the request's URI, as nginx's
// r->uri_changes does; false: the limit is spent, and the request ends with
// 500 after the error-log line "rewrite or internal redirection cycle
// while <what>", with name in what's %s.
func (rq *request) changeURI(what, name string) bool {
	rq.uriChanges++
	if rq.uriChanges <= maxURIChanges {
		return true
	}
	rq.logf(ngxlog.Err, "rewrite or internal redirection cycle while "+what, name)
	rq.finalize(http.StatusInternalServerError)
	return false
}

// uriChangesLeft reports whether the URI may still change (nginx's
// r->uri_changes != 0).
func (rq *request) uriChangesLeft() bool { return rq.uriChanges <= maxURIChanges }

// findConfig is the find-config phase: it searches the location for the
// current URI and applies what nginx checks when it picks one. It reports
// whether the request goes on.
func (rq *request) findConfig() bool {
	rq.uriChanged = false
	loc, caps, found, fail := searchLocations(rq.srv.Root, rq.v.URI)
	if fail != nil {
		rq.regexFailed(fail.re, fail.subject)
		return false
	}
	rq.loc = loc
	rq.conf = rq.srv.Conf
	rq.ifProxy = false // nginx's find-config phase clears r->content_handler
	if loc == nil {
		return true
	}
	rq.conf = loc.Conf
	if le := loc.Conf.LimitExcept; le != nil && !le.Methods[rq.r.Method] {
		// nginx switches to the limit_except block's configuration when
		// it picks the location, before the rewrite phase: the
		// location's rewrite statements do not run for these methods.
		rq.conf = le.Conf
	}
	if caps != nil {
		rq.v.SetCaptures(caps)
	}
	if loc.Conf.Internal && !rq.internal {
		rq.finalize(http.StatusNotFound)
		return false
	}
	if max := loc.Conf.ClientMaxBodySize; max > 0 && rq.r.ContentLength > max {
		rq.logf(ngxlog.Err, "client intended to send too large body: %d bytes", rq.r.ContentLength)
		rq.w.Header().Set("Connection", "close")
		rq.finalize(http.StatusRequestEntityTooLarge)
		return false
	}
	rq.setPaths()
	rq.setWire()
	if found == locAutoRedirect {
		target := vars.Escape(loc.Path, uriEscaped)
		if rq.v.Args != "" {
			target += "?" + rq.v.Args
		}
		rq.redirect(http.StatusMovedPermanently, target)
		return false
	}
	return true
}

// uriEscaped is nginx 1.22's NGX_ESCAPE_URI table, which it escapes the
// paths of its own redirects (directory, auto_redirect) with: controls,
// space, bytes from 0x7f and "#%?" plus those RFC 3986 does not allow
// ("<>\^`{|}).
func uriEscaped(c byte) bool {
	return c <= ' ' || c >= 0x7f || strings.IndexByte("\"#%<>?\\^`{|}", c) >= 0
}

// runNamed runs a named location (try_files, error_page @x) from the
// rewrite phase, as ngx_http_named_location does.
func (rq *request) runNamed(name string) {
	if !rq.changeURI(`redirect to named location "%s"`, name) {
		return
	}
	if rq.v.URI == "" {
		// try_files "" under a regex location's alias empties it
		rq.logf(ngxlog.Err, `empty URI in redirect to named location "%s"`, name)
		rq.finalize(http.StatusInternalServerError)
		return
	}
	loc, ok := rq.srv.Named[name]
	if !ok {
		rq.logf(ngxlog.Err, `could not find named location "%s"`, name)
		rq.finalize(http.StatusInternalServerError)
		return
	}
	rq.internal = true
	rq.v.ForgetModuleState() // nginx clears the module contexts
	rq.ifProxy = false       // and the content handler an "if" set
	if rq.lua != nil {
		rq.lua.ResetCtx() // ngx.ctx is lua-nginx-module's context's
	}
	rq.uriChanged = false
	rq.loc, rq.conf = loc, loc.Conf
	// ngx_http_update_location_config: limit_except's block for the
	// methods it does not let through, and the paths ($document_root,
	// $request_filename) and connection settings of the named location.
	// The alias mapping try_files set up stays (nginx does not reset
	// add_uri_to_alias here, only in an internal redirect).
	if le := loc.Conf.LimitExcept; le != nil && !le.Methods[rq.r.Method] {
		rq.conf = le.Conf
	}
	rq.setPaths()
	rq.setWire()
	rq.runPhases(phaseRewrite)
}

// internalRedirect restarts processing with uri (and args) from the server
// rewrite phase, as nginx's ngx_http_internal_redirect does.
func (rq *request) internalRedirect(uri string) {
	rq.mainRequest().action.Store(nil)
	path, args, hasArgs := strings.Cut(uri, "?")
	if hasArgs {
		rq.v.Args = args
	}
	rq.redirectTo(path, uri)
}

// internalRedirectArgs is internalRedirect where nginx splits the target
// into a URI and its arguments (ngx_http_split_args), try_files' fallback
// and error_page's URI: the arguments are the target's, none when it has
// no "?" (the request's are dropped). Without a "?", $args is then empty
// (found) after try_files, as nginx 1.22's (ngx.var.args is ""), and not
// found after error_page.
func (rq *request) internalRedirectArgs(uri string, emptyFound bool) {
	_, args, has := strings.Cut(uri, "?")
	var err error
	if has || emptyFound {
		err = rq.v.Set("args", args)
	} else {
		err = rq.v.Unset("args")
	}
	if err != nil { // not expected: $args is built in
		rq.v.Args = args
	}
	rq.internalRedirect(uri)
}

// redirectTo is internalRedirect to path, the arguments as they are now
// (uri: the target as written, for the error log).
func (rq *request) redirectTo(path, uri string) {
	rq.v.URI = path
	rq.internal = true
	rq.addURIToAlias = false // a regex location's alias is whole again
	if rq.lua != nil {
		rq.lua.ResetCtx() // ngx.ctx is lua-nginx-module's context's
	}
	// ngx_http_handler, run again: proxy_pass replaces the location's
	// prefix again after a rewrite ... break (valid_location), and the
	// gzip verdict is taken again with the new location's settings
	rq.proxyWholeURI = false
	rq.gzip = gzipReq{}
	rq.v.ForgetModuleState() // nginx clears the module contexts
	if !rq.changeURI(`internally redirecting to "%s"`, uri) {
		return
	}
	rq.runPhases(phaseServerRewrite)
}

// redirect answers code with a Location header (made absolute as nginx does
// with absolute_redirect on).
//
// The header keeps the relative form until the header filters have run, as
// nginx's header filter makes it absolute last (header_filter_by_lua
// reads "/t/"); a subrequest's stays relative, as nginx's does.
func (rq *request) redirect(code int, location string) {
	rq.absLocation = strings.HasPrefix(location, "/") && rq.conf.AbsoluteRedirect
	rq.w.Header().Set("Location", location)
	rq.w.note("Location") // an entry of nginx's list, unless made absolute
	rq.finalize(code)
}

func (rq *request) absolute(path string) string {
	scheme := "http"
	defPort := "80"
	if rq.r.TLS != nil {
		scheme, defPort = "https", "443"
	}
	host := hostOf(rq.r)
	if rq.conf.ServerNameInRedirect {
		host = rq.srv.PrimaryName() // nginx's cscf->server_name, even ""
	}
	port := ""
	if a, ok := rq.r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if h, p, err := net.SplitHostPort(a.String()); err == nil {
			if p != defPort && !rq.conf.NoPortInRedirect {
				port = ":" + p
			}
			if host == "" && !rq.conf.ServerNameInRedirect {
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

// send writes a complete response with body.
func (rq *request) send(code int, ctype string, body []byte) {
	if c := rq.discardBody(); c != 0 {
		rq.finalize(c)
		return
	}
	// the keys are canonical: no Set, which canonicalizes them again
	// (some 400 instructions each)
	h := rq.w.Header()
	if ctype != "" {
		h["Content-Type"] = []string{ctype}
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	rq.writeHeader(code)
	if rq.r.Method != http.MethodHead {
		rq.w.Write(body)
	}
}

// writeHeader adds the add_header headers and the Server header, then writes.
func (rq *request) writeHeader(code int) {
	rq.w.WriteHeader(code)
}

// finalize ends the request with status: an error_page when one applies,
// else nginx's built-in page.
func (rq *request) finalize(code int) {
	if rq.hijacked || rq.closed || rq.w.wrote {
		return
	}
	if code >= 300 {
		// nginx's special response: this status replaces the one an
		// earlier error_page set (r->err_status), unless error_page
		// sets another below.
		rq.w.override = 0
	}
	// nginx's special response: error_page applies once (r->error_page),
	// or again and again with recursive_error_pages, and never once the
	// internal redirects are spent (a redirection cycle's 500)
	if code >= 300 && !rq.errPaged && rq.uriChangesLeft() {
		if ep, ok := rq.conf.ErrorPages[code]; ok {
			rq.errPaged = !rq.conf.RecursiveErrorPages
			rq.v.Status = code
			if ep.Code > 0 {
				rq.v.Status = ep.Code
			}
			rq.applyErrorPage(code, ep)
			return
		}
	}
	switch code {
	case http.StatusRequestTimeout, 499:
		// nginx terminates the request: no reply
		rq.closeConn()
		rq.v.Status = code
		return
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusRequestURITooLong,
		http.StatusInternalServerError, http.StatusNotImplemented:
		// nginx's special response ends keep-alive for these
		rq.w.Header().Set("Connection", "close")
	}
	if c := rq.discardBody(); c != 0 && code < 300 {
		code = c
	}
	switch {
	case code == 204 || code == 304 || (code >= 100 && code < 200):
		rq.writeHeader(code)
	case rq.msieRefreshes(code):
		rq.sendRefresh()
	case code >= 300:
		page := rq.specialPage(code)
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
	// The status sent: without "=", the error's; "=code": code; a bare
	// "=": the one the target answers with.
	switch {
	case ep.Code > 0:
		rq.w.override = ep.Code
	case ep.Code == 0:
		rq.w.override = code
	}
	switch {
	case strings.HasPrefix(target, "@"):
		rq.runNamed(target)
	case strings.HasPrefix(target, "/"):
		if rq.r.Method != http.MethodHead {
			rq.r.Method = http.MethodGet
		}
		rq.internalRedirectArgs(target, false)
	default:
		// a redirect: 302 unless "=" names a redirect status
		status := http.StatusFound
		switch ep.Code {
		case 301, 302, 303, 307, 308:
			status = ep.Code
		}
		rq.w.override = 0
		rq.w.Header().Set("Location", target)
		rq.w.note("Location")
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

func (rq *request) logf(level ngxlog.Level, format string, args ...any) {
	el := rq.errorLog()
	if el == nil || !el.enabled(level) {
		return
	}
	msg := fmt.Sprintf(format, args...)
	// a format that names its own action ("... while reading client
	// request line") stands for nginx's action at that point
	if a := rq.mainRequest().action.Load(); a != nil && !strings.Contains(format, " while ") {
		msg += " while " + *a
	}
	el.Logf(level, rq.conn, "%s%s", msg, rq.logWhere().format(rq.upstreamName()))
}

// upstreamName is the error log's upstream of the request: a proxy_pass's
// URL ("http://127.0.0.1:8081/x", as ngx_http_log_error_handler writes
// the schema, peer and URI), else the upstream address known.
func (rq *request) upstreamName() string {
	if up := &rq.upstream; rq.upstreamTaken && up.addr != "" && up.addr == rq.v.UpstreamAddr {
		return up.url() + up.uri
	}
	return rq.v.UpstreamAddr
}

// The actions of request.action.
var (
	actionSending = "sending to client"
	actionLogging = "logging request"
)

// mainRequest is the main request of a subrequest, else rq.
func (rq *request) mainRequest() *request {
	for rq.parent != nil {
		rq = rq.parent
	}
	return rq
}

// logWhere is the request part of an error-log line, kept apart so that a
// tunnel can log its end without holding the whole request. It keeps what
// the line is made of as it came (every tunnel takes one, few log): format
// cuts the client's host and the request line out of them.
type logWhere struct {
	// remote is the client's address (host:port, or what the listener
	// gives); format names its host
	remote string
	server string
	// head is the request head as received (vars.Request.RequestHead),
	// whose first line is the request (HTTP/2: that line alone)
	head string
	// subrequest is the URI of the subrequest being served, when one is
	// (the rest is its main request's)
	subrequest string
	// host and referrer are the Host and Referer headers, when sent
	host, referrer       string
	hasHost, hasReferrer bool
}

func (rq *request) logWhere() logWhere {
	if rq.parent != nil {
		w := rq.mainRequest().logWhere()
		w.subrequest = rq.v.URI
		return w
	}
	// nginx names the Host header, not the request line's host, and none
	// when the client sent none (HTTP/2's :authority stands for it)
	w := logWhere{remote: rq.r.RemoteAddr, server: rq.srv.PrimaryName(), host: rq.r.Host, hasHost: rq.r.Host != ""}
	if rq.v != nil && rq.v.RequestHead != "" {
		w.head = rq.v.RequestHead
	} else if raw := http1.RawHeader(rq.r); raw != nil { // a request refused while read (reject)
		w.head = unsafe.String(unsafe.SliceData(raw), len(raw))
	} else {
		w.head = rq.r.Method + " " + rq.r.RequestURI + " " + rq.r.Proto
	}
	if rq.r.ProtoMajor < 2 {
		hs := rq.r.Header["Host"]
		w.hasHost = len(hs) > 0
		if w.hasHost {
			w.host = hs[0]
		}
	}
	if rs := rq.r.Header["Referer"]; len(rs) > 0 {
		w.referrer, w.hasReferrer = rs[0], true
	}
	return w
}

// format gives nginx's ", client: ..., server: ..., request: "...",
// subrequest: "...", upstream: "...", host: "...", referrer: "..."" (the
// subrequest's URI while one is served, upstream only when known, host
// and referrer when sent: ngx_http_log_error_handler).
func (w logWhere) format(upstream string) string {
	client, _, err := net.SplitHostPort(w.remote)
	if err != nil || strings.HasPrefix(w.remote, "unix:") {
		client = w.remote
	}
	// the request line as received, as nginx names it
	request, _, _ := strings.Cut(w.head, "\n")
	request = strings.TrimRight(request, "\r")
	s := ", client: " + client + ", server: " + w.server + `, request: "` + request + `"`
	if w.subrequest != "" {
		s += `, subrequest: "` + w.subrequest + `"`
	}
	if upstream != "" {
		s += `, upstream: "` + upstream + `"`
	}
	if w.hasHost {
		s += `, host: "` + w.host + `"`
	}
	if w.hasReferrer {
		s += `, referrer: "` + w.referrer + `"`
	}
	return s
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
	// onHeaders' outputHeaders adds the configured headers when the
	// status is known (nil: none).
	onHeaders *request
	// wire: w writes to the connection (not a subrequest's recorder), so
	// header names take the spelling nginx sends: spell lists the names
	// add_header wrote other than net/http's canonical form.
	wire  bool
	spell []spelling
	// addedType holds the Content-Type values add_header added: a 204
	// keeps them (nginx drops only the type it set itself).
	addedType []string
	// body, when a header filter set it (charset recoding), rewrites
	// every write of the body.
	body func([]byte) []byte
	// stream sends the headers at once, so that a body without a length
	// goes out chunked (or up to the close), as nginx streams it, rather
	// than with a length net/http would compute for a short body.
	stream bool
	// holdHead keeps a stream's header in the buffer until body bytes or
	// the end follow it (SSI: nginx holds it while the first include runs,
	// so a request ended meanwhile closes without a reply).
	holdHead bool
	// discard is set by a header filter that answered itself (ngx.exit in
	// header_filter_by_lua): the response being sent is dropped.
	discard bool
	// pace, set by the limit_rate header filter, paces the body.
	pace *pacer
	// end, when a header filter set it (body_filter_by_lua), runs once
	// the handler has written the whole body.
	end func()
	// tail, set by a body filter that holds bytes back (sub_filter),
	// writes them once the body has ended, after end.
	tail func()
	// gz, set by the gzip header filter, compresses what the body
	// filters give before it is sent (gzip.go).
	gz *gzipOut
	// gunz, set by the gunzip header filter, decompresses the body
	// before the body filters see it (gunzip.go).
	gunz *gunzipper
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
		code = w.onHeaders.outputHeaders(code)
	}
	w.wrote = true
	w.status = code
	if w.discard {
		return
	}
	if code == http.StatusNoContent {
		// nginx's header filter: a 204 has no body and says nothing of one
		h := w.w.Header()
		if len(w.addedType) > 0 {
			h["Content-Type"] = w.addedType
		} else {
			h.Del("Content-Type")
		}
		h.Del("Content-Length")
		h.Del("Last-Modified")
	}
	if !w.wire {
		w.w.WriteHeader(code)
		return
	}
	// net/http writes the header map's keys as they are and copies the
	// map in WriteHeader: the keys take nginx's spelling only meanwhile,
	// so that everything after ($sent_http_*) reads the canonical ones.
	h := w.w.Header()
	renamed := respell(h, w.spell)
	w.w.WriteHeader(code)
	if renamed {
		unspell(h, w.spell)
	}
	if w.stream && !w.holdHead {
		w.Flush()
	}
}

// note tells the connection layer that the header name was just added, so
// that it goes out in that order (nginx's header list order).
func (w *respWriter) note(name string) {
	if wr := w.notes(); wr != nil {
		wr.Note(name)
	}
}

// unnote tells the connection layer that the header name left nginx's
// list (cleared, or written in the header filter's own place): set again,
// it goes last.
func (w *respWriter) unnote(name string) {
	if wr := w.notes(); wr != nil {
		wr.Unnote(name)
	}
}

// notes is the connection layer note tells (nil: none), for a caller that
// adds several headers.
func (w *respWriter) notes() http1.Wire {
	if !w.wire {
		return nil
	}
	return wireOf(w.w)
}

// Flush sends what is buffered (net/http then streams the body).
func (w *respWriter) Flush() {
	if w.gz != nil {
		w.bytes += int64(w.gz.flush())
	}
	if f, ok := w.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *respWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard {
		return len(p), nil
	}
	if w.gunz != nil {
		if out := w.gunz.write(p); len(out) > 0 {
			if _, err := w.filterWrite(out); err != nil {
				return 0, err
			}
		}
		return len(p), nil
	}
	return w.filterWrite(p)
}

// filterWrite runs the body filters over body bytes and sends the result.
func (w *respWriter) filterWrite(p []byte) (int, error) {
	if w.body != nil {
		out := w.body(p)
		n, err := w.write(out)
		w.bytes += int64(n)
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	n, err := w.write(p)
	w.bytes += int64(n)
	if w.gz != nil && err == nil {
		return len(p), nil // n counts compressed bytes
	}
	return n, err
}

// write sends body bytes the body filters gave: compressed when the gzip
// filter applies (n is then what went out of it).
func (w *respWriter) write(p []byte) (int, error) {
	if w.gz != nil {
		return w.gz.write(p)
	}
	return w.send(p)
}

// send writes to the connection, paced under limit_rate.
func (w *respWriter) send(p []byte) (int, error) {
	if w.pace != nil {
		return w.pace.write(w.w, p)
	}
	return w.w.Write(p)
}

// finish runs the log phase, unless a tunnel took the request (it runs the
// phase when it ends) or a subrequest ran it (subrequests log nothing).
func (rq *request) finish() {
	defer func() {
		if rq.served == nil {
			rq.runCleanups()
		}
	}()
	if rq.hijacked || rq.logged {
		rq.waitMirrors()
		return
	}
	rq.gunzipEnd()
	if end := rq.w.end; end != nil && !rq.closed {
		rq.w.end = nil
		end()
	}
	if tail := rq.w.tail; tail != nil && !rq.closed {
		rq.w.tail = nil
		tail()
	}
	rq.gzipEnd()
	if rq.trailers && !rq.closed {
		rq.sendTrailers()
	}
	rq.v.Completed = rq.completed()
	rq.postAction()
	if rq.endStreamBeforeMirrors() {
		return // the log phase and the cleanups run once the mirrors end
	}
	rq.waitMirrors()
	rq.logPhase(rq.w.status, rq.w.bytes)
}

// completed tells whether the request ends as nginx's finalization sets
// r->request_complete ($request_completion): answered, not closed without
// a reply (444, 408, 499), and no send to the client failed (reset, send
// timeout; on HTTP/2 the stream's context ends when it is reset).
func (rq *request) completed() bool {
	if rq.closed || rq.hijacked || rq.subrequest || rq.parent != nil {
		return false
	}
	if d, ok := rq.wire.(interface{ Discarded() bool }); ok && d.Discarded() {
		return false // refused while read, closed without a reply
	}
	if we, ok := rq.wire.(interface{ WriteErr() error }); ok {
		return we.WriteErr() == nil
	}
	if _, ok := rq.wire.(*h2Writer); ok {
		// (a backend's 101 cannot end an HTTP/2 stream: it is reset)
		return rq.r.Context().Err() == nil && (rq.w.status < 100 || rq.w.status >= 200)
	}
	return true
}

// runCleanups runs the request's cleanups, once.
func (rq *request) runCleanups() {
	for _, f := range rq.cleanups {
		f()
	}
	rq.cleanups = nil
}

var _ http.Handler = (*Server)(nil)

// setPaths updates $document_root and $request_filename for the current
// configuration and URI. They are computed when read (most requests never
// read them), with the variables then, as nginx does: a root that names a
// variable set later in the location reads its value.
func (rq *request) setPaths() {
	conf := rq.conf
	rq.v.Referers = conf.ValidReferers
	rq.v.SecureLink = conf.SecureLink
	if rq.v.UserID = conf.UserID; conf.UserID != nil && rq.v.Logf == nil {
		rq.v.Logf = rq.useridLog
	}
	rq.paths = pathsAt{rq: rq, conf: conf, uri: rq.v.URI, addURIToAlias: rq.addURIToAlias}
	rq.v.LazyPaths = &rq.paths
}

// constTemplate reports whether t (nil: none) holds no variable.
func constTemplate(t *vars.Template) bool {
	if t == nil {
		return true
	}
	_, ok := t.Const()
	return ok
}

// pathsAt is what $document_root and $request_filename are computed from:
// the configuration and URI of the request when setPaths ran.
type pathsAt struct {
	rq            *request
	conf          *nginxconf.LocConf
	uri           string
	addURIToAlias bool
}

// Paths is $document_root and $request_filename (vars.PathSource).
func (p *pathsAt) Paths() (docRoot, filename string, fixed bool) {
	rq, conf := p.rq, p.conf
	if conf.Alias != nil {
		docRoot = rq.st.cfg.FullName(conf.Alias.Eval(rq.v))
	} else {
		docRoot = rq.st.cfg.FullName(rootOf(rq, conf))
	}
	fixed = constTemplate(conf.Alias) && constTemplate(conf.Root)
	return docRoot, mapPathOf(rq, conf, p.uri, p.addURIToAlias), fixed
}

// rootOf is conf's root, "html" when none is set.
func rootOf(rq *request, conf *nginxconf.LocConf) string {
	if conf.Root != nil {
		return conf.Root.Eval(rq.v)
	}
	return "html"
}

// mapPath turns the current URI into a file-system path with root or alias.
func (rq *request) mapPath(uri string) string {
	return mapPathOf(rq, rq.conf, uri, rq.addURIToAlias)
}

// mapPathOf turns uri into a file-system path with conf's root or alias.
func mapPathOf(rq *request, conf *nginxconf.LocConf, uri string, addURIToAlias bool) string {
	if conf.Alias != nil {
		alias := conf.Alias.Eval(rq.v)
		if conf.AliasRegex {
			if addURIToAlias {
				return rq.st.cfg.FullName(alias) + uri
			}
			return rq.st.cfg.FullName(alias)
		}
		rest := strings.TrimPrefix(uri, conf.AliasPrefix)
		return rq.st.cfg.FullName(alias + rest)
	}
	return rq.st.cfg.FullName(rootOf(rq, conf)) + uri
}

// regexFailed ends the request when a regex hit the match limit while
// deciding where it goes: 500, with nginx's alert.
func (rq *request) regexFailed(re *vars.Regex, subject string) {
	rq.logf(ngxlog.Alert, `pcre2_match() failed: -47 on "%s" using "%s"`, subject, re.String())
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
