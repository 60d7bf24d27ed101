package proxy

import (
	"net/http"

	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
)

// authRequestModule is nginx's ngx_http_auth_request_module: in the access
// phase (after allow/deny and auth_basic, as nginx orders them), a
// subrequest to the auth_request URI decides: 2xx grants, 401 refuses with
// the subrequest's WWW-Authenticate, 403 refuses, anything else is 500.
// auth_request_set evaluates its values in the subrequest and sets the
// request's variables, whatever the outcome.
var authRequestModule = module{
	name: "auth_request",
	register: func(e *engine) {
		e.add(phaseAccess, authRequest)
	},
}

func authRequest(rq *request) rc {
	uri := rq.conf.AuthRequest
	if uri == "" {
		return rcDeclined
	}
	sub, rec := rq.authSubrequest(uri)
	for _, s := range rq.conf.AuthRequestSet {
		s.Var.Set(rq.v, s.Value.Eval(sub.v))
	}
	status := rec.status
	if sub.closed {
		status = 444
	}
	if status == 0 {
		status = http.StatusOK
	}
	switch {
	case status >= 200 && status < 300:
		return rcOK
	case status == http.StatusUnauthorized:
		if v := rec.header.Values("Www-Authenticate"); len(v) > 0 {
			rq.w.Header()["Www-Authenticate"] = append([]string(nil), v...)
			rq.w.note("Www-Authenticate")
		}
		return rc(status)
	case status == http.StatusForbidden:
		return rc(status)
	}
	rq.logf(ngxlog.Err, "auth request unexpected status: %d", status)
	return rc(http.StatusInternalServerError)
}

// authSubrequest runs the auth_request subrequest to uri through this
// server's locations, as nginx's ngx_http_subrequest does for it: GET,
// the request's headers (Content-Length included: nginx keeps the
// parent's), no body, no access phase, no access-log line; the response is
// kept in memory. The URI is taken as written, as nginx's module hands it
// to ngx_http_subrequest: not decoded, and a "?" is part of the path
// (measured: auth_request /s/%41?q=1 gives $uri "/s/%41?q=1", no $args).
func (rq *request) authSubrequest(uri string) (*request, *recorder) {
	r := rq.r.Clone(rq.r.Context())
	r.Body, r.Method = http.NoBody, http.MethodGet
	sub, rec := rq.newSubrequest(r)
	sub.v.URI, sub.v.URIErr, sub.v.Args = uri, nil, ""
	sub.v.RespHeader = rec.header
	sub.v.ConnID = rq.conn
	sub.v.ServerName = rq.v.ServerName
	sub.runPhases(phaseServerRewrite)
	sub.endSubrequest(rec)
	return sub, rec
}

// newSubrequest starts a subrequest of rq for r whose response is kept in
// memory: internal, no access phase, no access-log line.
func (rq *request) newSubrequest(r *http.Request) (*request, *recorder) {
	rec := &recorder{header: http.Header{}}
	return rq.newSubrequestTo(r, rec), rec
}

// newSubrequestTo starts a subrequest of rq for r whose response goes to w.
func (rq *request) newSubrequestTo(r *http.Request, w http.ResponseWriter) *request {
	rw := &respWriter{w: w}
	sub := &request{s: rq.s, st: rq.st, w: rw, r: r, srv: rq.srv, conf: rq.srv.Conf, conn: rq.conn,
		internal: true, subrequest: true, logged: true, depth: rq.depth + 1, parent: rq}
	rw.onHeaders = sub
	sub.v = vars.NewRequest(rq.st.cfg.HTTP.Vars, r)
	// per-main-request state ($request_id, $limit_req_status ...), as
	// nginx's subrequests share their main request's variables
	sub.v.Main = rq.v.MainRequest()
	// and the values kept in them (ngx_http_subrequest's sr->variables =
	// r->variables): a `set` or a map's first value in either is the
	// other's
	sub.v.ShareValues(rq.v)
	rq.mainRequest().action.Store(nil) // ngx_http_handler runs the subrequest
	return sub
}
