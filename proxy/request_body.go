package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"

	"ngxsockify/ngxlog"
	"ngxsockify/proxy/http1"
)

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
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		// client_body_timeout: nginx ends the request with 408, no reply
		rq.logf(ngxlog.Info, "client timed out (110: Connection timed out) while reading client request body")
		return nil, http.StatusRequestTimeout
	}
	if e := (*http1.Error)(nil); errors.As(err, &e) {
		// a malformed body (an invalid chunk): nginx's error line alone
		rq.logf(ngxlog.Err, "%s", e.Msg)
		rq.bodyDiscarded = true // said once
		return nil, e.Status
	}
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
	h2 := rq.r.ProtoMajor == 2
	undeclared := h2 && rq.r.ContentLength < 0
	if undeclared {
		rq.h2Length = true
		// nginx gives an HTTP/2 body sent without content-length the
		// length read (what proxy_pass declares; $http_content_length
		// stays empty)
		rq.r.ContentLength = int64(len(b))
	}
	empty := len(b) == 0 && (undeclared || h2 && headerFirst(rq.r.Header, "Content-Length") != "")
	if rq.bodyInFile(len(b)) || empty && rq.conf.ClientBodyInFileOnly {
		// (client_body_in_file_only: an HTTP/2 body of no bytes, declared
		// or ended by an empty DATA frame, makes an empty file, as in nginx)
		rq.bodyToFile(b)
	} else {
		rq.v.RequestBody = b
	}
	return b, 0
}

// bodyInFile reports whether nginx keeps a body of n bytes in a file: under
// client_body_in_file_only; on HTTP/2 past client_body_buffer_size; else
// not when the request, body included, fit
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
	case rq.r.ProtoMajor == 2:
		// nginx's HTTP/2 body buffer is the declared length and a byte, at
		// most client_body_buffer_size: no header buffer, no quarter more
		return int64(n) > rq.conf.ClientBodyBufferSize
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
	path, err := rq.conf.ClientBodyTempPath.WriteFile(b)
	if err != nil {
		rq.logf(ngxlog.Crit, "%v", err)
		return
	}
	if !rq.conf.ClientBodyInFileOnly {
		rq.logf(ngxlog.Warn, "a client request body is buffered to a temporary file %s", path)
	}
	rq.v.RequestBodyFile = path
	if !rq.conf.ClientBodyFileKept {
		rq.cleanups = append(rq.cleanups, func() { os.Remove(path) })
	}
}
