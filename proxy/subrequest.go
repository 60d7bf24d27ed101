package proxy

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"ngxsockify/luahooks"
	"ngxsockify/ngxlog"
)

// maxSubrequestDepth bounds nested ngx.location.capture calls: nginx's
// NGX_HTTP_MAX_SUBREQUESTS, which each level of subrequest decrements.
const maxSubrequestDepth = 50

// capture runs a subrequest for ngx.location.capture through this server's
// locations, as nginx does: it starts at the server rewrite phase, may reach
// internal locations, skips the access phase, inherits the parent's
// headers, and writes no access-log line.
func (rq *request) capture(ctx context.Context, sr luahooks.Subrequest) (luahooks.SubResponse, error) {
	if rq.depth >= maxSubrequestDepth {
		rq.logf(ngxlog.Err, `lua subrequests cycle while processing "%s"`, sr.Path)
		return luahooks.SubResponse{}, errors.New("failed to issue subrequest: -1")
	}
	target := sr.Path
	if sr.Args != "" {
		target += "?" + sr.Args
	}
	r, err := http.NewRequestWithContext(ctx, sr.Method, target, bytes.NewReader(sr.Body))
	if err != nil {
		return luahooks.SubResponse{}, err
	}
	r.RequestURI = target
	r.Host = rq.r.Host
	r.RemoteAddr = rq.r.RemoteAddr
	r.Proto, r.ProtoMajor, r.ProtoMinor = rq.r.Proto, rq.r.ProtoMajor, rq.r.ProtoMinor
	r.Header = rq.r.Header.Clone()
	if sr.Body == nil {
		r.Body, r.ContentLength = http.NoBody, 0
		r.Header.Del("Content-Length")
	} else {
		r.ContentLength = int64(len(sr.Body))
	}
	sub, rec := rq.newSubrequest(r)
	// nginx decodes a subrequest's URI but does not normalise or check it
	// (ngx_http_parse_unsafe_uri, ngx_http_subrequest: "//" and "/./"
	// stay, "*(#*" is looked up as it is), and $request_uri stays the
	// main request's (measured).
	sub.v.URI, sub.v.URIErr, sub.v.Args = percentDecode(sr.Path), nil, sr.Args
	main := rq.r
	if rq.lua != nil && rq.lua.MainHTTP != nil {
		main = rq.lua.MainHTTP
	}
	r.RequestURI = main.RequestURI
	sub.v.RespHeader = rec.header
	sub.v.ConnID = rq.conn
	sub.v.ServerName = rq.v.ServerName
	switch {
	case sr.ShareVars:
		sub.v.ShareValues(rq.v)
	case sr.CopyVars:
		sub.v.CopyValues(rq.v)
	}
	for _, kv := range sr.Vars {
		if err := sub.v.Set(kv[0], kv[1]); err != nil {
			rq.logf(ngxlog.Err, `variable "%s" cannot be assigned a value (maybe you forgot to define it first?) `, kv[0])
			return luahooks.SubResponse{}, errors.New("failed to adjust the subrequest: -1")
		}
	}
	sub.lua = sub.newLuaRequest()
	sub.lua.MainHTTP = main
	sr.Prepare(sub.lua)
	sub.runPhases(phaseServerRewrite)
	sub.endSubrequest(rec)
	rq.cleanups = append(rq.cleanups, sub.cleanups...) // released with the main request, as nginx's pool
	status := rec.status
	if sub.closed {
		status = 444
	}
	if status == 0 {
		status = http.StatusOK
	}
	if rec.header.Get("Server") == "ngxsockify" {
		// nginx writes its Server header on the wire only: a capture
		// does not see it (one set by the subrequest's Lua stays).
		rec.header.Del("Server")
	}
	body := rec.body.Bytes()
	if sub.bodyTimedOut && sub.conf.ProxyBuffering {
		// nginx's buffered proxy hands its buffers on at the end of the
		// body: a read timeout loses what they held (measured up to 40k;
		// capture_read_timeout.case).
		body = nil
	}
	if status >= 300 && bytes.Equal(body, sub.specialPage(status)) {
		// nginx hands the status to the parent before it makes the
		// special response: the capture has none of its page.
		body = nil
	}
	return luahooks.SubResponse{Status: status, Header: rec.header, Body: body, Truncated: sub.truncated}, nil
}

// recorder keeps a subrequest's response in memory.
type recorder struct {
	header  http.Header
	status  int
	body    bytes.Buffer
	discard bool  // keep no body (a mirror's)
	bytes   int64 // the body's length
}

// endSubrequest writes a subrequest's access-log line under
// log_subrequest on, as nginx's ngx_http_finalize_request does for a
// subrequest.
func (sub *request) endSubrequest(rec *recorder) {
	if sub.conf == nil || !sub.conf.LogSubrequest {
		return
	}
	status := rec.status
	if sub.closed {
		status = 444
	}
	if status == 0 {
		status = http.StatusOK
	}
	sub.logPhase(status, rec.bytes)
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.bytes += int64(len(p))
	if r.discard {
		return len(p), nil
	}
	return r.body.Write(p)
}

// percentDecode decodes %XX sequences (others are kept as they are).
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b = append(b, byte(v))
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}
