package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/http1"
)

// HTTP/2 (nginx's ngx_http_v2_module) on the addresses whose listen says
// `http2` (or whose server says `http2 on;`): under TLS, ALPN offers "h2"
// before "http/1.1" and a client that picks http/1.1 (every WebSocket
// client) gets the HTTP/1.x path; on a plain port, a client that opens with
// the HTTP/2 preface (prior knowledge) gets HTTP/2 and any other the
// HTTP/1.x path. golang.org/x/net/http2 speaks the protocol; each stream
// reaches ServeHTTP as an HTTP/1.1 request does, with Proto "HTTP/2.0" and
// :authority as its Host header, through h2Writer, which stands for the
// connection layer (http1.Wire) as nginx's HTTP/2 request does for
// ngx_http_request.c. The connection's settings are those of the address's
// default server, as nginx takes them.

// h2Protos is what ALPN offers on an http2 address.
var h2Protos = []string{"h2", "http/1.1"}

// h2Conns are a listener's HTTP/2 connections, for a graceful stop.
type h2Conns struct {
	mu    sync.Mutex
	conns map[*h2Conn]struct{}
	stop  bool
}

// h2Conn is one HTTP/2 connection.
type h2Conn struct {
	sock  net.Conn
	base  *http.Server // what x/net/http2 reads its settings and shutdown signal from
	conf  *nginxconf.LocConf
	group *addrGroup // the address's servers (max_headers of the one :authority names)
	start time.Time
	reqs  atomic.Int64 // streams so far ($connection_requests)
	tls   *tls.ConnectionState
	tap   *h2Tap // the header blocks' order
}

// serveH2 serves one HTTP/2 connection of l until it ends (the connection
// layer's H2 hook).
func (s *Server) serveH2(l *listener, ctx context.Context, c net.Conn) {
	g := s.state.Load().groupFor(l.spec, c.LocalAddr())
	if g == nil || g.def == nil {
		c.Close()
		return
	}
	conf := g.def.Conf
	var cs *tls.ConnectionState
	if tc, ok := c.(*tls.Conn); ok {
		state := tc.ConnectionState()
		cs = &state
		// nginx's connection takes the configuration of the server its
		// SNI names during the handshake: that server's settings and
		// header limits hold for the whole connection
		name := strings.ToLower(strings.TrimSuffix(cs.ServerName, "."))
		if srv, _, ok := g.match(name); ok && name != "" {
			conf = srv.Conf
		}
	}
	hc := &h2Conn{sock: c, conf: conf, group: g, start: time.Now(), tls: cs}
	// nginx: the whole header list may fill the large header buffers
	hc.base = &http.Server{MaxHeaderBytes: conf.LargeHeaderBufferSize * conf.LargeHeaderBuffers,
		ErrorLog: log.New(httpLogWriter{s}, "", 0)}
	idle := conf.KeepaliveTimeout
	if idle == 0 {
		// no keep-alive: each stream is the last (h2Handler); before the
		// first, the wait is client_header_timeout's
		idle = conf.ClientHeaderTimeout
	}
	h2s := &http2.Server{
		MaxConcurrentStreams:         uint32(conf.HTTP2MaxConcurrentStreams),
		IdleTimeout:                  idle,
		MaxUploadBufferPerStream:     int32(min(conf.HTTP2BodyPrereadSize, 1<<31-1)),
		WriteByteTimeout:             conf.SendTimeout,
		PermitProhibitedCipherSuites: true, // nginx serves HTTP/2 over whatever TLS agreed on
		// nginx 1.22 orders streams by RFC 7540's priority tree. Closed
		// streams leave it at once: x/net/http2's scheduler returns a closed
		// stream's queue to its pool, clearing its entries, while the node it
		// keeps in the tree still holds them; after a stream reset with DATA
		// queued it pops an empty request and panics in the connection's
		// goroutine, which ends the process (a client could do it at will).
		NewWriteScheduler: func() http2.WriteScheduler {
			return http2.NewPriorityWriteScheduler(&http2.PriorityWriteSchedulerConfig{MaxClosedNodesInTree: 0, MaxIdleNodesInTree: 10})
		},
	}
	if err := http2.ConfigureServer(hc.base, h2s); err != nil {
		c.Close()
		return
	}
	if !l.h2.add(hc) {
		c.Close()
		return
	}
	defer l.h2.remove(hc)
	tap, tc := newH2Tap(c)
	hc.tap = tap
	h2s.ServeConn(tc, &http2.ServeConnOpts{Context: ctx, BaseConfig: hc.base, Handler: h2Handler{s, hc}})
}

// h2GoAway sends GOAWAY on the HTTP/2 connections of every listener; stop:
// the listeners take no new ones (a stop, not a reload).
func (s *Server) h2GoAway(stop bool) {
	s.mu.Lock()
	ls := make([]*listener, 0, len(s.ls))
	for _, l := range s.ls {
		ls = append(ls, l)
	}
	s.mu.Unlock()
	for _, l := range ls {
		l.h2.goAway(stop)
	}
}

func (cs *h2Conns) add(hc *h2Conn) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.stop {
		return false
	}
	if cs.conns == nil {
		cs.conns = map[*h2Conn]struct{}{}
	}
	cs.conns[hc] = struct{}{}
	return true
}

func (cs *h2Conns) remove(hc *h2Conn) {
	cs.mu.Lock()
	delete(cs.conns, hc)
	cs.mu.Unlock()
}

// goAway sends GOAWAY on every connection: the streams under way finish,
// then the connections close, as an nginx worker does on a graceful quit
// and after a reload (its connections carry the old configuration). On a
// stop the connection layer closes what is left when its Shutdown's
// context ends.
func (cs *h2Conns) goAway(stop bool) {
	cs.mu.Lock()
	cs.stop = cs.stop || stop
	conns := make([]*h2Conn, 0, len(cs.conns))
	for hc := range cs.conns {
		conns = append(conns, hc)
	}
	cs.mu.Unlock()
	for _, hc := range conns {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // the hooks run at once; no http/1 connections to wait for
		hc.base.Shutdown(ctx)
	}
}

// h2Handler adapts an HTTP/2 stream to what ServeHTTP expects of an
// HTTP/1.x request.
type h2Handler struct {
	s  *Server
	hc *h2Conn
}

func (h h2Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hc := h.hc
	n := hc.reqs.Add(1)
	head := hc.tap.claim(r)
	if what := hc.tooLarge(r, head); what != "" {
		// nginx: a connection error (GOAWAY ENHANCE_YOUR_CALM; x/net/http2
		// lets no handler send one, the connection just closes)
		h.s.ErrorLog().Logf(ngxlog.Info, 0, "client sent too large %s while processing HTTP/2 connection", what)
		hc.sock.Close()
		return
	}
	if r.TLS == nil {
		// x/net/http2 sets it only for :scheme https; nginx's $scheme,
		// $https and $ssl_* follow the connection
		r.TLS = hc.tls
	}
	fields := 0 // the regular fields (:authority apart)
	for _, vs := range r.Header {
		fields += len(vs)
	}
	if _, ok := r.Header["Host"]; !ok && r.Host != "" {
		// nginx makes :authority the Host header ($http_host)
		r.Header["Host"] = []string{r.Host}
	}
	hw := &h2Writer{ResponseWriter: w, r: r, hc: hc, reqs: int(n), params: http1.DefaultParams(), head: head}
	setParams(&hw.params, hc.conf)
	max := hc.conf.MaxHeaders
	if hc.group != nil && hc.group.maxHeadersVary && r.Host != "" {
		// nginx counts the fields against the limit of the server the
		// host (:authority, read first) selects
		if host, ok := http1.ValidHost(r.Host); ok {
			max = hc.group.lineRulesFor(host).MaxHeaders
		}
	}
	if max > 0 && fields > max {
		// max_headers: on HTTP/2 a 400
		h.s.reject(hw, r, &http1.Error{Status: http.StatusBadRequest, Msg: "client sent too many header lines"})
		return
	}
	if hw.head != nil && len(hw.head.hosts) > 1 {
		// nginx 1.22 makes :authority a Host header: a host field besides
		// it (or a second one) is a duplicate, whatever its value
		h.s.reject(hw, r, &http1.Error{Status: http.StatusBadRequest,
			Msg: `client sent duplicate host header: "host: ` + hw.head.hosts[1] + `", previous value: "host: ` + hw.head.hosts[0] + `"`})
		return
	}
	if r.Host != "" {
		if _, ok := http1.ValidHost(r.Host); !ok {
			// nginx checks :authority (or host) as a Host header
			h.s.reject(hw, r, &http1.Error{Status: http.StatusBadRequest, Msg: "client sent invalid host header"})
			return
		}
	}
	// the last stream nginx takes (GOAWAY once it is answered): the
	// keepalive_requests-th, one past keepalive_time, or any with
	// keepalive_timeout 0
	c := hc.conf
	hw.last = n >= int64(c.KeepaliveRequests) || c.KeepaliveTimeout == 0 || time.Since(hc.start) > c.KeepaliveTime
	if rd, ok := w.(interface{ SetReadDeadline(time.Time) error }); ok && r.Body != nil && r.ContentLength != 0 {
		r.Body = &h2Body{ReadCloser: r.Body, w: hw, rd: rd}
	}
	if r.Method == http.MethodTrace {
		// nginx refuses TRACE while reading the request, as on HTTP/1.x
		h.s.reject(hw, r, &http1.Error{Status: http.StatusMethodNotAllowed, Msg: "client sent TRACE method"})
		return
	}
	h.s.ServeHTTP(hw, r)
	// what the handler left buffered goes out once it returns: within
	// send_timeout too
	hw.armSend()
	if hw.reset {
		// return 444: nginx resets the stream
		panic(http.ErrAbortHandler)
	}
}

// h2Body bounds each read of a request body by client_body_timeout (the
// location's), as nginx's HTTP/2 body reading does: a stalled stream does
// not hold its request for ever.
type h2Body struct {
	io.ReadCloser
	w  *h2Writer
	rd interface{ SetReadDeadline(time.Time) error }
}

func (b *h2Body) Read(p []byte) (int, error) {
	if d := b.w.params.BodyTimeout; d > 0 {
		b.rd.SetReadDeadline(time.Now().Add(d))
	}
	return b.ReadCloser.Read(p)
}

// tooLarge reports what nginx refuses in a header list ("header field",
// "header"): a name or value longer than a large header buffer as the
// client coded it (Huffman-coded or not), or the list (names and values
// as decoded, pseudo-header fields too) larger than all of them. Without
// the tap's head, the decoded values are held against a buffer.
func (hc *h2Conn) tooLarge(r *http.Request, head *h2Head) string {
	max := hc.conf.LargeHeaderBufferSize
	if head != nil {
		switch {
		case head.field > max:
			return "header field"
		case head.list > max*hc.conf.LargeHeaderBuffers:
			return "header"
		}
		return ""
	}
	if len(r.RequestURI) > max {
		return "header field"
	}
	for _, vs := range r.Header {
		for _, v := range vs {
			if len(v) > max {
				return "header field"
			}
		}
	}
	return ""
}

// h2Writer is a stream's response writer: x/net/http2's, with what
// ServeHTTP asks of the connection layer (http1.Wire).
type h2Writer struct {
	http.ResponseWriter
	r      *http.Request
	hc     *h2Conn
	reqs   int
	params http1.Params // per-location HTTP/1.x settings: nothing to apply on HTTP/2
	header int64        // header bytes, estimated once written
	body   int64
	reset  bool
	last   bool // the connection's last stream
	// chunk is http2_chunk_size: no DATA frame larger; pending, that the
	// last piece written is still buffered (a frame of its own follows)
	chunk   int
	pending bool
	armed   bool    // send_timeout bounds the writes (armSend)
	head    *h2Head // the order of the request's header list (nil: unknown)
}

var _ http1.Wire = (*h2Writer)(nil)

func (w *h2Writer) WriteHeader(code int) {
	// "Connection: close" (a 413, keepalive off) means nothing on HTTP/2,
	// where x/net/http2 would end the connection for it: nginx keeps it
	h := w.ResponseWriter.Header()
	h.Del("Connection")
	h.Del("Keep-Alive")
	if w.last {
		h.Set("Connection", "close")
	}
	if w.header == 0 {
		w.header = w.headerSize(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *h2Writer) Write(p []byte) (int, error) {
	if w.header == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.armSend()
	defer w.disarmSend()
	if w.chunk <= 0 {
		n, err := w.ResponseWriter.Write(p)
		w.body += int64(n)
		return n, err
	}
	// http2_chunk_size: a DATA frame per piece. x/net/http2 makes a frame
	// of each write it buffers no longer (a piece of 4 KiB and more goes
	// through) and of each flush; the last piece stays buffered, so that
	// it goes out with END_STREAM when the response ends there.
	written := 0
	for len(p) > 0 {
		if w.pending {
			w.Flush()
		}
		piece := p[:min(len(p), w.chunk)]
		n, err := w.ResponseWriter.Write(piece)
		w.body += int64(n)
		written += n
		w.pending = true
		if err != nil {
			return written, err
		}
		p = p[len(piece):]
	}
	return written, nil
}

// headerSize estimates the HEADERS frame (literal fields, as nginx's
// header filter sends them the first time): its 9-byte frame header, then
// per field a byte of flags and a length byte for name and value.
func (w *h2Writer) headerSize(code int) int64 {
	n := int64(9 + 1) // frame header, :status
	_ = code
	for k, vs := range w.ResponseWriter.Header() {
		for _, v := range vs {
			n += int64(3 + len(k) + len(v))
		}
	}
	return n
}

func (w *h2Writer) Flush() {
	w.pending = false
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if !w.armed {
			w.armSend()
			defer w.disarmSend()
		}
		f.Flush()
	}
}

// armSend bounds by send_timeout how long the writes that follow may wait
// for the client (its flow-control windows, the socket), as nginx's
// send_timeout does for a stream: past it x/net/http2 resets the stream
// and the writes fail. disarmSend lifts the bound once a write is done,
// so that the time the response takes to come (proxy_read_timeout's)
// does not count.
func (w *h2Writer) armSend() {
	d := w.params.SendTimeout
	if wd, ok := w.ResponseWriter.(interface{ SetWriteDeadline(time.Time) error }); ok && d > 0 {
		wd.SetWriteDeadline(time.Now().Add(d))
		w.armed = true
	}
}

func (w *h2Writer) disarmSend() {
	if wd, ok := w.ResponseWriter.(interface{ SetWriteDeadline(time.Time) error }); ok && w.armed {
		wd.SetWriteDeadline(time.Time{})
		w.armed = false
	}
}

// Hijack is how ServeHTTP closes a connection without a reply (return
// 444): on HTTP/2 the stream is reset instead, once the handler returns.
func (w *h2Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.reset {
		return nil, nil, errors.New("stream already reset")
	}
	w.reset = true
	return resetConn{w.hc.sock}, nil, nil
}

// resetConn is what Hijack hands out: closing it resets the stream only.
type resetConn struct{ net.Conn }

func (resetConn) Close() error                  { return nil }
func (resetConn) Read([]byte) (int, error)      { return 0, net.ErrClosed }
func (resetConn) Write([]byte) (int, error)     { return 0, net.ErrClosed }
func (w *h2Writer) Params() *http1.Params       { return &w.params }
func (w *h2Writer) Note(string)                 {} // HPACK: x/net/http2 orders the fields itself
func (w *h2Writer) Unnote(string)               {}
func (w *h2Writer) OwnVary()                    {}
func (w *h2Writer) BytesSent() int64            { return w.header + w.body + 9*((w.body+16383)/16384) }
func (w *h2Writer) BodyBytesSent() int64        { return w.body }
func (w *h2Writer) DiscardBody() error          { return nil } // x/net/http2 drops what the handler leaves unread
func (w *h2Writer) ConnRequests() int           { return w.reqs }
func (w *h2Writer) ConnStart() time.Time        { return w.hc.start }
func (w *h2Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// requestLength estimates $request_length of an HTTP/2 request as nginx
// counts it: the header fields as decoded (name, value and the two bytes
// nginx's representation adds), with the body read so far left out.
func requestLength(r *http.Request) int64 {
	n := int64(len(":method") + len(r.Method) + len(":path") + len(r.RequestURI) + len(":scheme") + 5 + 6)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 2)
		}
	}
	return n
}

// SetTrailer declares add_trailer's fields ("Name: value\r\n" lines) to
// x/net/http2, which sends them in a HEADERS frame with END_STREAM after
// the last DATA frame, as nginx does.
func (w *h2Writer) SetTrailer(lines []byte) {
	h := w.ResponseWriter.Header()
	for _, line := range strings.Split(string(lines), "\r\n") {
		name, value, ok := strings.Cut(line, ": ")
		if !ok || name == "" {
			continue
		}
		k := http.TrailerPrefix + name
		h[k] = append(h[k], value)
	}
}

// RequestLength is $request_length: as nginx counts it, the header
// block's bytes as the client coded them (HEADERS and CONTINUATION
// payloads, without padding and priority); an estimate from the decoded
// fields when the tap has no head for the stream.
func (w *h2Writer) RequestLength() int64 {
	if w.head != nil {
		return int64(w.head.size)
	}
	return requestLength(w.r)
}

// StreamClosed is a channel that is sent a value once the stream has
// closed: its response sent whole (END_STREAM written), or reset, or the
// connection gone. It must be called while the request is handled.
func (w *h2Writer) StreamClosed() <-chan bool {
	if cn, ok := w.ResponseWriter.(http.CloseNotifier); ok { //nolint:staticcheck // the stream's close, which nothing else tells
		return cn.CloseNotify()
	}
	ch := make(chan bool, 1)
	ch <- true
	return ch
}
