package proxy

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"ngxsockify/luahooks"
	"ngxsockify/ngxlog"
)

// maxSubrequestDepth bounds nested ngx.location.capture calls: nginx's
// NGX_HTTP_MAX_SUBREQUESTS, which each level of subrequest decrements.
const maxSubrequestDepth = 50

// capture runs the subrequests of one ngx.location.capture(_multi) through
// this server's locations, as nginx does: each starts at the server
// rewrite phase, may reach internal locations, skips the access phase,
// inherits the parent's headers, and writes no access-log line unless
// log_subrequest is on. Like lua-nginx-module it issues them all (their
// variables set, copy_all_vars copied) before any runs, then runs them
// side by side and waits for all: three subrequests that each wait 1 s
// take 1 s. As in nginx's one thread, each starts once the one before it
// waits (Lua's ngx.sleep, a cosocket, a capture; a proxy_pass exchange)
// or ends, so that what they do before their first wait comes in
// argument order (068-socket-keepalive.t TEST 40: the third of three
// queued connects is the one refused). Those that touch the parent's
// state while they run (share_all_vars, the ctx option) take turns among
// themselves.
func (rq *request) capture(ctx context.Context, srs []luahooks.Subrequest) ([]luahooks.SubResponse, error) {
	if len(srs) > 1 {
		// made now, so that the subrequests only read it
		rq.v.Get("request_id")
	}
	subs := make([]issued, len(srs))
	for i, sr := range srs {
		sub, err := rq.issue(ctx, sr)
		if err != nil {
			return nil, err
		}
		subs[i] = sub
	}
	if len(subs) == 1 {
		subs[0].run(nil, nil)
	} else {
		var wg sync.WaitGroup
		var turns sync.Mutex // for the subrequests touching the parent
		var crash any
		var crashOnce sync.Once
		// starts[i] is closed when subrequest i may start
		starts := make([]chan struct{}, len(subs)+1)
		for i := range starts {
			starts[i] = make(chan struct{})
		}
		for i := range subs {
			var once sync.Once
			next := func() { once.Do(func() { close(starts[i+1]) }) }
			subs[i].sub.onWait = next
			subs[i].sub.lua.OnWait = next
		}
		for i := 1; i < len(subs); i++ {
			wg.Go(func() {
				defer func() {
					if p := recover(); p != nil {
						crashOnce.Do(func() { crash = p })
						subs[i].sub.onWait()
					}
				}()
				<-starts[i]
				subs[i].run(&turns, subs[i].sub.onWait)
			})
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					crashOnce.Do(func() { crash = p })
					subs[0].sub.onWait()
				}
			}()
			subs[0].run(&turns, subs[0].sub.onWait)
		}()
		wg.Wait()
		if crash != nil {
			panic(crash) // on the request's goroutine, as one run in turn would
		}
	}
	out := make([]luahooks.SubResponse, len(subs))
	for i := range subs {
		out[i] = rq.captured(subs[i])
	}
	return out, nil
}

// issued is a subrequest made and not yet run.
type issued struct {
	sub    *request
	rec    *recorder
	shares bool // share_all_vars or the ctx option: it touches the parent
}

// issue makes a subrequest of ngx.location.capture(_multi), as nginx's
// ngx_http_subrequest and lua-nginx-module's adjustments of it do.
func (rq *request) issue(ctx context.Context, sr luahooks.Subrequest) (issued, error) {
	if rq.depth >= maxSubrequestDepth {
		rq.logf(ngxlog.Err, `lua subrequests cycle while processing "%s"`, sr.Path)
		return issued{}, errors.New("failed to issue subrequest: -1")
	}
	target := sr.Path
	if sr.Args != "" {
		target += "?" + sr.Args
	}
	r, err := http.NewRequestWithContext(ctx, sr.Method, target, bytes.NewReader(sr.Body))
	if err != nil {
		return issued{}, err
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
	// lua-nginx-module gives a capture variables of its own unless
	// share_all_vars keeps ngx_http_subrequest's sharing
	switch {
	case sr.ShareVars:
	case sr.CopyVars:
		sub.v.CopyValues(rq.v)
	default:
		sub.v.OwnValues()
	}
	for _, kv := range sr.Vars {
		if err := sub.v.Set(kv[0], kv[1]); err != nil {
			rq.logf(ngxlog.Err, `variable "%s" cannot be assigned a value (maybe you forgot to define it first?) `, kv[0])
			return issued{}, errors.New("failed to adjust the subrequest: -1")
		}
	}
	sub.lua = sub.newLuaRequest()
	sub.lua.MainHTTP = main
	sr.Prepare(sub.lua)
	return issued{sub: sub, rec: rec, shares: sr.ShareVars || sr.UsesParentCtx()}, nil
}

// run runs an issued subrequest to its end; turns, when it runs beside
// others, is held while it touches the parent, and ended starts the next.
func (is issued) run(turns *sync.Mutex, ended func()) {
	if turns != nil && is.shares {
		turns.Lock()
		defer turns.Unlock()
	}
	is.sub.runPhases(phaseServerRewrite)
	if end := is.sub.w.end; end != nil && !is.sub.closed {
		is.sub.w.end = nil
		end() // body_filter_by_lua's last call
	}
	is.sub.endSubrequest(is.rec)
	if ended != nil {
		ended()
	}
}

// captured is what a capture's subrequest answered, once it ran.
func (rq *request) captured(is issued) luahooks.SubResponse {
	sub, rec := is.sub, is.rec
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
	return luahooks.SubResponse{Status: status, Header: rec.header, Body: body, Truncated: sub.truncated}
}

// limitTurn takes the main request's limitMu for a subrequest's limit_req
// or limit_conn verdict, and returns its release.
func (rq *request) limitTurn() func() {
	mu := &rq.mainRequest().limitMu
	mu.Lock()
	return mu.Unlock
}

// bodySubrequest runs the subrequest whose body is part of rq's response
// (an SSI include's, an addition's): a GET without a body of uri (decoded)
// and args, its output going to w, its status, headers and length to rec
// (w itself, or one w writes through). As in nginx, where a subrequest's
// output goes down the filter chain before the postpone filter puts it in
// its place, it passes through its own location's body filters (sub_filter,
// charset, SSI: rq.filtered), and not through the not-modified and range
// filters, which leave subrequests alone (the static module sees
// rq.subrequest); a proxied one still passes the client's Range to its
// backend, as nginx copies the request's headers. The subrequest is
// returned ended (its log line written under log_subrequest).
func (rq *request) bodySubrequest(uri, args string, w http.ResponseWriter, rec *recorder) *request {
	r := rq.r.Clone(rq.r.Context())
	r.Body, r.Method, r.ContentLength = http.NoBody, http.MethodGet, 0
	sub := rq.newSubrequestTo(r, w)
	sub.filtered = true
	sub.v.URI, sub.v.URIErr, sub.v.Args = uri, nil, args
	sub.v.RespHeader = rec.header
	sub.v.ConnID = rq.conn
	sub.v.ServerName = rq.v.ServerName
	sub.runPhases(phaseServerRewrite)
	sub.gunzipEnd() // the rest of a decompressed body, before the filters' last calls
	if !sub.closed {
		if end := sub.w.end; end != nil {
			sub.w.end = nil
			end() // body_filter_by_lua's last call
		}
		if tail := sub.w.tail; tail != nil {
			sub.w.tail = nil
			tail() // the bytes its own filters held back (an included SSI page)
		}
	}
	rq.cleanups = append(rq.cleanups, sub.cleanups...)
	sub.endSubrequest(rec)
	return sub
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
	sub.gunzipEnd() // the rest of a decompressed body
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
