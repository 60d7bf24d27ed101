package proxy

import (
	"net/http"
	"ngxsockify/ngxlog"
	"strings"
	"time"
)

// phase is one of nginx's request phases (ngx_http_phases), in the order
// runPhases walks them.
type phase int

const (
	phasePostRead      phase = iota // realip with the server's settings
	phaseServerRewrite              // the server block's rewrite statements
	phaseFindConfig                 // location search (the engine's own; no handlers)
	phaseRewrite                    // the location's rewrite statements, rewrite_by_lua
	phasePostRewrite                // the engine's own: a changed URI searches again
	phasePreAccess                  // realip with the location's settings
	phaseAccess                     // fail-closed directives, allow/deny, auth_basic, access_by_lua
	phasePostAccess                 // the engine's own: satisfy any's refusal
	phasePreContent                 // try_files
	phaseContent                    // the location's content handler, else the content-phase handlers
	phaseLog                        // access log
	numPhases
)

// rc is what a phase handler returns: nginx's NGX_DECLINED, NGX_OK,
// NGX_DONE, or (access phase) the HTTP status of a refusal.
type rc int

const (
	rcDeclined rc = 0 // no opinion: the next handler runs
	rcOK       rc = 1 // the phase is over (access: granted); the next phase runs
	rcDone     rc = 2 // the request was answered or handed on: stop walking
	// values >= 300 are refusals (access phase only), combined by satisfy
)

// phaseHandler is a module's handler in one phase. In the log phase the
// result is ignored.
type phaseHandler func(rq *request) rc

// headerFilter changes the response headers just before they go out and
// returns the status to send (nginx's header filter chain).
type headerFilter func(rq *request, code int) int

// contentHandler answers the request in place of the content-phase
// handlers: nginx's clcf->handler, set by the location's content directive
// (websockify_pass, content_by_lua). Modules set it per level at load
// (confRuntime.content).
type contentHandler func(rq *request)

// module is one nginx module: what it builds when a configuration loads,
// and the handlers it puts into the phases. The modules table (modules.go
// order) is the order handlers run within a phase, header filters run, and
// location content handlers are claimed.
type module struct {
	name string
	// provision builds the module's runtime objects for st into st's
	// per-level (confs), per-server and per-chunk slices, as nginx builds
	// its module configurations at load (nil: nothing to build). It may set
	// confRuntime.content for levels whose content directive it owns, when
	// no earlier module set one.
	provision func(s *Server, st *state) error
	// register adds the module's handlers (nginx's postconfiguration); it
	// runs once, at package initialisation.
	register func(e *engine)
}

// engine holds the handlers of every phase and the header filters, as
// registered by the modules.
type engine struct {
	phases  [numPhases][]phaseHandler
	filters []headerFilter
}

// add registers h in phase p, after the handlers already there.
func (e *engine) add(p phase, h phaseHandler) {
	switch p {
	case phaseFindConfig, phasePostRewrite, phasePostAccess:
		panic("proxy: no handlers in an engine-owned phase")
	}
	e.phases[p] = append(e.phases[p], h)
}

// addHeaderFilter appends f to the header filter chain.
func (e *engine) addHeaderFilter(f headerFilter) { e.filters = append(e.filters, f) }

// handlers is the engine built from the modules table.
var handlers engine

func init() {
	for _, m := range modules {
		if m.register != nil {
			m.register(&handlers)
		}
	}
}

// provision runs every module's provision step for st, in table order.
func provision(s *Server, st *state) error {
	for _, m := range modules {
		if m.provision == nil {
			continue
		}
		if err := m.provision(s, st); err != nil {
			return err
		}
	}
	return nil
}

// runPhases walks the phases from p on, as ngx_http_core_run_phases does.
// Internal redirects and named locations call it again from the phase they
// restart at; the handler that called them then returns rcDone.
func (rq *request) runPhases(p phase) {
	for ; p < phaseLog; p++ {
		switch p {
		case phaseFindConfig:
			if !rq.findConfig() {
				return
			}
		case phasePostRewrite:
			if rq.uriChanged {
				// rewrite ... last: search the locations again
				rq.uriChanged = false
				if !rq.changeURI(`processing "%s"`, rq.v.URI) {
					return
				}
				p = phaseFindConfig - 1
			}
		case phaseAccess:
			if !rq.accessPhase() {
				return
			}
			p = phasePostAccess // the checker ran post-access too
		case phaseContent:
			rq.contentPhase()
			return
		default:
			if rq.runHandlers(p) == rcDone {
				return
			}
		}
	}
}

// runHandlers runs the handlers of p until one ends the phase (rcOK) or the
// request (rcDone).
func (rq *request) runHandlers(p phase) rc {
	for _, h := range handlers.phases[p] {
		switch r := h(rq); r {
		case rcDeclined:
		case rcOK:
			return rcOK
		default:
			return rcDone
		}
	}
	return rcDeclined
}

// accessPhase is the access phase's checker and the post-access phase. A
// subrequest skips them. Under satisfy all, every handler must let the
// request through: the first refusal answers. Under satisfy any the first
// handler that grants ends the phase; refusals are remembered (the last
// one wins, but a 401 is not replaced) and answer only when none grants. A handler that answered
// itself (rcDone: fail-closed directives, a Lua exit) ends the request in
// both modes.
func (rq *request) accessPhase() bool {
	if rq.subrequest {
		return true // nginx runs no access checks for subrequests
	}
	anyOf := rq.conf.SatisfyAny // the limit_except block's when it applies
	code := 0
	for _, h := range handlers.phases[phaseAccess] {
		switch r := h(rq); {
		case r == rcDeclined:
		case r == rcDone:
			return false
		case r == rcOK:
			if anyOf {
				return true
			}
		default:
			if !anyOf {
				rq.finalizeAccess(int(r))
				return false
			}
			if code != http.StatusUnauthorized { // a 401 stays (nginx's r->access_code)
				code = int(r)
			}
		}
	}
	if code != 0 {
		if code == http.StatusForbidden {
			rq.logf(ngxlog.Err, `access forbidden by rule`)
		}
		rq.finalizeAccess(code)
		return false
	}
	return true
}

// finalizeAccess answers the access phase's refusal; a 401 first waits
// auth_delay (nginx's ngx_http_core_auth_delay), or less if the client
// goes away.
func (rq *request) finalizeAccess(code int) {
	if d := rq.conf.AuthDelay; code == http.StatusUnauthorized && d > 0 {
		rq.logf(ngxlog.Info, "delaying unauthorized request")
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-rq.r.Context().Done():
			t.Stop()
		}
	}
	rq.finalize(code)
}

// contentPhase runs the location's content handler when a module set one
// at load, else the content-phase handlers until one answers.
func (rq *request) contentPhase() {
	if h := rq.st.confs[rq.conf.ID].content; h != nil {
		h(rq)
		return
	}
	if rq.ifProxy {
		// an earlier "if" set proxy_pass's handler, the last one has no
		// proxy_pass: nginx's upstream finds no configuration
		rq.logf(ngxlog.Alert, "no upstream configuration")
		rq.finalize(http.StatusInternalServerError)
		return
	}
	for _, h := range handlers.phases[phaseContent] {
		if h(rq) != rcDeclined {
			return
		}
	}
	rq.finalize(http.StatusNotFound)
}

// outputHeaders runs the header filter chain when the response headers go
// out, whoever writes them (our responses, the static file server). $status
// is the status being sent while the filters run; the result is the status
// to send.
func (rq *request) outputHeaders(code int) int {
	rq.v.Status = code
	if rq.staticFields {
		if _, ok := rq.w.Header()["Etag"]; ok {
			// the static handler's: an entry of nginx's list after what
			// Lua's rewrite and access set, before the filters' entries
			rq.w.note("Etag")
		}
	}
	discarded := rq.w.discard
	for _, f := range handlers.filters {
		code = f(rq, code)
		if rq.w.discard && !discarded {
			// the filter ended the response (nginx's NGX_ERROR), or
			// sent another in its place: the chain stops there
			break
		}
	}
	if rq.absLocation && !rq.subrequest {
		if loc := rq.w.Header().Get("Location"); strings.HasPrefix(loc, "/") {
			rq.w.Header().Set("Location", rq.absolute(loc))
			// nginx's header filter writes it in its own place then
			rq.w.unnote("Location")
		}
	}
	rq.v.Status = code
	rq.releaseMirrors() // the header filters read the request's values first
	return code
}

// logPhase runs the log-phase handlers once per request, with the status
// and body size sent ($status, $body_bytes_sent).
func (rq *request) logPhase(status int, bodyBytes int64) {
	rq.logged = true
	if status == 0 {
		status = rq.v.Status
	}
	rq.v.Status = status
	rq.v.BodyBytesSent = bodyBytes
	rq.v.BytesSent = rq.headSent + bodyBytes
	if rq.wire != nil && !rq.subrequest {
		rq.v.BodyBytesSent = rq.wire.BodyBytesSent()
		rq.v.BytesSent = rq.wire.BytesSent()
		rq.v.RequestLength = rq.wire.RequestLength()
	}
	if rq.conf == nil {
		return
	}
	rq.action.Store(&actionLogging) // nginx's, while ngx_http_free_request logs
	// ngx_http_free_request's debug line, before the log phase's handlers
	if el := rq.errorLog(); el != nil && !rq.subrequest && el.enabled(ngxlog.Debug) {
		el.Logf(ngxlog.Debug, rq.conn, "http close request")
	}
	for _, h := range handlers.phases[phaseLog] {
		h(rq)
	}
}
