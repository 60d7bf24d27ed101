package proxy

import (
	"bytes"
	"io"
	"net/http"
	"sync"

	"ngxsockify/ngxlog"
)

// mirrorModule is nginx's ngx_http_mirror_module: in the pre-content phase
// (after try_files, as nginx orders them) a main request starts one
// background subrequest per mirror URI, with its method, arguments and
// headers; their responses are discarded. Under mirror_request_body on
// the body is read first and handed to them as well as to the request.
//
// The subrequests of one pass run one after the other on a goroutine of
// their own, while the request goes on; the request ends (its response
// flushed, its log line written, the connection's next request read) once
// they are done, as nginx keeps its main request until its background
// subrequests end. A mirror logs only under log_subrequest on.
var mirrorModule = module{
	name: "mirror",
	register: func(e *engine) {
		e.add(phasePreContent, mirror)
	},
}

func mirror(rq *request) rc {
	uris := rq.conf.Mirrors
	if rq.subrequest || len(uris) == 0 {
		return rcDeclined
	}
	var body []byte
	if rq.conf.MirrorRequestBody {
		b, code := rq.readBody()
		if code != 0 {
			rq.finalize(code)
			return rcDone
		}
		body = b
	}
	// the subrequests share the main request's per-request state as it is
	// now ($request_id made first, so that both read the same)
	rq.v.Get("request_id")
	main := *rq.v.MainRequest()
	subs := make([]*request, len(uris))
	recs := make([]*recorder, len(uris))
	for i, uri := range uris {
		r := rq.r.Clone(rq.r.Context())
		r.Body = http.NoBody
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		sub, rec := rq.newSubrequest(r)
		rec.discard = true // nginx's sr->header_only
		sub.v.URI, sub.v.URIErr, sub.v.Args = uri, nil, rq.v.Args
		sub.v.Main = &main
		sub.v.RequestBody = body
		sub.v.RespHeader = rec.header
		sub.v.ConnID = rq.conn
		sub.v.ServerName = rq.v.ServerName
		subs[i], recs[i] = sub, rec
	}
	if rq.mirrors == nil {
		rq.mirrors = new(sync.WaitGroup)
	}
	rq.mirrors.Go(func() {
		for i, sub := range subs {
			sub.runPhases(phaseServerRewrite)
			sub.endSubrequest(recs[i])
			sub.runCleanups()
		}
	})
	return rcDeclined
}

// waitMirrors waits for the request's mirror subrequests, once its
// response went out.
func (rq *request) waitMirrors() {
	if rq.mirrors == nil {
		return
	}
	if !rq.hijacked && !rq.closed {
		rq.w.Flush()
	}
	rq.mirrors.Wait()
	rq.mirrors = nil
}

// readBody reads the request body into memory once, within
// client_max_body_size, and keeps it as $request_body; later readers of
// the request's Body read it again from there. It returns the status to
// answer with when the body cannot be read (400, 413). No body is nil.
func (rq *request) readBody() ([]byte, int) {
	if rq.bodyRead {
		return rq.v.RequestBody, 0
	}
	if rq.r.Body == nil || rq.r.Body == http.NoBody {
		return nil, 0
	}
	max := rq.conf.ClientMaxBodySize
	var rd io.Reader = rq.r.Body
	if max > 0 {
		rd = io.LimitReader(rq.r.Body, max+1)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		rq.logf(ngxlog.Info, "client prematurely closed connection")
		return nil, http.StatusBadRequest
	}
	if max > 0 && int64(len(b)) > max {
		rq.logf(ngxlog.Err, "client intended to send too large chunked body: %d bytes", len(b))
		rq.w.Header().Set("Connection", "close")
		return nil, http.StatusRequestEntityTooLarge
	}
	rq.v.RequestBody = b
	rq.bodyRead = true
	rq.r.Body = io.NopCloser(bytes.NewReader(b))
	return b, 0
}
