package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"ngxsockify/luahooks"
	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/proxypass"
	"ngxsockify/proxy/upstream"
	"ngxsockify/proxy/websockify"
)

// proxyModule is proxy_pass (nginx's ngx_http_proxy_module, first cut): a
// level's content handler, relaying the request to an HTTP backend and its
// response back. Constant targets get their dialer at load (an upstream{}
// block, or the URL's address with host names resolved now); URLs with
// variables are parsed per request. One connection per request
// (Connection: close), the body read whole first (client_max_body_size),
// the response streamed back as it comes.
var proxyModule = module{
	name:      "proxy",
	provision: provisionProxy,
}

// proxyConf is a level's runtime part of the proxy module.
type proxyConf struct {
	dialer websockify.Dialer // nil: computed per request
	ssl    *proxySSL         // for https:// URLs; nil: the level has none
	fields *fieldPlan        // proxyFields' names, worked out at load
	// the pools of the level's buffers: the response head's
	// (proxy_buffer_size) and the body's (copyFromBackend)
	headBufs, bodyBufs *sync.Pool
}

func provisionProxy(_ *Server, st *state) error {
	built := map[*nginxconf.ProxyPass]websockify.Dialer{}
	st.implicit = map[string]websockify.Dialer{}
	for _, lc := range st.cfg.HTTP.Confs {
		pp := lc.ProxyPass
		if pp == nil {
			continue
		}
		rt := &st.confs[lc.ID]
		if rt.content == nil {
			rt.content = proxyContent
		}
		d, done := built[pp]
		if !done && pp.Target != nil {
			if d = st.upstreamFor(pp.Target); d == nil {
				key := implicitKey(pp.Target)
				if d = st.implicit[key]; d == nil {
					servers, err := resolveStatic(upstream.Server{Addr: pp.Target.Addr})
					if err != nil {
						return fmt.Errorf("%v in %s:%d", err, pp.File, pp.Line)
					}
					d = upstream.New(pp.Target.Host, servers)
					st.implicit[key] = d
				}
			}
			built[pp] = d
		}
		rt.proxy.dialer = d
		rt.proxy.fields = planFields(lc)
		rt.proxy.headBufs = bufferPool(lc.ProxyBufferSize)
		rt.proxy.bodyBufs = bufferPool(bodyBufferSize(lc))
		if pp.Target == nil || pp.Target.Scheme == "https" {
			ssl, err := buildProxySSL(st.cfg, lc)
			if err != nil {
				return fmt.Errorf("%v in %s:%d", err, pp.File, pp.Line)
			}
			rt.proxy.ssl = ssl
		}
	}
	return nil
}

// implicitKey names the implicit upstream of a URL: its host and port.
func implicitKey(t *nginxconf.ProxyURL) string {
	return strings.ToLower(t.Name) + ":" + t.Port
}

// upstreamFor returns the upstream{} block a URL names (nginx matches it
// only when the URL spells no port), or nil.
func (st *state) upstreamFor(t *nginxconf.ProxyURL) websockify.Dialer {
	if t.ExplicitPort {
		return nil
	}
	return st.upstreams[t.Name]
}

func proxyContent(rq *request) { rq.proxyPass(rq.conf.ProxyPass) }

// proxyHeaders are the request headers nginx's proxy module sets itself
// (ngx_http_proxy_headers); a client's header of one of these names is
// never passed. Empty values remove the header.
var proxyHeaders = [...]string{"Host", "Connection", "Content-Length", "Transfer-Encoding", "TE",
	"Keep-Alive", "Expect", "Upgrade"}

// proxyHeaderKeys are proxyHeaders' canonical keys.
var proxyHeaderKeys = func() (keys [len(proxyHeaders)]string) {
	for i, name := range proxyHeaders {
		keys[i] = http.CanonicalHeaderKey(name)
	}
	return keys
}()

// proxyPass relays the request to pp's backend.
func (rq *request) proxyPass(pp *nginxconf.ProxyPass) {
	target := pp.Target
	if target == nil {
		v := pp.URL.Eval(rq.v)
		t, err := nginxconf.ParseProxyURL(v)
		if err != nil {
			rq.logf(ngxlog.Err, "%v", err)
			rq.finalize(http.StatusInternalServerError)
			return
		}
		target = t
	}
	d := rq.st.confs[rq.conf.ID].proxy.dialer
	if d == nil {
		var code int
		if d, code = rq.proxyDialer(target); d == nil {
			rq.finalize(code)
			return
		}
	}
	rq.v.ProxyHost, rq.v.ProxyPort = target.Host, target.Port
	up := rq.newProxyUpstream()
	*up = proxyUpstream{rq: rq, scheme: schemePrefix(target.Scheme)}
	if target.Scheme == "https" {
		up.ssl = rq.st.confs[rq.conf.ID].proxy.ssl
		up.sslName = strings.Trim(target.Name, "[]")
		if n := rq.conf.ProxySSLName; n != nil {
			up.sslName = n.Eval(rq.v)
			if h, _, err := net.SplitHostPort(up.sslName); err == nil {
				up.sslName = h // nginx drops a port
			}
		}
		cert, err := up.ssl.certificate(rq.v)
		if err != nil {
			rq.logf(ngxlog.Err, "%v", err)
			rq.finalize(http.StatusInternalServerError)
			return
		}
		up.sslCert = cert
	}
	var body []byte
	if up.stream = rq.bodyStream(up); up.stream == nil {
		var code int
		if body, code = rq.proxyBody(); code != 0 {
			rq.finalize(code)
			return
		}
	}
	up.uri = rq.proxyURI(pp, target)
	hp := requestHeads.Get().(*[]byte)
	var fields [24]proxypass.Field
	head := proxypass.WriteRequest((*hp)[:0], rq.proxyMethod(), up.uri, rq.conf.ProxyHTTPVersion,
		rq.proxyFields(fields[:0], body, up.stream != nil && up.stream.chunked))
	head = append(head, body...)
	// what nginx's upstream leaves its connection's log saying when it
	// ends, whatever the outcome; an error_page's redirect clears it
	rq.mainRequest().action.Store(&actionSending)
	if rq.onWait != nil {
		rq.onWait() // a capture_multi's next subrequest starts
	}
	rq.releaseMirrors() // the request is made: nginx's posted mirrors run now
	conn, rd, res := rq.proxyExchange(d, up, head)
	if cap(head) <= maxPooledHead {
		*hp = head
		requestHeads.Put(hp)
	}
	if res == nil {
		up.releaseHead()
		return // answered
	}
	keep := false    // the connection goes back to the upstream's idle cache
	release := false // the head's buffer goes back to its pool (the body started in it)
	// one deferred call: open-coded (no defer record at run time)
	defer func() {
		if release {
			up.releaseHead()
		}
		end := monoTime()
		rq.v.UpstreamResponseTime = end.Sub(up.start)
		// the body as it came, chunk framing included (nginx's count)
		rq.v.UpstreamBytesSent, rq.v.UpstreamBytesReceived, rq.v.UpstreamResponseLength = up.sent, rd.n, rd.n-up.headLen
		switch {
		case conn == nil: // already settled
		case keep:
			up.u.PutAt(&up.tries, conn, end)
		default:
			conn.Close()
		}
	}()
	if res.HTTP09 {
		up.log(proxypass.ErrNoValidHeader, "while reading response header from upstream")
		rq.relay09(res.Rest, rd)
		return
	}
	rq.v.UpstreamHeader, rq.v.UpstreamHeaderFrom = nil, res // made when read
	if res.Status == http.StatusSwitchingProtocols && rq.r.Header.Get("Upgrade") != "" {
		conn.SetWriteDeadline(time.Time{}) // proxy_send_timeout's, from the request
		rq.proxyUpgrade(conn, res)
		conn = nil // the relay's now
		return
	}
	if xal := xAccelField(res, "X-Accel-Limit-Rate"); xal != "" && !rq.conf.ProxyIgnoreXAccelLimitRate {
		// The backend sets the rate of this response (bytes per second,
		// "off" for none), over limit_rate, through internal redirects
		// too, as nginx's r->limit_rate.
		if strings.EqualFold(xal, "off") {
			rq.v.LimitRate = "0"
		} else if n, err := strconv.ParseInt(xal, 10, 64); err == nil && n >= 0 {
			rq.v.LimitRate = strconv.FormatInt(n, 10)
		}
	}
	if xac := xAccelField(res, "X-Accel-Charset"); xac != "" && !rq.conf.ProxyIgnoreXAccelCharset {
		rq.accelCharset = xac // the charset filter's destination (nginx's override_charset)
	}
	if xar := xAccelField(res, "X-Accel-Redirect"); xar != "" && !rq.conf.ProxyIgnoreXAccelRedirect {
		conn.Close()
		h := rq.w.Header()
		for _, k := range xAccelKept {
			if v := rq.v.Upstream()[k]; len(v) > 0 && !rq.proxyHidden(k) {
				h[k] = v
			}
		}
		rq.xAccelRedirect(xar)
		return
	}
	if rq.conf.ProxyInterceptErrors && res.Status >= 300 {
		if _, ok := rq.conf.ErrorPages[res.Status]; ok {
			if res.Status == http.StatusUnauthorized { // nginx 1.22 keeps the first challenge
				if v := res.Get("Www-Authenticate"); v != "" {
					rq.w.Header().Set("Www-Authenticate", v)
					rq.w.note("Www-Authenticate")
				}
			}
			rq.finalize(res.Status)
			return
		}
	}
	rq.proxyResponseHeaders(pp, target, up, res)
	noBody := rq.r.Method == http.MethodHead || res.Status == http.StatusNoContent ||
		res.Status == http.StatusNotModified || res.Status < 200
	// the backend's X-Accel-Buffering turns buffering on or off for its
	// answer, as nginx's proxy lets it
	buffered := rq.conf.ProxyBuffering
	if res.XAccel && !rq.conf.ProxyIgnoreXAccelBuffering {
		switch v := xAccelField(res, "X-Accel-Buffering"); {
		case strings.EqualFold(v, "yes"):
			buffered = true
		case strings.EqualFold(v, "no"):
			buffered = false
		}
	}
	// without buffering, and for a body of unknown length (nginx sends it
	// chunked), the headers go at once
	rq.w.stream = !buffered || res.ContentLength < 0
	if noBody {
		// Settled before the client has the answer, which may be whole
		// with the head: its next request finds the connection cached.
		if up.reusable(res) { // what came after the head is dropped, as nginx drops it
			up.u.Put(&up.tries, conn)
		} else {
			conn.Close()
		}
		conn = nil
		up.releaseHead()
		rq.w.WriteHeader(res.Status)
		return
	}
	release = true // after the body, which starts in it
	status := res.Status
	if rq.conf.ProxyForceRanges && rq.w.body == nil {
		var answered bool
		if status, answered = rq.forceRanges(status, res.ContentLength); answered {
			return
		}
	}
	rq.w.WriteHeader(status)
	var br *bufio.Reader
	var src io.Reader
	up.body = backendBody{rest: res.Rest, rd: rd, left: res.ContentLength}
	plain := &up.body
	if res.Chunked {
		br = bufio.NewReader(io.MultiReader(bytes.NewReader(res.Rest), rd))
		src = httputil.NewChunkedReader(br)
	} else {
		src = plain // no reader of its own: a small body is in the head's buffer
	}
	// Unbuffered (server-sent events, long polls), nginx also notices a
	// client that goes away while the backend is silent.
	var gone *atomic.Pointer[error]
	stop := func() {}
	if !buffered {
		gone = new(atomic.Pointer[error])
		c := conn // not conn itself: a variable the watcher shares would live on the heap for every request
		stop = rq.watchClient(func(err error) { gone.Store(&err); c.Close() })
	}
	var store *storeFile
	if rq.conf.ProxyStore != nil && buffered { // nginx stores what its event pipe buffered
		if store = rq.startStore(status); store != nil {
			src = io.TeeReader(src, store)
		}
	}
	first := 0
	if !res.Chunked {
		first = rq.conf.ProxyBufferSize - res.HeadLen
	}
	err := rq.copyFromBackend(src, res.ContentLength, first, buffered)
	stop()
	if store != nil {
		if err == nil {
			err = store.drain(src)
		}
		store.end(err == nil, res.ContentLength, res.Get("Last-Modified"))
	}
	var cerr *error
	if gone != nil {
		cerr = gone.Load()
	}
	if cerr != nil {
		up.clientGone(*cerr, "while sending to client")
		rq.cut()
		return
	}
	if err != nil {
		rq.truncated = true // a capture's res.truncated
		rq.bodyTimedOut = errors.Is(err, os.ErrDeadlineExceeded)
		while := "while reading upstream"
		if !buffered && !rq.bodyTimedOut {
			// nginx's non-buffered relay: a close is seen after its last
			// write to the client (measured; a timeout stays "reading")
			while = "while sending to client"
		}
		up.fail(err, while)
		return
	}
	if res.Chunked {
		if !skipTrailer(br) {
			return
		}
		keep = br.Buffered() == 0 && up.reusable(res)
		return
	}
	// bytes past the length in the head's read mean the backend said
	// more than it framed: not reused (what comes later, the peek of the
	// idle cache finds)
	keep = res.ContentLength >= 0 && len(plain.rest) == 0 && up.reusable(res)
}

// backendBody reads a response body of a known length (left, or -1 to
// the end): first what came with the head, then from the backend, never
// past the length.
type backendBody struct {
	rest []byte
	rd   io.Reader
	left int64
}

func (b *backendBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	if b.left > 0 && int64(len(p)) > b.left {
		p = p[:b.left]
	}
	var n int
	var err error
	if len(b.rest) > 0 {
		n = copy(p, b.rest)
		b.rest = b.rest[n:]
	} else {
		n, err = b.rd.Read(p)
	}
	if b.left > 0 {
		b.left -= int64(n)
	}
	return n, err
}

// requestHeads holds the buffers request heads are written into; one
// that grew past maxPooledHead (a body with it) is not kept.
var requestHeads = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledHead = 16 << 10

// releaseHead gives back the buffer the response head was read into,
// once nothing refers to its Rest.
func (up *proxyUpstream) releaseHead() {
	if up.head != nil {
		up.headPool.Put(up.head)
		up.head = nil
	}
}

// skipTrailer reads the trailer lines of a chunked body up to its empty
// line; it reports whether the body ended cleanly.
func skipTrailer(br *bufio.Reader) bool {
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return false
		}
		if l == "\r\n" || l == "\n" {
			return true
		}
	}
}

// reusable reports whether the connection may serve another request once
// this response is read: the upstream keeps idle connections, and the
// backend answered in HTTP/1.1 without Connection: close (what the request
// said does not count, as in nginx).
func (up *proxyUpstream) reusable(res *proxypass.Response) bool {
	if up.u == nil || res.Proto != "HTTP/1.1" || !up.u.Keeps() {
		return false
	}
	return !res.Close
}

// xAccelField is the value of res's field name (an X-Accel-* one), ""
// if none: no look at the fields when none has such a name (most answers).
func xAccelField(res *proxypass.Response, name string) string {
	if !res.XAccel {
		return ""
	}
	return res.Get(name)
}

// asBalancerAbort returns err's balancerAbort, if it has one (nothing
// allocated for a nil err).
func asBalancerAbort(err error) *balancerAbort {
	if err == nil {
		return nil
	}
	var ab *balancerAbort
	errors.As(err, &ab)
	return ab
}

// schemePrefix is scheme + "://", without a new string for the usual ones.
func schemePrefix(scheme string) string {
	switch scheme {
	case "http":
		return "http://"
	case "https":
		return "https://"
	}
	return scheme + "://"
}

// proxyUpstream is one proxied request's exchange with its backend.
type proxyUpstream struct {
	rq          *request
	stream      *bodyStream // proxy_request_buffering off: the body, sent as it comes
	scheme, uri string      // "http://", "/x?y"
	addr        string      // the current server's: "127.0.0.1:8081"
	start       time.Time   // of the current attempt
	u           *upstream.Upstream
	tries       upstream.Tries
	rd          *deadlineReader
	ssl         *proxySSL        // https://
	sslCert     *tls.Certificate // proxy_ssl_certificate with variables: this request's
	sslName     string
	sent        int64 // bytes sent
	headLen     int64 // of the response head
	// the buffer of proxy_buffer_size the response head is read into
	head     *[]byte
	headPool *sync.Pool
	// the client's close while the head is awaited (watchHead)
	gone      atomic.Pointer[error]
	stopWatch func()
	conn      net.Conn // the current attempt's
	// in place of their own allocations: rd's and the body's reader, and
	// the response head
	rdBuf deadlineReader
	body  backendBody
	res   proxypass.Response
	own   backendConn // for a connection no upstream keeps
	ready bool        // send saw the connection readable (its first read does not wait)
	got   int         // bytes of the answer send read into head
	kept  *time.Time  // the deadline send left (backendConn.grace)
	until time.Time   // the head's deadline when send's wait ran out (its reader's until)
	// the header values passed to the client, for a head of few fields
	// (proxyResponseHeaders)
	vals [12]string
}

// newProxyUpstream returns a proxyUpstream for a proxy_pass of rq: its
// own the first time, a new one after (the first may still be in use: a
// proxy_pass reached through error_page from the first one's 502).
func (rq *request) newProxyUpstream() *proxyUpstream {
	if rq.upstreamTaken {
		return new(proxyUpstream)
	}
	rq.upstreamTaken = true
	return &rq.upstream
}

// url is the current server's URL for the error log: "http://127.0.0.1:8081".
func (up *proxyUpstream) url() string { return up.scheme + up.addr }

// watchGrace is how long the response head is awaited before the client
// is watched too: an answer within it costs no watcher (a goroutine and
// reads on the client's connection); a client that goes away meanwhile
// is noticed when it ends.
const watchGrace = time.Millisecond

// watchHead starts watching the client while the head is awaited: its
// close closes the attempt's connection (the read fails) and is kept for
// the exchange to answer 499.
func (up *proxyUpstream) watchHead() {
	conn := up.conn
	up.stopWatch = up.rq.watchClient(func(err error) { up.gone.Store(&err); conn.Close() })
}

// proxyExchange connects, sends req and reads the response head, trying
// the next server as proxy_next_upstream allows (not for a request
// already sent that is not idempotent, unless non_idempotent). It returns
// the connection, its reader and the head, or a nil head when it answered
// the request itself (502, 504).
func (rq *request) proxyExchange(d websockify.Dialer, up *proxyUpstream, req []byte) (net.Conn, *deadlineReader, *proxypass.Response) {
	u, _ := d.(*upstream.Upstream)
	up.u = u
	if u != nil {
		rq.balance(u, &up.tries)
		rq.luaBalancer(u, up)
	}
	next := rq.conf.ProxyNextUpstream
	idempotent := rq.conf.ProxyNextUpstream&nginxconf.NextNonIdempotent != 0 ||
		(rq.r.Method != http.MethodPost && rq.r.Method != http.MethodPatch && rq.r.Method != "LOCK")
	tries := &up.tries
	// the Sender looks at a connection from the idle cache itself (send)
	tries.CheckIdleLater(up.sends())
	ctx := rq.r.Context()
	if la := rq.localAddr(); la != nil {
		ctx = upstream.WithLocalAddr(ctx, la)
	}
	begin := monoTime() // proxy_next_upstream_timeout counts from here (nginx's peer.start_time)
	retake := false     // the attempt goes on with another connection to its server
	for n, first := 1, true; ; n, first = n+1, false {
		again := retake
		retake = false
		if !again {
			if up.start = begin; !first { // the first attempt starts with the exchange
				up.start = monoTime()
			}
			tries.SetClock(up.start)
		}
		var conn net.Conn
		var addr string
		var err error
		switch {
		case again:
			conn, addr, err = u.Retake(ctx, rq.conf.ProxyConnectTimeout, tries)
		case u != nil:
			conn, addr, err = u.DialNext(ctx, rq.conf.ProxyConnectTimeout, tries)
		default:
			conn, addr, err = d.Dial(ctx, rq.conf.ProxyConnectTimeout)
		}
		if ab := asBalancerAbort(err); ab != nil {
			rq.finalize(ab.status) // balancer_by_lua failed
			return nil, nil, nil
		}
		if errors.Is(err, upstream.ErrNoLiveUpstreams) {
			if u != nil {
				addr = u.Name()
			}
			rq.v.UpstreamAddr, up.addr = addr, addr
			rq.v.UpstreamStatus = http.StatusBadGateway
			code := up.log(err, "")
			rq.logNextUpstream(0x40000000) // NGX_HTTP_UPSTREAM_FT_NOLIVE
			rq.finalize(code)
			return nil, nil, nil
		}
		rq.v.UpstreamAddr, up.addr = addr, addr
		rq.v.UpstreamConnectTime, rq.v.UpstreamHeaderTime = -1, -1
		if err != nil { // (be escapes: only a failed connect pays for it)
			if be := (*upstream.BindError)(nil); errors.As(err, &be) {
				rq.logf(ngxlog.Crit, "%v while connecting to upstream", be)
				rq.finalize(http.StatusInternalServerError)
				return nil, nil, nil
			}
		}
		var rd *deadlineReader
		var res *proxypass.Response
		var cond nginxconf.NextUpstream
		var while string
		sent := false
		if err != nil {
			cond = nginxconf.NextError
			if de := (*upstream.DialError)(nil); errors.As(err, &de) && de.Timeout() {
				cond = nginxconf.NextTimeout
			}
		} else if up.ssl != nil && (u == nil || !tries.Cached()) {
			var tc net.Conn
			if tc, err = up.ssl.handshake(rq.r.Context(), conn, up.sslName, rq.conf.ProxySSLServerName,
				rq.conf.ProxyConnectTimeout, up.sslCert); err != nil {
				cond = nginxconf.NextError
				switch ve := (*errVerify)(nil); {
				case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
					cond, err, while = nginxconf.NextTimeout, os.ErrDeadlineExceeded, "while SSL handshaking to upstream"
				case !errors.As(err, &ve):
					err = fmt.Errorf("SSL_do_handshake() failed (%v) while SSL handshaking to upstream", err)
				}
			} else {
				conn = tc
			}
		}
		if err == nil {
			if testHookSend != nil {
				testHookSend(conn)
			}
			// a connection from the idle cache connects nothing: its
			// connect time is 0, as nginx's from its cached clock, and
			// send reads the clock itself (now zero); a new one's
			// connect ends now, which send's deadlines count from
			var now time.Time
			connected := up.start
			if !tries.Cached() || again {
				now = monoTime()
				connected = now
			}
			rq.v.UpstreamConnectTime = connected.Sub(up.start)
			up.conn = conn
			if up.head == nil {
				up.head, up.headPool = readBuffer(rq.st.confs[rq.conf.ID].proxy.headBufs, rq.conf.ProxyBufferSize)
			}
			out := req
			if up.stream != nil {
				out = append(req[:len(req):len(req)], up.stream.preread()...)
			}
			if err = up.send(conn, out, tries.Cached(), now); err == proxypass.ErrStale {
				conn.Close() // as nginx would have while it was idle: no log, no try
				retake = true
				n--
				continue
			}
			sent = true
			up.sent = int64(len(out))
			if err == nil && up.stream != nil {
				var code int
				if code, err = up.stream.copyTo(conn, rq.conf.ProxySendTimeout); code != 0 {
					conn.Close()
					rq.finalize(code) // the client's body failed
					return nil, nil, nil
				}
				idempotent = false // the body is gone: no other server can get it
			}
			// a write deadline set stays: nothing else is written but for
			// an upgrade (which clears it); the idle cache keeps it too,
			// and whoever writes next sets its own
			if err != nil {
				cond, while = errCondition(err), "while sending request to upstream"
			} else {
				up.rdBuf = deadlineReader{c: conn, timeout: rq.conf.ProxyReadTimeout, watch: up, ready: up.ready,
					n: int64(up.got), kept: up.kept, until: up.until}
				rd = &up.rdBuf
				up.rd = rd
				res = &up.res
				if err = proxypass.ReadResponseAfter(res, rd, *up.head, up.got); err != nil {
					res = nil
				}
				rd.watch = nil
				if up.stopWatch != nil {
					up.stopWatch()
					up.stopWatch = nil
				}
				if cerr := up.gone.Load(); cerr != nil {
					conn.Close()
					rq.v.UpstreamResponseTime = time.Since(up.start)
					up.clientGone(*cerr, "while sending request to upstream")
					rq.finalize(499)
					return nil, nil, nil
				}
				if err != nil {
					cond, while = errCondition(err), "while reading response header from upstream"
				} else {
					rq.v.UpstreamHeaderTime = time.Since(up.start)
					up.headLen = rd.n - int64(len(res.Rest))
					// nginx fills the byte counts when the exchange ends
					rq.v.UpstreamBytesSent, rq.v.UpstreamBytesReceived, rq.v.UpstreamResponseLength = 0, 0, 0
					cond = next.ForStatus(res.Status) & next
				}
			}
		}
		if res != nil {
			rq.v.UpstreamStatus = res.Status
		}
		if err == nil && cond == 0 {
			return conn, rd, res
		}
		if err != nil && cond == nginxconf.NextError && tries.Cached() && (up.stream == nil || !sent) {
			// an idle connection the backend had closed: another try,
			// not counted (nginx's tries++ for cached peers)
			conn.Close()
			tries.Stale()
			rq.logNextUpstream(uint(cond) << 1)
			n--
			continue
		}
		code := 0
		if err != nil {
			code = up.log(err, while)
		}
		retry := next&cond != 0 && (idempotent || !sent) && u != nil &&
			n < tries.Limit(u.Tries(), rq.conf.ProxyNextUpstreamTries) &&
			(rq.conf.ProxyNextUpstreamTimeout == 0 || time.Since(begin) < rq.conf.ProxyNextUpstreamTimeout)
		if err != nil || retry {
			rq.logNextUpstream(uint(cond) << 1)
		}
		if !retry && err == nil {
			return conn, rd, res // a status proxy_next_upstream names, and nothing left: passed as it is
		}
		status := code
		if res != nil {
			status = res.Status
		}
		if conn != nil {
			conn.Close()
			if u != nil && cond != nginxconf.NextHTTP403 && cond != nginxconf.NextHTTP404 {
				u.Failed(tries) // a 403 or 404 does not take the server out, as in nginx
			}
		}
		if !retry {
			rq.v.UpstreamStatus = status
			rq.finalize(code)
			return nil, nil, nil
		}
		rq.v.UpstreamTries = append(rq.v.UpstreamTries, vars.UpstreamTry{Addr: addr, Status: status,
			Connect: rq.v.UpstreamConnectTime, Header: rq.v.UpstreamHeaderTime, Response: time.Since(up.start)})
	}
}

// watchClient runs gone if the client closes its connection while the
// backend's answer is awaited (unless proxy_ignore_client_abort), until
// stop is called. Only a request whose body was read whole is watched.
func (rq *request) watchClient(gone func(err error)) (stop func()) {
	if rq.conf.ProxyIgnoreClientAbort {
		return func() {}
	}
	return rq.watchConn(gone)
}

// watchConn runs gone if the client closes its connection before stop is
// called; a subrequest's connection is its parent's, watched there.
func (rq *request) watchConn(gone func(err error)) (stop func()) {
	cw, ok := rq.w.w.(interface{ WatchClose(func(error)) func() })
	if !ok || rq.subrequest {
		return func() {}
	}
	return cw.WatchClose(gone)
}

// clientGone logs, in nginx's words, that the client went away and the
// backend connection was closed for it: while the backend's answer was
// awaited (the request then ends with 499 and nothing sent), or while an
// unbuffered body was relayed (the status sent stays). A reset adds its
// errno, as nginx's SO_ERROR.
func (up *proxyUpstream) clientGone(err error, while string) {
	rq := up.rq
	if el := rq.errorLog(); el != nil && el.enabled(ngxlog.Info) {
		if errors.Is(err, syscall.ECONNRESET) {
			while = fmt.Sprintf("(%v) %s", errnoError{syscall.ECONNRESET}, while)
		}
		el.Logf(ngxlog.Info, rq.conn, "epoll_wait() reported that client prematurely closed connection, "+
			"so upstream connection is closed too %s%s", while, rq.logWhere().format(up.url()+up.uri))
	}
}

// logNextUpstream writes the upstream module's debug line of a failed
// attempt, "http next upstream, <type>" with nginx's NGX_HTTP_UPSTREAM_FT_*
// bit in hex (our conditions are the same bits shifted by one; 40000000
// is "no live upstreams"): on every error, on a status only when another
// server is tried, as nginx's.
func (rq *request) logNextUpstream(ft uint) {
	if el := rq.errorLog(); el != nil && el.enabled(ngxlog.Debug) {
		el.Logf(ngxlog.Debug, rq.conn, "http next upstream, %x", ft)
	}
}

// errCondition is the proxy_next_upstream condition an exchange error meets.
func errCondition(err error) nginxconf.NextUpstream {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nginxconf.NextTimeout
	case errors.Is(err, proxypass.ErrTooBig), errors.Is(err, proxypass.ErrInvalidHeader),
		errors.Is(err, proxypass.ErrNoValidHeader), errors.Is(err, proxypass.ErrBadLength),
		errors.Is(err, proxypass.ErrBadChunked), errors.Is(err, proxypass.ErrDuplicateLen):
		return nginxconf.NextInvalidHeader
	}
	return nginxconf.NextError
}

// fail logs err in nginx's words with the upstream URL and, unless the
// response has started, answers 502 (504 for a timeout).
func (up *proxyUpstream) fail(err error, while string) {
	if code := up.log(err, while); !up.rq.w.wrote {
		up.rq.finalize(code)
	} else {
		up.rq.cut()
	}
}

// cut ends a response the backend cut short as nginx does: what was sent
// stays, and the connection closes without a last chunk (or anything a
// filter still holds), so that the client can tell the body is not whole.
func (rq *request) cut() {
	if hj, ok := rq.w.w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
		}
	}
	rq.w.tail = nil
}

// log logs err in nginx's words and returns the status it calls for.
func (up *proxyUpstream) log(err error, while string) int {
	rq := up.rq
	code := http.StatusBadGateway
	msg := err.Error()
	var de *upstream.DialError
	switch {
	case errors.As(err, &de):
		if de.Timeout() {
			code = http.StatusGatewayTimeout
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		code, msg = http.StatusGatewayTimeout, "upstream timed out (110: Connection timed out) "+while
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, proxypass.ErrClosed):
		msg = proxypass.ErrClosed.Error() + " " + while
	case errors.Is(err, upstream.ErrNoLiveUpstreams):
		msg = "no live upstreams while connecting to upstream"
	default:
		var ne *net.OpError
		if errors.As(err, &ne) {
			msg = fmt.Sprintf("%s() failed (%v) %s", ne.Op, errnoError{unwrapErrno(err)}, while)
		} else if while != "" {
			msg += " " + while
		}
	}
	if el := rq.errorLog(); el != nil && el.enabled(ngxlog.Err) {
		el.Logf(ngxlog.Err, rq.conn, "%s%s", msg, rq.logWhere().format(up.url()+up.uri))
	}
	return code
}

// hijackClient takes the client's connection for a raw answer; when it
// cannot, it answers 502 and returns nil.
func (rq *request) hijackClient() (net.Conn, *bufio.ReadWriter) {
	if hj, ok := rq.w.w.(http.Hijacker); ok {
		if c, brw, err := hj.Hijack(); err == nil {
			return c, brw
		}
	}
	rq.finalize(http.StatusBadGateway)
	return nil, nil
}

// relay09 sends a backend's HTTP/0.9 answer as nginx does: the bytes as
// they come, no status line nor headers, then the close.
func (rq *request) relay09(head []byte, rd io.Reader) {
	c, bw := rq.hijackClient()
	if c == nil {
		return
	}
	defer c.Close()
	rq.closed = true // no response of ours follows
	rq.v.Status = http.StatusOK
	bw.Write(head)
	n, _ := io.Copy(bw, rd)
	bw.Flush()
	rq.w.status, rq.w.bytes = http.StatusOK, int64(len(head))+n
}

// proxyDialer builds the dialer of a URL with variables: an upstream{}
// block it names, or its address (a host name through the resolver).
func (rq *request) proxyDialer(t *nginxconf.ProxyURL) (websockify.Dialer, int) {
	if d := rq.st.upstreamFor(t); d != nil {
		return d, 0
	}
	if d := rq.st.implicit[implicitKey(t)]; d != nil {
		return d, 0 // a host:port a constant proxy_pass names, as nginx finds it
	}
	srv := upstream.Server{Addr: t.Addr, Weight: upstream.DefaultWeight, MaxFails: upstream.DefaultMaxFails,
		FailTimeout: upstream.DefaultFailTimeout}
	return rq.lookupDialer(t.Addr, srv)
}

// localAddr is proxy_bind's address for this request, as nginx's
// ngx_http_upstream_set_local finds it: nil when off, when the value is
// empty, or when it is no address (an error says so).
func (rq *request) localAddr() *upstream.LocalAddr {
	b := rq.conf.ProxyBind
	switch {
	case b == nil:
		return nil
	case b.Value == nil:
		return &upstream.LocalAddr{Addr: b.Addr, Name: b.Name}
	}
	v := b.Value.Eval(rq.v)
	if v == "" {
		return nil
	}
	la := nginxconf.ParseLocalAddr(v)
	if la == nil {
		rq.logf(ngxlog.Err, `invalid local address "%s"`, v)
		return nil
	}
	return &upstream.LocalAddr{Addr: la, Name: v}
}

// proxyMethod is proxy_method, or the request's method.
func (rq *request) proxyMethod() string {
	if m := rq.conf.ProxyMethod; m != nil {
		return m.Eval(rq.v)
	}
	return rq.r.Method
}

// proxyURI is the request target sent (ngx_http_proxy_create_request):
// a URL with variables and a URI part sends that URI as it is; without a
// URI part, the request's as received unless a rewrite changed it; with
// one, it replaces the part of the URI the location's name matched
// (unless rewrite ... break changed the URI: then that URI goes alone).
func (rq *request) proxyURI(pp *nginxconf.ProxyPass, t *nginxconf.ProxyURL) string {
	if pp.URL != nil && t.HasURI {
		return t.URI
	}
	if !t.HasURI && !rq.internal && rq.r.RequestURI != "" {
		return rq.r.RequestURI
	}
	uri := rq.v.URI
	prefix := ""
	if t.HasURI && !rq.proxyWholeURI {
		prefix = t.URI
		if strings.HasPrefix(uri, pp.Location) {
			uri = uri[len(pp.Location):]
		}
	}
	out := prefix + vars.Escape(uri, uriEscaped)
	if rq.v.Args != "" {
		out += "?" + rq.v.Args
	}
	return out
}

// proxyBody reads the request body to send (within client_max_body_size),
// or evaluates proxy_set_body. It returns the status to answer with when
// the body cannot be read.
func (rq *request) proxyBody() ([]byte, int) {
	if sb := rq.conf.ProxySetBody; sb != nil {
		return []byte(sb.Eval(rq.v)), 0
	}
	b, code := rq.readBody()
	if code != 0 || b == nil {
		return nil, code
	}
	if !rq.conf.ProxyPassRequestBody {
		b = b[:0:0]
	}
	return b, 0
}

// fieldPlan is what proxyFields does at a level that does not change
// with the request: the headers nginx sets itself that proxy_set_header
// does not override, and every name the client's headers are not passed
// under (canonical).
type fieldPlan struct {
	own   []int    // indexes in proxyHeaders
	named []string // few: a list beats a map
}

// planFields works out lc's fieldPlan.
func planFields(lc *nginxconf.LocConf) *fieldPlan {
	fp := &fieldPlan{}
	for _, h := range lc.ProxySetHeaders {
		if key := http.CanonicalHeaderKey(h.Name); !slices.Contains(fp.named, key) {
			fp.named = append(fp.named, key)
		}
	}
	for i, key := range proxyHeaderKeys {
		if !slices.Contains(fp.named, key) {
			fp.own = append(fp.own, i)
			fp.named = append(fp.named, key)
		}
	}
	return fp
}

// proxyFields are the request headers sent: proxy_set_header's in order,
// then nginx's own not overridden, then the client's (unless
// proxy_pass_request_headers off) except those named by either.
// They are appended to fields.
func (rq *request) proxyFields(fields []proxypass.Field, body []byte, chunked bool) []proxypass.Field {
	plan := rq.st.confs[rq.conf.ID].proxy.fields
	if plan == nil { // a level provisionProxy did not see
		plan = planFields(rq.conf)
	}
	for _, h := range rq.conf.ProxySetHeaders {
		if v := h.Value.Eval(rq.v); v != "" {
			fields = append(fields, proxypass.Field{Name: h.Name, Value: v})
		}
	}
	for _, i := range plan.own {
		switch name := proxyHeaders[i]; name {
		case "Host":
			fields = append(fields, proxypass.Field{Name: name, Value: rq.v.ProxyHost})
		case "Connection":
			fields = append(fields, proxypass.Field{Name: name, Value: "close"})
		case "Transfer-Encoding":
			if chunked {
				fields = append(fields, proxypass.Field{Name: name, Value: "chunked"})
			}
		case "Content-Length":
			if chunked {
				break
			}
			if n := rq.proxyBodyLength(body); n >= 0 {
				fields = append(fields, proxypass.Field{Name: name, Value: strconv.FormatInt(n, 10)})
			}
		}
	}
	if !rq.conf.ProxyPassRequestHeaders {
		return fields
	}
	// nginx sends its header list: the client's lines as it received
	// them, in their order and under their names' spelling, then the
	// values Lua put at the end (set_header of a new name, a table's
	// further values), in the order set. The values are the request's
	// now: a name's first values go out at its received lines, one each,
	// as many as Lua left there (order.InPlace); values no line had (an
	// HTTP/2 request's, which has no raw head, or read some other way)
	// follow, sorted, before Lua's.
	order := rq.headerOrder()
	var sentArr [16]clientField
	sent := sentArr[:0]
	head := rq.rawHead()
	if _, rest, ok := strings.Cut(head, "\n"); ok { // after the request line
		head = rest
	} else {
		head = ""
	}
	for head != "" {
		var line string
		line, head, _ = strings.Cut(head, "\n")
		name, _, ok := strings.Cut(line, ":")
		if !ok {
			continue // the empty line that ends the head
		}
		key := canonicalKey(name)
		if slices.Contains(plan.named, key) {
			continue
		}
		var i int
		sent, i = countIndex(sent, key)
		if n := sent[i].n; n < order.InPlace(rq.r.Header, key) {
			fields = append(fields, proxypass.Field{Name: name, Value: rq.r.Header[key][n]})
			sent[i].n++
		}
	}
	var keysArr [16]string
	keys := keysArr[:0]
	for k := range rq.r.Header {
		if !slices.Contains(plan.named, k) && sentCount(sent, k) < order.InPlace(rq.r.Header, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range rq.r.Header[k][sentCount(sent, k):order.InPlace(rq.r.Header, k)] {
			fields = append(fields, proxypass.Field{Name: k, Value: v})
		}
	}
	if order != nil {
		fields = rq.appendedFields(fields, order, plan)
	}
	return fields
}

// appendedFields appends the values Lua put at the end of the header
// list (HeaderOrder.Appended), under the names as Lua wrote them.
func (rq *request) appendedFields(fields []proxypass.Field, order *luahooks.HeaderOrder, plan *fieldPlan) []proxypass.Field {
	var next []clientField // each name's values at the end so far
	for _, l := range order.Appended {
		var i int
		next, i = countIndex(next, l.Key)
		vals := rq.r.Header[l.Key]
		n := order.InPlace(rq.r.Header, l.Key) + next[i].n
		next[i].n++
		if n < len(vals) && !slices.Contains(plan.named, l.Key) {
			fields = append(fields, proxypass.Field{Name: l.Name, Value: vals[n]})
		}
	}
	return fields
}

// headerOrder is where Lua left the request's header values in nginx's
// header list (nil: as received); a subrequest without Lua of its own has
// its parent's (a mirror's: as it was when the mirror was made).
func (rq *request) headerOrder() *luahooks.HeaderOrder {
	for q := rq; q != nil; q = q.parent {
		if q.lua != nil {
			return q.lua.HeaderOrder
		}
		if q.snapped {
			return q.order
		}
	}
	return nil
}

// clientField counts the values of a client header name sent so far
// (proxyFields).
type clientField struct {
	key string
	n   int
}

// countIndex is key's index in counts, where it is added at zero when
// missing.
func countIndex(counts []clientField, key string) ([]clientField, int) {
	for i, f := range counts {
		if f.key == key {
			return counts, i
		}
	}
	return append(counts, clientField{key: key}), len(counts)
}

// sentCount is how many of key's values went out at its received lines.
func sentCount(sent []clientField, key string) int {
	for _, f := range sent {
		if f.key == key {
			return f.n
		}
	}
	return 0
}

// canonicalKey is name's key in a request's Header: name itself when it
// is spelled canonically, as clients mostly do.
func canonicalKey(name string) string {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return textproto.CanonicalMIMEHeaderKey(name)
		}
		upper = c == '-'
	}
	return name
}

// rawString is a request head's bytes as a string, without a copy: the
// head's bytes never change (http1.Head.Raw; its values are strings over
// them already).
func rawString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// headerFirst is h.Get(key) for a canonical key, without canonicalizing it
// again.
func headerFirst(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// proxyBodyLength is nginx's $proxy_internal_body_length: proxy_set_body's
// length, else the client's body length (sent even under
// proxy_pass_request_body off, as nginx does), -1 for none.
func (rq *request) proxyBodyLength(body []byte) int64 {
	switch {
	case rq.conf.ProxySetBody != nil:
		return int64(len(body))
	case len(rq.r.TransferEncoding) > 0: // chunked: the length read
		if rq.bodyRead {
			return int64(len(rq.body))
		}
		return int64(len(rq.v.RequestBody))
	case rq.r.ContentLength > 0 || rq.h2Length || headerFirst(rq.r.Header, "Content-Length") != "":
		return rq.r.ContentLength
	}
	return -1
}

// proxyResponseHeaders copies the backend's headers to the response, as
// nginx's upstream module passes them: not the hop-by-hop ones, not the
// hidden ones (Date, Server, X-Accel-*, proxy_hide_header) unless
// proxy_pass_header names them, Location rewritten by proxy_redirect.
func (rq *request) proxyResponseHeaders(pp *nginxconf.ProxyPass, t *nginxconf.ProxyURL, up *proxyUpstream, res *proxypass.Response) {
	h := rq.w.Header()
	notes := rq.w.notes()
	hasType := false
	// one array for the values (see Response.Header): up's for a few
	// (up is the request's, which requestPool takes back only once
	// nothing holds the request)
	var vals []string
	if len(res.Fields) <= len(up.vals) {
		vals = up.vals[:len(res.Fields)]
	} else {
		vals = make([]string, len(res.Fields))
	}
	for i, f := range res.Fields {
		key := f.Key()
		if proxypass.ResponseHopByHop(key) || rq.proxyHidden(key) {
			continue
		}
		v := f.Value
		listed := true // an entry of nginx's header list
		switch key {
		case "Content-Type", "Content-Length":
			// nginx's own fields, written in the header filter's places
			hasType = hasType || key == "Content-Type"
			listed = false
		case "Location", "Refresh":
			// a Location made absolute is written in the header
			// filter's place, as nginx's
			v, listed = rq.proxyRedirect(pp, t, key, v)
		case "Set-Cookie":
			v = rq.proxyCookie(v)
		}
		if old, ok := h[key]; ok {
			h[key] = append(old, v)
		} else {
			vals[i] = v
			h[key] = vals[i : i+1 : i+1]
		}
		if notes != nil && listed {
			notes.Note(key) // sent in the backend's order, as nginx's header list keeps it
		}
		if key != f.Name {
			rq.w.spell = append(rq.w.spell, spelling{f.Name, key})
		}
	}
	if !hasType {
		h["Content-Type"] = nil // no sniffing: nginx sends none
	}
	for _, key := range [...]string{"Date", "Server"} {
		if _, sent := h[key]; !sent && !rq.proxyHidden(key) {
			// proxy_pass_header and the backend sent none: nginx sends
			// none either, not its own
			h[key] = nil
		}
	}
	if res.ContentLength >= 0 {
		h["Content-Length"] = contentLength(res, vals)
	}
}

// contentLength is the Content-Length sent for res: the backend's value
// when it is written as nginx writes the number (in vals, where the
// field's value would be), else the number written anew.
func contentLength(res *proxypass.Response, vals []string) []string {
	for i, f := range res.Fields {
		if strings.EqualFold(f.Name, "Content-Length") {
			if v := f.Value; v == "0" || v[0] != '0' {
				vals[i] = v
				return vals[i : i+1 : i+1]
			}
			break
		}
	}
	return []string{strconv.FormatInt(res.ContentLength, 10)}
}

// proxyRedirect applies the proxy_redirect rules to a Location or Refresh
// value: the first rule whose redirect starts the value replaces that
// prefix. A rewritten Location starting with "/" becomes absolute (nginx
// then sets it as its own Location); one no rule matched passes as it is.
// It also reports whether the value stays an entry of nginx's header list
// (false: made absolute, nginx's header filter writes it in its place).
func (rq *request) proxyRedirect(pp *nginxconf.ProxyPass, t *nginxconf.ProxyURL, key, v string) (string, bool) {
	conf := rq.conf
	if conf.ProxyRedirectOff {
		return v, true
	}
	rules := conf.ProxyRedirects
	if rules == nil {
		rules = []nginxconf.ProxyRedirect{{Default: true}}
	}
	prefix := ""
	if key == "Refresh" {
		i := strings.Index(strings.ToLower(v), "url=")
		if i < 0 {
			return v, true
		}
		prefix, v = v[:i+4], v[i+4:]
	}
	for _, r := range rules {
		var from, to string
		if r.Default {
			if pp.URL != nil {
				continue
			}
			from, to = pp.Raw, pp.Location
			if !t.HasURI {
				from, to = pp.Raw+"/", "/"
			}
		} else if r.Regex != nil {
			caps, ok := r.Regex.Match(v)
			if !ok {
				continue
			}
			rq.v.SetCaptures(caps)
			from, to = v, r.Replacement.Eval(rq.v)
		} else {
			from, to = r.Redirect.Eval(rq.v), r.Replacement.Eval(rq.v)
		}
		if from == "" || !strings.HasPrefix(v, from) {
			continue
		}
		v = to + v[len(from):]
		if key == "Location" && strings.HasPrefix(v, "/") && conf.AbsoluteRedirect {
			return rq.absolute(v), false
		}
		return prefix + v, true
	}
	return prefix + v, true
}

// maxReadBuffer bounds what one proxied response is read into at a time,
// whatever proxy_buffers says: the memory a request holds.
const maxReadBuffer = 256 << 10

// readBuffers holds the read buffers of proxied responses, by size.
var readBuffers sync.Map // int -> *sync.Pool of *[]byte

// bufferPool is the pool of buffers of n bytes.
func bufferPool(n int) *sync.Pool {
	p, ok := readBuffers.Load(n)
	if !ok {
		p, _ = readBuffers.LoadOrStore(n, &sync.Pool{New: func() any { b := make([]byte, n); return &b }})
	}
	return p.(*sync.Pool)
}

// readBuffer returns a buffer of n bytes from pool, the pool of its size
// (nil: looked up).
func readBuffer(pool *sync.Pool, n int) (*[]byte, *sync.Pool) {
	if pool == nil {
		pool = bufferPool(n)
	}
	return pool.Get().(*[]byte), pool
}

// bodyBufferSize is the size of the buffer a response body of conf's is
// read into (copyFromBackend): proxy_buffers' worth (proxy_buffer_size
// under proxy_buffering off), within bounds.
func bodyBufferSize(conf *nginxconf.LocConf) int {
	return bodyBufferSizeFor(conf, conf.ProxyBuffering)
}

// bodyBufferSizeFor is bodyBufferSize for a response buffered or not (a
// backend's X-Accel-Buffering may change proxy_buffering's word).
func bodyBufferSizeFor(conf *nginxconf.LocConf, buffered bool) int {
	size := conf.ProxyBuffers
	if !buffered {
		size = conf.ProxyBufferSize
	}
	return min(max(size, 1024), maxReadBuffer)
}

// copyFromBackend copies the response body to the client: read into
// proxy_buffers' worth of memory (proxy_buffer_size under proxy_buffering
// off, where each read goes out at once), written before the next read,
// so a slow client holds the backend back and nothing is spooled to disk
// (nginx with proxy_max_temp_file_size 0). A body shorter than its
// Content-Length is an error.
//
// first > 0 (proxy_buffering on, a body not chunked) is what is left of
// proxy_buffer_size after the head: as nginx's event pipe, the body goes
// out a whole buffer at a time (that first one, then proxy_buffers' size
// each), and the rest at its end, or after a failed read, but not after
// a read timeout: nginx then ends the request without passing on the
// buffer it was filling (measured: 10 bytes of 100 are lost, 4029 of
// 4096 behind a 67-byte head are sent).
func (rq *request) copyFromBackend(src io.Reader, length int64, first int, buffered bool) error {
	size := bodyBufferSizeFor(rq.conf, buffered)
	if b, ok := src.(*backendBody); ok && b.left >= 0 && b.left <= int64(min(len(b.rest), size)) {
		// the whole body came with the head (a small answer): written
		// from there, as the loop below would in one go
		body := b.rest[:b.left]
		b.rest, b.left = b.rest[b.left:], 0
		if len(body) > 0 {
			if _, werr := rq.w.Write(body); werr == nil && !buffered {
				rq.w.Flush()
			}
		}
		return nil
	}
	pool := rq.st.confs[rq.conf.ID].proxy.bodyBufs
	if buffered != rq.conf.ProxyBuffering {
		pool = nil // of size's
	}
	bp, pool := readBuffer(pool, size)
	defer pool.Put(bp)
	buf := *bp
	unit := int64(rq.conf.ProxyBufferUnit)
	if first <= 0 || !buffered || unit <= 0 {
		first = 0
	}
	var n int64
	held := 0                // bytes read, not yet written (first > 0): buf[:held]
	boundary := int64(first) // where the buffer being filled ends
	for {
		m, err := src.Read(buf[held:])
		if m > 0 {
			n += int64(m)
			out := buf[:held+m]
			if first > 0 {
				for boundary <= n {
					boundary += unit
				}
				// the buffers before the one being filled are whole
				last := int64(0)
				if boundary > int64(first) {
					last = boundary - unit
				}
				whole := max(held+m-int(n-last), 0)
				if held+m == len(buf) {
					whole = len(buf) // a buffer larger than the reads': no room to hold
				}
				out, held = buf[:whole], held+m-whole
			}
			if len(out) > 0 {
				if _, werr := rq.w.Write(out); werr != nil {
					return nil // the client went away: nothing to log at error level
				}
				if !buffered {
					rq.w.Flush()
				}
			}
			if held > 0 && len(out) > 0 {
				copy(buf, buf[len(out):len(out)+held])
			}
		}
		if err != nil && held > 0 && !errors.Is(err, os.ErrDeadlineExceeded) {
			if _, werr := rq.w.Write(buf[:held]); werr != nil {
				return nil
			}
		}
		if err == io.EOF {
			if length >= 0 && n < length {
				return io.ErrUnexpectedEOF
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// send writes the request out (up.stream == nil) or its head with the
// body's first part; its deadlines count from now (zero: the clock's). A
// request that goes out whole waits for the answer's first bytes in the
// same step and reads them into up.head (proxypass.Sender.Exchange: up.got
// bytes; none when the socket was readable for an end or an error, which
// the head's first read then finds at once), as nginx's, instead of a read
// failing first. That wait is the first
// of the head's (watchGrace, then the client is watched too: the reader
// goes on with the rest of proxy_read_timeout); a proxy_read_timeout
// within watchGrace is the reader's alone.
//
// A connection from the idle cache (cached) is looked at there too, after
// the poller forgot the socket's readiness: proxypass.ErrStale, nothing
// sent, when the backend closed it meanwhile. (The pool's own look, before
// that, would let a close landing in between go unnoticed: the wait would
// miss it.)
func (up *proxyUpstream) send(conn net.Conn, out []byte, cached bool, now time.Time) error {
	if now.IsZero() {
		// the Sender's deadline must lie ahead when it starts: its step
		// (the idle connection's look) runs only then
		now = monoTime()
	}
	var n int
	up.ready, up.got, up.kept, up.until = false, 0, nil, time.Time{}
	if up.sends() {
		bc := up.connFor()
		up.kept = &bc.grace // the reader's deadlines replace it
		if bc.renewGrace(now, up.rq.conf.ProxyReadTimeout) {
			conn.SetReadDeadline(bc.grace)
		}
		var err error
		// limit_conn: a client gone meanwhile is noticed within the grace
		up.rq.connHold.watchSoon(true)
		n, up.got, err = bc.sender.Exchange(conn, out, *up.head, cached)
		if n == len(out) && errors.Is(err, os.ErrDeadlineExceeded) {
			up.watchHead()
		}
		up.rq.connHold.watchSoon(false)
		if err == proxypass.ErrStale {
			return err
		}
		if n == len(out) {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// proxy_read_timeout counts from the send
				up.until = now.Add(up.rq.conf.ProxyReadTimeout)
			} else {
				up.ready = err == nil && up.got == 0
			}
			return nil // the reads that follow report a failure
		}
	}
	if bc := up.knownConn(); bc != nil {
		bc.grace = time.Time{} // the reads set deadlines of their own (so did the idle cache's look)
	}
	// proxy_send_timeout: for an ordinary write only (the Sender's does not wait)
	conn.SetWriteDeadline(now.Add(up.rq.conf.ProxySendTimeout))
	_, err := conn.Write(out[n:])
	return err
}

// sends reports whether send goes through the Sender: a request sent
// whole, to a plain socket, with a proxy_read_timeout past watchGrace.
func (up *proxyUpstream) sends() bool {
	return up.stream == nil && up.ssl == nil && up.rq.conf.ProxyReadTimeout > watchGrace
}

// testHookSend, when set by a test, runs before each request is sent.
var testHookSend func(conn net.Conn)

// backendConn is what a backend connection keeps between its exchanges,
// in the upstream's idle cache with it (Tries.ConnData): made once per
// connection, not per request.
type backendConn struct {
	sender proxypass.Sender
	// grace is the read deadline send set for the wait for the head
	// (graceKept times watchGrace ahead), while nothing set another since
	// (zero: not known). An exchange that starts while it is still
	// watchGrace ahead keeps it and sets no timer of its own (about 900
	// instructions, and a timer that fires later); the client is then
	// watched after 1 to 4 ms of waiting for the head. (Under wrk, where
	// a backend queueing 50 requests answers in ~2 ms, about half the
	// exchanges kept it with 4, a fifth with 2.)
	grace time.Time
}

// graceKept is how many times watchGrace ahead send sets the head wait's
// deadline; while it is still watchGrace ahead, later exchanges keep it.
const graceKept = 4

// renewGrace reports whether the head wait that starts at now needs a
// read deadline of its own (then bc.grace is it): the kept one is less
// than watchGrace ahead, past limit (proxy_read_timeout), or not known.
func (bc *backendConn) renewGrace(now time.Time, limit time.Duration) bool {
	if ahead := bc.grace.Sub(now); ahead >= watchGrace && ahead <= limit {
		return false
	}
	bc.grace = now.Add(min(graceKept*watchGrace, limit))
	return true
}

// connFor returns the backendConn of the attempt's connection: the one
// kept with it in the upstream's idle cache, else the request's own.
func (up *proxyUpstream) connFor() *backendConn {
	if up.u == nil {
		return &up.own
	}
	bc := up.knownConn()
	if bc == nil {
		bc = new(backendConn)
		up.tries.SetConnData(bc)
	}
	return bc
}

// knownConn is connFor, nil for a pooled connection that has none yet.
func (up *proxyUpstream) knownConn() *backendConn {
	if up.u == nil {
		return &up.own
	}
	bc, _ := up.tries.ConnData().(*backendConn)
	return bc
}

// deadlineReader reads from a connection with proxy_read_timeout between
// two reads, as nginx's timer on the upstream's read event.
type deadlineReader struct {
	c       net.Conn
	timeout time.Duration
	n       int64 // bytes read ($upstream_bytes_received)
	// while the head is awaited: a read waiting past watchGrace starts
	// watching the client
	watch *proxyUpstream
	// the connection is readable (the Sender waited): the first read
	// finds its bytes (or its end) at once and sets no deadline of its own
	ready bool
	// kept: the deadline send leaves for the next exchange, which a
	// deadline set here replaces (nil: none)
	kept *time.Time
	// until: the first read's deadline, where send's wait for the head
	// ran out (proxy_read_timeout from the send); zero: none
	until time.Time
}

// setDeadline sets the connection's read deadline d from now (until, the
// first time, if set).
func (r *deadlineReader) setDeadline(d time.Duration) {
	if r.kept != nil {
		*r.kept = time.Time{}
	}
	t := r.until
	if t.IsZero() {
		t = monoTime().Add(d)
	}
	r.until = time.Time{}
	r.c.SetReadDeadline(t)
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	if r.ready {
		r.ready = false
		n, err := r.c.Read(p)
		if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			r.n += int64(n)
			return n, err
		}
		// the Sender's deadline (watchGrace) passed before this read
		// began: as any other
	}
	timeout := r.timeout
	if up := r.watch; up != nil && up.stopWatch == nil && timeout > watchGrace {
		r.setDeadline(watchGrace)
		n, err := r.c.Read(p)
		if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			r.n += int64(n)
			return n, err
		}
		up.watchHead()
		timeout -= watchGrace
	}
	r.setDeadline(timeout)
	n, err := r.c.Read(p)
	r.n += int64(n)
	return n, err
}

// xAccelKept are the backend headers an X-Accel-Redirect response keeps
// for the response of its target (nginx's "redirect" upstream headers).
var xAccelKept = [...]string{"Content-Type", "Set-Cookie", "Content-Disposition", "Cache-Control", "Expires",
	"Accept-Ranges"}

// xAccelRedirect follows a backend's X-Accel-Redirect as nginx does: a
// named location, or an internal redirect to the URI (its own arguments or
// none) with GET unless the request is a HEAD. The backend's response is
// dropped.
func (rq *request) xAccelRedirect(uri string) {
	if strings.HasPrefix(uri, "@") {
		rq.runNamed(uri)
		return
	}
	path, args, _ := strings.Cut(uri, "?")
	path = percentDecode(path)
	if unsafeURI(path) {
		rq.logf(ngxlog.Err, `unsafe URI "%s" was detected`, path)
		rq.finalize(http.StatusNotFound)
		return
	}
	if rq.r.Method != http.MethodHead {
		rq.r.Method = http.MethodGet
	}
	rq.v.Args = args
	rq.internalRedirect(path)
}

// unsafeURI is nginx's ngx_http_parse_unsafe_uri test for paths: a ".."
// segment.
func unsafeURI(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return true
		}
	}
	return false
}

// bodyStream is a request body sent to the backend as it arrives
// (proxy_request_buffering off): as it is with a length, re-chunked when
// the client sent it chunked (proxy_http_version 1.1; nginx buffers a
// chunked body for 1.0). The first client_body_buffer_size bytes are kept
// for $request_body.
type bodyStream struct {
	rq      *request
	up      *proxyUpstream
	chunked bool
	// pre is what the connection already held of the body when the
	// request went out: sent with the request head, as nginx sends its
	// preread buffer (again to another server on a retry).
	pre     []byte
	preRead bool
}

// bufferedReader is a request body that can give what the connection
// already holds without waiting (http1's).
type bufferedReader interface{ ReadBuffered([]byte) (int, error) }

// preread returns the body bytes already received, framed as they go out
// after the request head (one chunk when chunked).
func (b *bodyStream) preread() []byte {
	if !b.preRead {
		b.preRead = true
		if br, ok := b.rq.r.Body.(bufferedReader); ok {
			buf := make([]byte, 16<<10)
			n, _ := br.ReadBuffered(buf)
			b.pre = buf[:n]
		}
	}
	return b.frame(b.pre)
}

// frame is p as it goes to the backend: re-chunked when chunked.
func (b *bodyStream) frame(p []byte) []byte {
	if !b.chunked || len(p) == 0 {
		return p
	}
	return append(append([]byte(strconv.FormatInt(int64(len(p)), 16)+"\r\n"), p...), "\r\n"...)
}

// bodyStream returns the request's body stream, or nil when the body is
// read whole first.
func (rq *request) bodyStream(up *proxyUpstream) *bodyStream {
	conf := rq.conf
	if conf.ProxyRequestBuffering || conf.ProxySetBody != nil || !conf.ProxyPassRequestBody ||
		rq.r.Body == nil || rq.r.Body == http.NoBody {
		return nil
	}
	chunked := rq.r.ContentLength < 0 || len(rq.r.TransferEncoding) > 0
	if chunked && conf.ProxyHTTPVersion != "1.1" {
		return nil
	}
	b := &bodyStream{rq: rq, up: up, chunked: chunked}
	if br, ok := rq.r.Body.(bufferedReader); ok && chunked {
		// nginx reads what has come of the body before it makes the
		// request: a whole chunked body (within client_body_buffer_size)
		// then goes with a Content-Length, read as with buffering
		buf := make([]byte, 16<<10)
		n, err := br.ReadBuffered(buf)
		if err == io.EOF && int64(n) <= conf.ClientBodyBufferSize {
			rq.r.Body = io.NopCloser(bytes.NewReader(buf[:n]))
			return nil
		}
		if err != nil && err != io.EOF {
			// a body already bad: refused (readBody) before a backend
			// is contacted, as nginx does
			return nil
		}
		b.pre, b.preRead = buf[:n], true
	}
	return b
}

// copyTo sends the body to the backend. It returns the status to answer
// with when the client's side failed (400, or 413 past
// client_max_body_size), else the backend's write error.
func (b *bodyStream) copyTo(conn net.Conn, timeout time.Duration) (int, error) {
	rq := b.rq
	buf := make([]byte, 16<<10)
	keep := rq.conf.ClientBodyBufferSize
	max := rq.conf.ClientMaxBodySize
	n := int64(len(b.pre)) // sent with the head
	var kept []byte
	if n <= keep {
		kept = append(kept, b.pre...)
	}
	if max > 0 && n > max {
		rq.logf(ngxlog.Err, "client intended to send too large chunked body: %d bytes", n)
		return http.StatusRequestEntityTooLarge, nil
	}
	more, _ := rq.r.Body.(bufferedReader)
	terminated := false
	for {
		m, rerr := rq.r.Body.Read(buf)
		if m > 0 && rerr == nil && more != nil {
			// what the same read from the client brought goes on as
			// one piece (one chunk), as nginx sends its buffer
			k, err := more.ReadBuffered(buf[m:])
			m, rerr = m+k, err
		}
		if m > 0 {
			n += int64(m)
			if max > 0 && n > max {
				rq.logf(ngxlog.Err, "client intended to send too large chunked body: %d bytes", n)
				return http.StatusRequestEntityTooLarge, nil
			}
			if int64(len(kept)+m) <= keep {
				kept = append(kept, buf[:m]...)
			}
			out := b.frame(buf[:m])
			if rerr == io.EOF && b.chunked {
				// the last chunk came in the same read: it goes in the
				// same write, as nginx sends its buffer
				out = append(out, "0\r\n\r\n"...)
				terminated = true
			}
			conn.SetWriteDeadline(time.Now().Add(timeout))
			w, err := conn.Write(out)
			b.up.sent += int64(w)
			if err != nil {
				return 0, err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			rq.logf(ngxlog.Info, "client prematurely closed connection while sending request to upstream")
			return http.StatusBadRequest, nil
		}
	}
	if int64(len(kept)) == n {
		rq.v.RequestBody = kept
	}
	if b.chunked && !terminated {
		conn.SetWriteDeadline(time.Now().Add(timeout))
		if _, err := conn.Write([]byte("0\r\n\r\n")); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// proxyCookie rewrites the Domain and Path attributes of a Set-Cookie
// value as proxy_cookie_domain and proxy_cookie_path say (the first rule
// that matches each).
func (rq *request) proxyCookie(v string) string {
	conf := rq.conf
	if len(conf.ProxyCookieDomains) == 0 && len(conf.ProxyCookiePaths) == 0 && len(conf.ProxyCookieFlags) == 0 {
		return v
	}
	// when it changes something, nginx writes the cookie anew: attributes
	// trimmed, joined with "; "
	parts := strings.Split(v, ";")
	flags := rq.cookieFlags(strings.TrimSpace(strings.SplitN(parts[0], "=", 2)[0]))
	changed := flags != nil
	out := append(make([]string, 0, len(parts)+3), parts[0])
	for _, attr := range parts[1:] {
		attr = strings.TrimSpace(attr)
		if attr == "" {
			continue
		}
		name, val, _ := strings.Cut(attr, "=")
		lname := strings.ToLower(strings.TrimSpace(name))
		if _, ok := flags[lname]; ok {
			continue // set again below, or removed
		}
		switch lname {
		case "domain":
			if nv, ok := rq.rewriteCookieDomain(strings.TrimSpace(val)); ok {
				attr, changed = name+"="+nv, true
			}
		case "path":
			if nv, ok := rq.rewriteCookiePath(strings.TrimSpace(val)); ok {
				attr, changed = name+"="+nv, true
			}
		}
		out = append(out, attr)
	}
	if !changed {
		return v
	}
	for _, f := range [...]string{"secure", "httponly", "samesite"} {
		if set := flags[f]; set != "" {
			out = append(out, set)
		}
	}
	return strings.Join(out, "; ")
}

// cookieFlags applies the first proxy_cookie_flags rule naming the
// cookie: for each flag it mentions, the attribute to write ("" removes
// it). Nil: no rule.
func (rq *request) cookieFlags(cookie string) map[string]string {
	for _, r := range rq.conf.ProxyCookieFlags {
		if r.Regex != nil {
			if !r.Regex.MatchString(cookie) {
				continue
			}
		} else if !strings.EqualFold(r.Name.Eval(rq.v), cookie) {
			continue
		}
		flags := map[string]string{}
		for _, t := range r.Flags {
			switch f := strings.ToLower(t.Eval(rq.v)); f {
			case "secure":
				flags["secure"] = "Secure"
			case "httponly":
				flags["httponly"] = "HttpOnly"
			case "samesite=strict", "samesite=lax", "samesite=none":
				flags["samesite"] = "SameSite=" + strings.ToUpper(f[9:10]) + f[10:]
			case "nosecure", "nohttponly", "nosamesite":
				flags[f[2:]] = ""
			}
		}
		return flags
	}
	return nil
}

// rewriteCookieDomain: the domain's leading dot stays, the replacement's
// is dropped; a plain rule matches the whole domain, case aside.
func (rq *request) rewriteCookieDomain(v string) (string, bool) {
	dot := ""
	if strings.HasPrefix(v, ".") {
		dot, v = ".", v[1:]
	}
	for _, r := range rq.conf.ProxyCookieDomains {
		if !rq.cookieRuleMatches(r, v, func(from string) bool { return strings.EqualFold(strings.TrimPrefix(from, "."), v) }) {
			continue
		}
		return dot + strings.TrimPrefix(r.To.Eval(rq.v), "."), true
	}
	return "", false
}

// rewriteCookiePath: a plain rule replaces the prefix it matches, a
// regex the whole path.
func (rq *request) rewriteCookiePath(v string) (string, bool) {
	for _, r := range rq.conf.ProxyCookiePaths {
		var from string
		if !rq.cookieRuleMatches(r, v, func(f string) bool { from = f; return strings.HasPrefix(v, f) }) {
			continue
		}
		if r.Regex != nil {
			return r.To.Eval(rq.v), true
		}
		return r.To.Eval(rq.v) + v[len(from):], true
	}
	return "", false
}

// cookieRuleMatches tests v against r: its regex (captures set for the
// replacement), else match with the rule's evaluated From.
func (rq *request) cookieRuleMatches(r nginxconf.CookieRule, v string, match func(from string) bool) bool {
	if r.Regex != nil {
		caps, ok := r.Regex.Match(v)
		if ok {
			rq.v.SetCaptures(caps)
		}
		return ok
	}
	return match(r.From.Eval(rq.v))
}

// clockBase is monoTime's origin.
var clockBase = time.Now()

// monoTime is time.Now from the monotonic clock alone: one clock read
// where time.Now makes two (the wall clock too), about 50 ns less on a VM.
// For the times of an exchange, which are only subtracted from each other
// and made deadlines (both go by the monotonic reading).
func monoTime() time.Time { return clockBase.Add(time.Since(clockBase)) }
