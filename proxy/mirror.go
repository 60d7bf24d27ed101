package proxy

import (
	"bytes"
	"io"
	"net/http"
	"os"
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
// response went out: to the last chunk of a chunked body, which nginx
// sends when the request's output ends, before its subrequests end.
func (rq *request) waitMirrors() {
	if rq.mirrors == nil {
		return
	}
	if !rq.hijacked && !rq.closed {
		rq.w.Flush()
		if f, ok := rq.wire.(interface{ Finish() }); ok {
			f.Finish()
		}
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
		return rq.body, 0
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
	rq.bodyRead, rq.body = true, b
	rq.r.Body = io.NopCloser(bytes.NewReader(b))
	if rq.bodyInFile(len(b)) {
		rq.bodyToFile(b)
	} else {
		rq.v.RequestBody = b
	}
	return b, 0
}

// bodyInFile reports whether nginx keeps a body of n bytes in a file: under
// client_body_in_file_only; else not when the request, body included, fit
// the header buffer (nginx reads the body there), and otherwise past its
// buffer: client_body_buffer_size, a quarter more for a body of declared
// length (nginx sizes that buffer up to the body; luahooks' rule for
// ngx.req.get_body_file).
func (rq *request) bodyInFile(n int) bool {
	switch {
	case n == 0:
		return false
	case rq.conf.ClientBodyInFileOnly:
		return true
	case rq.wire != nil && rq.wire.RequestLength() <= int64(rq.conf.ClientHeaderBufferSize):
		return false
	}
	buf := rq.conf.ClientBodyBufferSize
	if rq.r.ContentLength >= 0 && len(rq.r.TransferEncoding) == 0 {
		buf += buf >> 2
	}
	return int64(n) > buf
}

// bodyToFile writes a body that does not fit client_body_buffer_size (or
// any, under client_body_in_file_only) to a file in client_body_temp_path,
// as nginx does: it is $request_body_file then, and $request_body is not
// found. The file is removed when the request ends, unless
// client_body_in_file_only on keeps it.
func (rq *request) bodyToFile(b []byte) {
	f, err := rq.conf.ClientBodyTempPath.Create()
	if err == nil {
		_, err = f.Write(b)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		rq.logf(ngxlog.Crit, "%v", err)
		if f != nil {
			os.Remove(f.Name())
		}
		return
	}
	path := f.Name()
	if !rq.conf.ClientBodyInFileOnly {
		rq.logf(ngxlog.Warn, "a client request body is buffered to a temporary file %s", path)
	}
	rq.v.RequestBodyFile = path
	if !rq.conf.ClientBodyFileKept {
		rq.cleanups = append(rq.cleanups, func() { os.Remove(path) })
	}
}
