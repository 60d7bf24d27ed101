package proxy

import (
	"net/http"

	"ngxsockify/nginxconf"
	"ngxsockify/proxy/static"
)

// emptyGifModule is nginx's ngx_http_empty_gif_module: its content
// handler answers GET and HEAD with a 1x1 transparent GIF dated
// Mon, 28 Sep 1970 06:00:00 GMT (405 for other methods), through the
// not-modified filter.
var emptyGifModule = flagContent("empty_gif", func(lc *nginxconf.LocConf) bool { return lc.EmptyGif }, emptyGifContent)

// emptyGif is nginx's ngx_empty_gif: a GIF89a with one transparent pixel.
var emptyGif = []byte("GIF89a\x01\x00\x01\x00\x80\x01\x00\x00\x00\x00\xff\xff\xff" +
	"\x21\xf9\x04\x01\x00\x00\x01\x00\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x4c\x01\x00\x3b")

// emptyGifTime is the GIF's Last-Modified (23349600).
const emptyGifTime = 23349600

func emptyGifContent(rq *request) {
	if rq.r.Method != http.MethodGet && rq.r.Method != http.MethodHead {
		rq.finalize(http.StatusMethodNotAllowed)
		return
	}
	switch code := static.Preconditions(rq.r, emptyGifTime, "", rq.conf.IfModifiedSince); code {
	case http.StatusNotModified:
		if c := rq.discardBody(); c != 0 {
			rq.finalize(c)
			return
		}
		rq.w.Header().Set("Last-Modified", "Mon, 28 Sep 1970 06:00:00 GMT")
		rq.writeHeader(code)
		return
	case http.StatusPreconditionFailed:
		rq.finalize(code)
		return
	}
	rq.w.Header().Set("Last-Modified", "Mon, 28 Sep 1970 06:00:00 GMT")
	rq.send(http.StatusOK, "image/gif", emptyGif)
}
