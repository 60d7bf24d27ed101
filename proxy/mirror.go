package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
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
	rq.v.ReadUserID()
	main := *rq.v.MainRequest()
	subs := make([]*request, len(uris))
	recs := make([]*recorder, len(uris))
	ctx := rq.r.Context()
	if _, ok := rq.wire.(*h2Writer); ok {
		// an HTTP/2 stream's context ends with its handler, which returns
		// before the mirrors end (endStreamBeforeMirrors)
		ctx = context.WithoutCancel(ctx)
	}
	for i, uri := range uris {
		r := rq.r.Clone(ctx)
		r.Body = http.NoBody
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		sub, rec := rq.newSubrequest(r)
		rec.discard = true // nginx's sr->header_only
		sub.v.URI, sub.v.URIErr, sub.v.Args = uri, nil, rq.v.Args
		sub.order, sub.snapped = rq.headerOrder().Clone(), true
		sub.v.Main = &main
		// nginx's mirror shares the request's variables too: a `set` in
		// either, a map's kept value, is the other's (under a lock: these
		// run beside it)
		sub.v.ShareValuesSync(rq.v)
		if body != nil {
			sub.v.RequestBody, sub.v.RequestBodyFile = rq.v.RequestBody, rq.v.RequestBodyFile
		}
		sub.v.RespHeader = rec.header
		sub.v.ConnID = rq.conn
		sub.v.ServerName = rq.v.ServerName
		subs[i], recs[i] = sub, rec
	}
	if rq.mirrors == nil {
		rq.mirrors = new(sync.WaitGroup)
	}
	rq.releaseMirrors() // an earlier pass's (an internal redirect's location has mirrors too)
	gate := make(chan struct{})
	rq.mirrorGate = gate
	rq.mirrors.Go(func() {
		<-gate
		for i, sub := range subs {
			sub.runPhases(phaseServerRewrite)
			sub.endSubrequest(recs[i])
			sub.runCleanups()
		}
	})
	return rcDeclined
}

// releaseMirrors lets the mirror subrequests the request started go on.
// nginx posts a mirror: it runs once the request's content handler
// returns to the event loop, after a proxy_pass made its request to the
// backend (so that its headers have the request's values, before a `set`
// of the mirror's location changes them) or a response handler sent the
// header. The mirrors here wait for the same point: the proxied request
// made (proxyPass), the response's header (outputHeaders), or the
// request's end.
func (rq *request) releaseMirrors() {
	if rq.mirrorGate != nil {
		close(rq.mirrorGate)
		rq.mirrorGate = nil
	}
}

// waitMirrors waits for the request's mirror subrequests, once its
// response went out: to the last chunk of a chunked body, which nginx
// sends when the request's output ends, before its subrequests end.
func (rq *request) waitMirrors() {
	if rq.mirrors == nil {
		return
	}
	rq.releaseMirrors()
	if !rq.hijacked && !rq.closed {
		rq.w.Flush()
		if f, ok := rq.wire.(interface{ Finish() }); ok {
			f.Finish()
		}
	}
	rq.mirrors.Wait()
	rq.mirrors = nil
}

// endStreamBeforeMirrors ends an HTTP/2 request with mirrors under way as
// nginx does: the stream ends (END_STREAM) with the response's output, and
// the request lives on until its mirrors end, when its access-log line is
// written. x/net/http2 ends a stream only when its handler returns, so the
// handler returns now and the rest of the request's end (log phase,
// cleanups) runs once the mirrors are done and serve has returned. It
// reports whether it took the request's end over.
func (rq *request) endStreamBeforeMirrors() bool {
	if rq.mirrors == nil || rq.hijacked || rq.closed {
		return false
	}
	if _, ok := rq.wire.(*h2Writer); !ok {
		return false
	}
	rq.releaseMirrors()
	rq.w.Flush()
	// x/net/http2's writer is the stream's no more once the handler
	// returned: what reads the response's headers now reads the map alone
	rq.w.w = &recorder{header: rq.v.RespHeader, discard: true}
	rq.served = make(chan struct{})
	mirrors, served := rq.mirrors, rq.served
	go func() {
		mirrors.Wait()
		<-served
		rq.mirrors = nil
		rq.logPhase(rq.w.status, rq.w.bytes)
		rq.runCleanups()
	}()
	return true
}
