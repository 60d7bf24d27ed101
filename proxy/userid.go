package proxy

import (
	"ngxsockify/ngxlog"
)

// useridModule is ngx_http_userid_filter_module's header filter: the main
// request's response gets the cookie $uid_set names (and userid_p3p's
// P3P header) when userid is on or v1 and the client sent no valid one.
var useridModule = module{
	name: "userid",
	register: func(e *engine) {
		e.addHeaderFilter(useridHeaders)
	},
}

func useridHeaders(rq *request, code int) int {
	if rq.v.UserID == nil || rq.v.Main != nil {
		return code
	}
	cookie, p3p := rq.v.UserIDHeaders()
	if cookie == "" {
		return code
	}
	h := rq.w.Header()
	h["Set-Cookie"] = append(h["Set-Cookie"], cookie)
	if p3p != "" {
		h["P3P"] = append(h["P3P"], p3p)
	}
	return code
}

// useridLog writes the userid module's messages to the request's error log.
func (rq *request) useridLog(notice bool, format string, args ...any) {
	level := ngxlog.Info
	if notice {
		level = ngxlog.Notice
	}
	rq.logf(level, format, args...)
}
