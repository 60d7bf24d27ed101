package http1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"ngxsockify/ngxlog"
	"ngxsockify/proxy/internal/ctxval"
	"ngxsockify/proxy/internal/handoff"
)

// Params are the settings of the connection layer that nginx has per
// server or location. The layer starts a connection with the default
// server's (Server.ConnParams) and the handler changes them per request
// through the ResponseWriter (ParamsOf).
type Params struct {
	HeaderTimeout     time.Duration // client_header_timeout
	BodyTimeout       time.Duration // client_body_timeout
	SendTimeout       time.Duration // send_timeout
	KeepaliveTimeout  time.Duration // keepalive_timeout; 0: no keep-alive
	KeepaliveHeader   time.Duration // keepalive_timeout's second argument: "Keep-Alive: timeout=N" (0: none)
	KeepaliveRequests int           // keepalive_requests
	KeepaliveTime     time.Duration // keepalive_time: no keep-alive past this connection age
	// KeepaliveDisableMSIE6 ends keep-alive after POSTs from MSIE 4 to 6,
	// KeepaliveDisableSafari after requests from Safari (keepalive_disable).
	KeepaliveDisableMSIE6, KeepaliveDisableSafari bool
	// LargeBufferSize and LargeBuffers are large_client_header_buffers:
	// a request line longer than a buffer answers 414, a header line
	// longer 494, a head larger than all of them 494.
	LargeBufferSize, LargeBuffers int
	// MaxHeaders is max_headers: a head with more header lines answers 494.
	MaxHeaders int
	// LineRulesFor, when set, gives the header-line settings of the server
	// a host name (lowercased, without port) selects. As in nginx, they
	// change once the request line's absolute URI or the Host line has
	// chosen the virtual server: the lines after it are read under that
	// server's max_headers (the count itself starts at the first line),
	// underscores_in_headers, ignore_invalid_headers and
	// large_client_header_buffers.
	LineRulesFor func(host string) LineRules
	// Lingering close: after a response that leaves request bytes unread,
	// read and drop what the client still sends for up to LingeringTime,
	// waiting at most LingeringTimeout for each read.
	LingeringClose                  Linger
	LingeringTime, LingeringTimeout time.Duration
	UnderscoresInHeaders            bool
	KeepInvalidHeaders              bool // ignore_invalid_headers off
	NoChunked                       bool // chunked_transfer_encoding off
	// ProxyProtocol: the connection starts with a PROXY protocol header
	// (listen ... proxy_protocol), read from the first HeaderBufferSize
	// bytes (client_header_buffer_size) of its first read, or on a TLS
	// listener from the proxyproto.MaxHeader+1 bytes nginx peeks at.
	ProxyProtocol    bool
	HeaderBufferSize int
}

// LineRules are the settings a header line is read under.
type LineRules struct {
	MaxHeaders                      int
	Underscores, KeepInvalidHeaders bool
	LargeBufferSize, LargeBuffers   int // large_client_header_buffers
}

// Linger is lingering_close's value.
type Linger int

const (
	LingerOn Linger = iota
	LingerOff
	LingerAlways
)

// DefaultParams are nginx's defaults.
func DefaultParams() Params {
	return Params{
		HeaderTimeout: 60 * time.Second, BodyTimeout: 60 * time.Second, SendTimeout: 60 * time.Second,
		KeepaliveTimeout: 75 * time.Second, KeepaliveRequests: 1000, KeepaliveTime: time.Hour,
		KeepaliveDisableMSIE6: true,
		LargeBufferSize:       8192, LargeBuffers: 4, MaxHeaders: 1000,
		LingeringTime: 30 * time.Second, LingeringTimeout: 5 * time.Second,
		HeaderBufferSize: 1024,
	}
}

// Server serves HTTP/1.x on the connections of one listener.
type Server struct {
	// Handler answers each request.
	Handler http.Handler
	// Reject answers a request nginx refuses while reading it, with w and
	// the request as far as it was read (r.Method is "" when the request
	// line was not read). The connection closes after it. For 408 and
	// 499 nothing must be written (nginx closes without a reply).
	Reject func(w http.ResponseWriter, r *http.Request, e *Error)
	// ConnParams gives a new connection's settings (default: DefaultParams).
	ConnParams func(c net.Conn) Params
	// ConnState, when set, follows each connection through net/http's
	// states (New, Active, Idle, Hijacked, Closed), with the accepted
	// net.Conn.
	ConnState func(net.Conn, http.ConnState)
	// ConnContext makes the base context of a connection's requests.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// TLSConfig, when set, makes the listener a TLS one.
	TLSConfig *tls.Config
	// H2, when set, serves the connections that speak HTTP/2: under TLS,
	// those that chose "h2" by ALPN; on a plain listener, those that open
	// with HTTP/2's connection preface (prior knowledge). It returns when
	// the connection ends; the connection counts as active meanwhile.
	H2 func(ctx context.Context, c net.Conn)
	// Logf receives the layer's own messages (accept and TLS handshake
	// failures), as net/http's ErrorLog did.
	Logf func(format string, args ...any)
	// ConnLog receives the error-log lines nginx writes about a
	// connection before its first request (a broken PROXY protocol
	// header): the level and the message with its "while ..." part; ctx
	// is the connection's (ConnContext). Nil: they are dropped.
	ConnLog func(ctx context.Context, c net.Conn, level ngxlog.Level, msg string)

	mu       sync.Mutex
	ln       net.Listener
	conns    connList
	closing  atomic.Bool
	noKeep   atomic.Bool // SetKeepAlivesEnabled(false)
	wg       sync.WaitGroup
	serveErr chan struct{}
}

// SetKeepAlivesEnabled(false) answers every request from now on with
// "Connection: close" and closes the idle connections, as nginx's graceful
// quit does.
func (s *Server) SetKeepAlivesEnabled(on bool) {
	s.noKeep.Store(!on)
	if !on {
		s.closeConns(false)
	}
}

func (s *Server) setState(c *conn, st http.ConnState) {
	if s.ConnState != nil {
		s.ConnState(c.sock, st)
	}
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

// Serve accepts connections on ln until it is closed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	a := &acceptLoop{s: s, ln: ln, end: make(chan error, 1), turn: handoff.New[struct{}]()}
	go a.run()
	return <-a.end
}

// acceptLoop is the goroutines of one Serve. One of them waits in Accept;
// when a connection comes it hands the accepting over to another and serves
// the connection itself: the new connection runs before the next accept, as
// nginx's event loop serves connections in the order it accepts them (a
// request sent first is counted first by limit_conn, for instance), with no
// yield and no trip through the scheduler's global queue. A goroutine whose
// connection ended waits, with the stack serving grew, to be handed the
// accepting again (handoff): a new goroutine per connection costs its
// creation, a stack grown by a copy and its exit, about a tenth of a
// WebSocket handshake's user CPU.
type acceptLoop struct {
	s   *Server
	ln  net.Listener
	end chan error // Serve's result, sent by the goroutine that meets the listener's end
	// The goroutines waiting for their turn to accept; the one that meets
	// the listener's end closes it, and they exit.
	turn *handoff.Waiters[struct{}]
}

// run is a goroutine of the loop: it accepts a connection, hands the
// accepting over, serves the connection, and then waits for its turn.
func (a *acceptLoop) run() {
	handoff.Grow()
	for {
		c := a.accept()
		if c == nil {
			return
		}
		if !a.turn.Hand(struct{}{}) {
			go a.run()
		}
		c.serve()
		if _, ok := a.turn.Wait(); !ok {
			return
		}
	}
}

// accept waits for a connection and registers it; nil: the listener ended
// (Serve's result sent, turn closed).
func (a *acceptLoop) accept() *conn {
	s := a.s
	var delay time.Duration
	for {
		rwc, err := a.ln.Accept()
		if err != nil {
			if s.closing.Load() {
				a.stop(ErrServerClosed)
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Temporary() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logf("http: Accept error: %v; retrying in %v", err, delay)
				time.Sleep(delay)
				continue
			}
			a.stop(err)
			return nil
		}
		c := &conn{s: s, sock: rwc, rwc: rwc, start: time.Now()}
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			rwc.Close()
			a.stop(ErrServerClosed)
			return nil
		}
		s.conns.add(c)
		c.state.Store(stateNew)
		s.wg.Add(1)
		s.mu.Unlock()
		s.setState(c, http.StateNew)
		return c
	}
}

func (a *acceptLoop) stop(err error) {
	a.turn.Close()
	a.end <- err
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	s.conns.remove(c)
	s.mu.Unlock()
	s.wg.Done()
}

// Shutdown stops accepting, closes idle connections, lets requests being
// served finish (their connections then close) until ctx ends, and then
// closes what is left. Hijacked connections are not the server's any more.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeConns(false)
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			s.closeConns(true)
			<-done
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Shutdown(ctx)
	return nil
}

func (s *Server) closeConns(all bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := s.conns.first; c != nil; c = c.next {
		// a connection waiting for its first request gets newGrace to
		// send it, as net/http's Shutdown gives
		st := c.state.Load()
		if all || st == stateIdle || st == stateNew && time.Since(c.start) > newGrace {
			c.sock.Close()
		}
	}
}

// connList is a server's connections, linked through them: adding and
// removing one hashes nothing. Server.mu guards it.
type connList struct {
	first *conn
}

func (l *connList) add(c *conn) {
	c.prev, c.next = nil, l.first
	if l.first != nil {
		l.first.prev = c
	}
	l.first = c
}

func (l *connList) remove(c *conn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else if l.first == c {
		l.first = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	}
	c.prev, c.next = nil, nil
}

const (
	stateNew    int32 = iota // waiting for the first request
	stateIdle                // waiting for the next request (keep-alive)
	stateActive              // reading or answering a request
)

// readerSize is the size of a connection's read buffer.
const readerSize = 4096

// newGrace is how long Shutdown lets a new connection send its first
// request before closing it.
const newGrace = 5 * time.Second

// conn is one client connection.
type conn struct {
	s      *Server
	sock   net.Conn // the accepted socket (what Shutdown closes)
	rwc    net.Conn // the connection: *tls.Conn under TLS
	raw    net.Conn // the socket under TLS (a *RawConn), else rwc
	br     *bufio.Reader
	bw     *bufio.Writer
	params Params
	state  atomic.Int32
	ctx    context.Context

	requests int
	start    time.Time
	remote   string // RemoteAddr().String()
	// the socket's deadlines (readDeadline, writeDeadline); rdDirty: a
	// read deadline was set from another goroutine (CancelRead)
	rd, wd   lazyDeadline
	rdDirty  atomic.Bool
	read     int64 // request bytes read for the current request ($request_length)
	toHTTPS  bool  // plain HTTP on a TLS port
	hijacked bool
	cur      *response
	body     *body           // the current request's
	head     *Head           // the current request's
	reqCtx   context.Context // ctx with the connection (ctxConn), its requests' context
	blankReq *http.Request   // an empty request with reqCtx, that newRequest copies
	// the contexts of the connection and of its requests (ctx, reqCtx),
	// allocated with it
	baseCtx, connReqCtx ctxval.Value
	// watching: WatchClose watches the socket; closed: the watch saw the
	// client go (Gone)
	watching, closed atomic.Bool
	watch            *watcher // WatchClose's, once it was called
	prev, next       *conn    // in Server.conns
}

var (
	writerPool sync.Pool
	// readerPool keeps the read buffers of connections that ended (or
	// whose hijacker gave the buffer back: ReleaseReader)
	readerPool sync.Pool
	// reqObjectsPool keeps the objects of requests answered on
	// connections that stayed open (readHead takes them)
	reqObjectsPool sync.Pool
)

func (c *conn) serve() {
	defer func() {
		c.release()
		if !c.hijacked {
			c.rwc.Close()
			c.s.setState(c, http.StateClosed)
			c.s.forget(c) // a hijacked connection was forgotten at Hijack
		}
	}()
	c.params = DefaultParams()
	if c.s.ConnParams != nil {
		c.params = c.s.ConnParams(c.rwc)
	}
	ctx := context.Background()
	if c.s.ConnContext != nil {
		ctx = c.s.ConnContext(ctx, c.rwc)
	}
	c.baseCtx = ctxval.Value{Context: ctx, Key: http.LocalAddrContextKey, Val: c.rwc.LocalAddr()}
	ctx = &c.baseCtx
	c.raw = c.rwc
	var pre []byte // bytes read after a PROXY protocol header, under TLS
	if c.params.ProxyProtocol && c.s.TLSConfig != nil {
		var ok bool
		if ctx, pre, ok = c.readProxyHeader(ctx, true); !ok {
			return
		}
	}
	if c.s.TLSConfig != nil && !c.startTLS(ctx, pre) {
		return
	}
	// net/http's size: longer lines, up to a large header buffer, are
	// gathered from it (readLine)
	c.br = newReader(c.rwc)
	if c.params.ProxyProtocol && c.s.TLSConfig == nil {
		var ok bool
		if ctx, _, ok = c.readProxyHeader(ctx, false); !ok {
			c.releaseReader()
			return
		}
	}
	c.ctx = ctx
	if c.s.H2 != nil {
		h2, err := c.speaksH2()
		if err != nil {
			return // nothing came within client_header_timeout, or the client left
		}
		if h2 {
			c.state.Store(stateActive)
			c.s.setState(c, http.StateActive)
			c.setReadDeadline(time.Time{})
			c.s.H2(ctx, c.h2Conn())
			return
		}
	}
	for c.serveOne() {
	}
	if !c.hijacked {
		c.releaseReader()
	}
}

// newReader returns a read buffer of readerSize on rd, a pooled one if
// there is one: a handshake that becomes a tunnel would otherwise leave
// its 4 KiB to the collector, a third of the bytes it allocates.
func newReader(rd io.Reader) *bufio.Reader {
	if br, ok := readerPool.Get().(*bufio.Reader); ok {
		br.Reset(rd)
		return br
	}
	return bufio.NewReaderSize(rd, readerSize)
}

// releaseReader puts the connection's read buffer back in the pool; the
// connection no longer reads.
func (c *conn) releaseReader() {
	if c.br != nil {
		c.br.Reset(nil)
		readerPool.Put(c.br)
		c.br = nil
	}
}

// ReleaseReader gives back the reader that Hijack handed over, once the
// caller has taken what it holds and will not read it again. Other
// readers are left alone, and so is the reader of a request whose body
// was not read whole (a read of the body would read it).
func (w *response) ReleaseReader(br *bufio.Reader) {
	if c := w.c; c.hijacked && br == c.br && (c.body == nil || c.body.done) {
		c.releaseReader()
	}
}

// startTLS does the TLS handshake, or notes plain HTTP sent to the TLS
// port (the first byte is not a TLS record's). pre holds the bytes read
// after a PROXY protocol header; without them the first byte is read.
func (c *conn) startTLS(ctx context.Context, pre []byte) bool {
	raw := &RawConn{Conn: c.rwc, pre: pre}
	c.readDeadline(c.params.HeaderTimeout)
	if len(pre) == 0 {
		var b [1]byte
		if n, err := c.rwc.Read(b[:]); n == 0 || err != nil {
			return false
		}
		raw.pre = b[:]
	}
	c.raw = raw
	if raw.pre[0] != 0x16 {
		c.rwc, c.toHTTPS = raw, true
		return true
	}
	tc := tls.Server(raw, c.s.TLSConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.s.logf("http: TLS handshake error from %s: %v", c.rwc.RemoteAddr(), err)
		c.rwc.Close()
		return false
	}
	c.rwc = tc
	return true
}

// h2Preface opens every HTTP/2 connection (RFC 9113, 3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// speaksH2 reports whether the connection is an HTTP/2 one: "h2" agreed by
// ALPN, or on a plain connection the preface, read only as far as the
// bytes match it (a short HTTP/1.x request must not wait for more). An
// error: nothing to serve (client_header_timeout passed, the client left).
func (c *conn) speaksH2() (bool, error) {
	if tc, ok := c.rwc.(*tls.Conn); ok {
		return tc.ConnectionState().NegotiatedProtocol == "h2", nil
	}
	if c.toHTTPS {
		return false, nil
	}
	c.readDeadline(c.params.HeaderTimeout)
	b, err := c.br.Peek(1)
	for err == nil && string(b) == h2Preface[:len(b)] {
		if len(b) == len(h2Preface) {
			return true, nil
		}
		if _, err = c.br.Peek(len(b) + 1); err == nil {
			b, err = c.br.Peek(min(c.br.Buffered(), len(h2Preface)))
		}
	}
	if err != nil && c.br.Buffered() == 0 {
		return false, err
	}
	return false, nil
}

// h2Conn is the connection the HTTP/2 server reads: under TLS the
// *tls.Conn (nothing was read ahead), else the socket after the bytes read
// while looking for the preface.
func (c *conn) h2Conn() net.Conn {
	if _, ok := c.rwc.(*tls.Conn); ok {
		return c.rwc
	}
	return &prefaceConn{Conn: c.rwc, br: c.br}
}

// prefaceConn gives the HTTP/2 server the bytes read while looking for
// the preface.
type prefaceConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *prefaceConn) Read(p []byte) (int, error) {
	if c.br != nil && c.br.Buffered() > 0 {
		return c.br.Read(p)
	}
	c.br = nil
	return c.Conn.Read(p)
}

func (c *conn) release() {
	if c.bw != nil {
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
		c.bw = nil
	}
}

func (c *conn) writer() *bufio.Writer {
	if c.bw == nil {
		if w, ok := writerPool.Get().(*bufio.Writer); ok {
			w.Reset(c.rwc)
			c.bw = w
		} else {
			c.bw = bufio.NewWriterSize(c.rwc, 4096)
		}
	}
	return c.bw
}

// serveOne reads and answers one request; it reports whether the
// connection stays open for another.
func (c *conn) serveOne() bool {
	first := c.requests == 0
	wait := c.params.KeepaliveTimeout
	if first {
		wait = c.params.HeaderTimeout
	}
	if !first {
		c.state.Store(stateIdle)
		c.s.setState(c, http.StateIdle)
	}
	if (c.s.closing.Load() || c.s.noKeep.Load() && !first) && c.br.Buffered() == 0 {
		return false
	}
	pipelined := !first && c.br.Buffered() > 0
	// the first byte: keepalive_timeout between requests
	c.readDeadline(wait)
	if !first && c.br.Buffered() == 0 {
		// Let the other connections' goroutines run first, as nginx's
		// event loop handles every ready event before it waits again:
		// the client has more time to send, and a read that finds its
		// request costs no failed read (EAGAIN) and no wake-up through
		// the poller. Alone, this returns at once.
		runtime.Gosched()
	}
	if _, err := c.br.Peek(1); err != nil {
		return false
	}
	c.state.Store(stateActive)
	c.s.setState(c, http.StateActive)
	if !c.headBuffered() {
		// the head's reads wait client_header_timeout (a head that came
		// whole needs no more reads)
		c.readDeadline(c.params.HeaderTimeout)
	}
	c.read = 0
	spare, _ := reqObjectsPool.Get().(*reqObjects)
	h, started, err := readHead(c.br, &c.params, c.params.UnderscoresInHeaders, spare)
	c.read = int64(len(h.Raw))
	if err != nil {
		var pe *Error
		switch {
		case errors.As(err, &pe):
		case isTimeout(err) && started:
			pe = headerErr(http.StatusRequestTimeout, "client timed out (110: Connection timed out)")
		default:
			if started && h.Method != "" {
				// the client closed mid-request: nginx logs it as 400
				pe = headerErr(400, "client prematurely closed connection")
				c.reject(h, pe, false)
			}
			return false
		}
		c.reject(h, pe, true)
		return false
	}
	c.requests++
	h.Pipelined = pipelined
	r := c.newRequest(h)
	if c.toHTTPS {
		c.reject(h, headerErr(StatusToHTTPS, "client sent plain HTTP request to HTTPS port"), true)
		return false
	}
	w := newResponse(c, r, h)
	c.cur = w
	if !c.run(w, r) {
		return false
	}
	c.cur = nil
	if c.hijacked {
		return false
	}
	w.finish()
	keep := w.keepalive && !c.s.closing.Load() && !c.s.noKeep.Load()
	// the rest of an unread body is read and dropped, as nginx discards it
	if keep && !w.body.discard(1<<62) {
		keep = false
	}
	if w.err != nil {
		return false
	}
	if !keep {
		c.closeLingering(w, false)
		return false
	}
	c.release() // an idle connection holds no write buffer
	// nothing holds the request's objects once it was answered on a
	// connection that stays (the handler returned and Hijack was not
	// called): they serve another request, and an idle connection holds
	// none
	c.head, c.body = nil, nil
	reqObjectsPool.Put(h.x)
	return true
}

// run calls the handler; a panic in it is logged (as net/http's server did)
// and ends the connection: run reports false then.
func (c *conn) run(w *response, r *http.Request) (ok bool) {
	defer func() {
		if err := recover(); err != nil {
			if err != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.s.logf("http: panic serving %v: %v\n%s", c.rwc.RemoteAddr(), err, buf)
			}
			ok = false
		}
	}()
	c.s.Handler.ServeHTTP(w, r)
	return true
}

// reject answers a request refused while reading it, then the connection
// closes (lingering when the client may still be sending).
func (c *conn) reject(h *Head, e *Error, reply bool) {
	r := c.newRequest(h)
	c.body.expect = false // nginx answers a refused head without "100 Continue"
	w := newResponse(c, r, h)
	w.keepalive = false
	if e.Status == http.StatusRequestTimeout || e.Status == 499 || !reply {
		w.discard = true
	}
	if c.s.Reject != nil {
		c.s.Reject(w, r, e)
	}
	if c.hijacked {
		return
	}
	w.finish()
	if !w.discard {
		// the client may still be sending the rest of what was refused
		c.closeLingering(w, true)
	}
}

// closeLingering half-closes and drains what the client still sends, so
// that it reads the reply before the close resets the connection.
func (c *conn) closeLingering(w *response, unread bool) {
	p := c.params
	unread = unread || c.br.Buffered() > 0 || !w.body.done
	if p.LingeringClose == LingerOff || (p.LingeringClose == LingerOn && !unread) {
		return
	}
	cw, ok := c.rwc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	end := time.Now().Add(p.LingeringTime)
	buf := make([]byte, 4096)
	for time.Now().Before(end) {
		c.setReadDeadline(min2(time.Now().Add(p.LingeringTimeout), end))
		if _, err := c.rwc.Read(buf); err != nil {
			return
		}
	}
}

func min2(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sendContinue answers "Expect: 100-continue" when the handler starts
// reading the body, unless a response was already sent.
func (c *conn) sendContinue() {
	if c.cur != nil && c.cur.wroteHeader {
		return
	}
	c.writeDeadline()
	bw := c.writer()
	bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	bw.Flush()
}

// writeDeadline lets the next writes wait send_timeout, keeping the
// deadline already set when it is close enough (lazyDeadline).
func (c *conn) writeDeadline() {
	d := c.params.SendTimeout
	if d <= 0 {
		return
	}
	now := monoNow()
	want := now + mono(d)
	if !c.wd.keep(now, want, d) {
		c.rwc.SetWriteDeadline(want.time())
		c.wd = lazyDeadline{at: want, set: true}
	}
}

// headBuffered reports whether the read buffer holds a whole request head
// (the request line and the empty line after the header lines).
func (c *conn) headBuffered() bool {
	buf, _ := c.br.Peek(c.br.Buffered())
	if len(buf) == 0 || buf[0] == '\r' || buf[0] == '\n' {
		return false // leading empty lines: readHead skips them
	}
	return bytes.Contains(buf, []byte("\n\r\n")) || bytes.Contains(buf, []byte("\n\n"))
}

// lazyDeadline is a deadline as set on the socket. A new deadline within
// deadlineSlack of it (and of at most an eighth of its timeout) keeps it,
// as nginx keeps a timer (NGX_TIMER_LAZY_DELAY): a request on a busy
// connection then sets none.
type lazyDeadline struct {
	at  mono // 0: none
	set bool // at is what the socket has
}

const deadlineSlack = 300 * time.Millisecond

// mono is a reading of the monotonic clock: the time since clockBase.
// Deadlines are kept as such, and made time.Time only to be set.
type mono time.Duration

var clockBase = time.Now()

// monoNow reads the monotonic clock alone: one clock read where time.Now
// makes two (the wall clock too).
func monoNow() mono { return mono(time.Since(clockBase)) }

// monoOf is t as a mono (0 for the zero time: no deadline).
func monoOf(t time.Time) mono {
	if t.IsZero() {
		return 0
	}
	return mono(t.Sub(clockBase))
}

// time is m as a time.Time, with a monotonic reading: a deadline set from
// it is what one from time.Now would be.
func (m mono) time() time.Time { return clockBase.Add(time.Duration(m)) }

// keep reports whether the deadline set can stand for want, a timeout of
// d from now: it is still ahead and close enough to want.
func (l lazyDeadline) keep(now, want mono, d time.Duration) bool {
	if !l.set || l.at == 0 || l.at <= now {
		return false
	}
	diff := time.Duration(want - l.at)
	if diff < 0 {
		diff = -diff
	}
	return diff < min(deadlineSlack, d/8)
}

// RawConn is the socket under a TLS connection. It gives back the byte
// read to tell TLS from plain HTTP, lets the WebSocket relay take over its
// reads and writes (websockify.IORedirector), and exposes the socket
// (NetConn, SyscallConn).
type RawConn struct {
	net.Conn
	pre []byte
	rd  io.Reader
	wr  io.Writer
}

func (c *RawConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	if c.rd != nil {
		return c.rd.Read(p)
	}
	return c.Conn.Read(p)
}

func (c *RawConn) Write(p []byte) (int, error) {
	if c.wr != nil {
		return c.wr.Write(p)
	}
	return c.Conn.Write(p)
}

// RedirectIO hands the connection's reads and writes to the relay.
func (c *RawConn) RedirectIO(r io.Reader, w io.Writer) { c.rd, c.wr = r, w }

// NetConn returns the socket.
func (c *RawConn) NetConn() net.Conn { return c.Conn }

// CloseWrite shuts down the sending side of the socket.
func (c *RawConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// SyscallConn lets the relay use the socket directly.
func (c *RawConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, syscall.EINVAL
}
