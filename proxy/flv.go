package proxy

import (
	"net/http"
	"strings"
	"syscall"

	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/static"
)

// flvModule is nginx's ngx_http_flv_module: the content handler of a
// location with `flv` serves a file as the static module does; with a
// start=N argument (0 < N < the file's size) it sends the FLV header and
// the file from byte N on, with that body's length and ETag. Ranges apply
// to that body. Directory URIs and paths that are not files go on to the
// content-phase handlers (index, autoindex, static), as nginx's handler
// declines them.
var flvModule = flagContent("flv", func(lc *nginxconf.LocConf) bool { return lc.Flv }, flvContent)

// flvHeader is the header nginx puts before the file's bytes from start=N:
// "FLV", version 1, audio and video, a 9-byte header, a zero tag size.
var flvHeader = []byte("FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00")

// actionSendingFlv is what nginx's flv handler leaves its log saying once
// it has the file.
var actionSendingFlv = "sending flv to client"

func flvContent(rq *request) {
	if rq.r.Method != http.MethodGet && rq.r.Method != http.MethodHead {
		rq.finalize(http.StatusMethodNotAllowed)
		return
	}
	uri := rq.v.URI
	if strings.HasSuffix(uri, "/") {
		rq.contentDeclined()
		return
	}
	if c := rq.discardBody(); c != 0 {
		rq.finalize(c)
		return
	}
	path := cutNUL(rq.mapPath(uri))
	fi, err := rq.statFile(path)
	if err != nil {
		errno := unwrapErrno(err)
		switch errno {
		case syscall.ENOENT, syscall.ENOTDIR, syscall.ENAMETOOLONG:
			rq.logNotFound(`open() "%s" failed (%v)`, path, errno)
			rq.finalize(http.StatusNotFound)
		case syscall.EACCES, syscall.EMLINK, syscall.ELOOP:
			rq.logf(ngxlog.Err, `open() "%s" failed (%v)`, path, errnoError{errno})
			rq.finalize(http.StatusForbidden)
		default:
			rq.logf(ngxlog.Crit, `open() "%s" failed (%v)`, path, errnoError{errno})
			rq.finalize(http.StatusInternalServerError)
		}
		return
	}
	if !fi.Mode().IsRegular() {
		rq.contentDeclined()
		return
	}
	start := int64(0)
	if rq.v.Args != "" {
		if v, ok := vars.Arg(rq.v.Args, "start"); ok {
			start = flvStart(v)
			if start >= fi.Size() {
				start = 0
			}
		}
	}
	rq.mainRequest().action.Store(&actionSendingFlv)
	rq.serveFileWith(path, uri, func(o *static.Options) {
		if start > 0 {
			o.Prefix, o.Offset = flvHeader, start
		}
	})
}

// flvStart reads start=N as nginx's ngx_atoof does: decimal digits only,
// at least one, no overflow; anything else is 0 (the whole file).
func flvStart(v string) int64 {
	if v == "" {
		return 0
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0
		}
		n = n*10 + d
	}
	return n
}

// contentDeclined runs the content-phase handlers after the location's
// content handler declined the request (nginx's NGX_DECLINED from
// clcf->handler).
func (rq *request) contentDeclined() {
	for _, h := range handlers.phases[phaseContent] {
		if h(rq) != rcDeclined {
			return
		}
	}
	rq.finalize(http.StatusNotFound)
}
