package proxy

import "net/http"

// postAction runs post_action once the response went out, as nginx's
// ngx_http_post_action: the request goes on to the post_action URI (an
// internal redirect, without the arguments) or named location, its method
// and headers as they are, and whatever it answers is dropped: no header filter runs, nothing
// reaches the client. The access-log line then has the post action's
// $status and $uri (the response's byte counts stay). A post action's
// location that has a post_action itself runs it again, until nginx's
// limit of internal redirects ends the request with 500.
func (rq *request) postAction() {
	for {
		pa := rq.conf.PostAction
		if pa == "" || rq.closed || rq.hijacked || rq.postActed && !rq.uriChangesLeft() {
			return
		}
		if !rq.postActed {
			rq.postActed = true
			bytes := rq.w.bytes
			*rq.w = respWriter{w: &recorder{header: http.Header{}, discard: true}, bytes: bytes}
			rq.trailers = false
		}
		rq.w.wrote, rq.w.override = false, 0
		if pa[0] == '/' {
			// nginx redirects with no arguments: they go, and a "?"
			// stays in the URI
			rq.v.Args = ""
			rq.redirectTo(pa, pa)
		} else {
			rq.runNamed(pa)
		}
	}
}
