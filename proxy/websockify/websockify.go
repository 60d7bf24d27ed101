package websockify

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"ngxsockify/proxy/internal/ctxval"
	"os"
	"strings"
	"sync"
	"time"
)

// Defaults used when an Options field is zero; they are nginx's module defaults.
const (
	DefaultTimeout    = 60 * time.Second
	DefaultBufferSize = 65543
	// MinBufferSize is the smallest BufferSize honoured; smaller values are raised to it.
	MinBufferSize = 256
)

// Options configures one websockify_pass location. The zero value is usable.
type Options struct {
	// ConnectTimeout bounds one connect attempt (websockify_connect_timeout). 0 means 60s.
	ConnectTimeout time.Duration
	// ReadTimeout is the idle timeout of the whole tunnel (websockify_read_timeout):
	// data in either direction re-arms it. 0 means 60s.
	ReadTimeout time.Duration
	// SendTimeout bounds a blocked write to the client or to the target
	// (websockify_send_timeout). 0 means 60s.
	SendTimeout time.Duration
	// BufferSize (websockify_buffer_size) is the largest payload of a frame sent
	// to the client and the size of each relay buffer; a tunnel holds at most
	// two of them (three in base64 mode), and only while data moves. 0 means
	// 65543; values below MinBufferSize are raised to it.
	BufferSize int
	// PingInterval (websockify_ping_interval) is how long a tunnel may be
	// idle (no data either way) before the relay sends the client a ping
	// frame, and again after each unanswered ping; a client that answers
	// nothing is closed at ReadTimeout. 0 means no pings.
	PingInterval time.Duration
	// Server, when not empty, is the 101's Server header, in place of any
	// Server header of w.Header().
	Server string
	// Logger receives a debug record at tunnel end (kept only if debug is
	// enabled when the tunnel starts). nil means slog.Default().
	Logger *slog.Logger
	// DoneOnLoop says that ServeAsync's done neither blocks nor takes
	// long (counters, no access-log line): a tunnel on an event loop then
	// calls it on the loop as it ends, instead of handing it to another
	// goroutine (report.go).
	DoneOnLoop bool
	// Generation is the configuration the tunnel started under (any
	// number the caller chooses; 0 is one too): Tunnels.Retire closes one
	// generation's tunnels, as a reload's worker_shutdown_timeout closes
	// an old nginx worker's connections.
	Generation uint64
}

func (o Options) withDefaults() Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultTimeout
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = DefaultTimeout
	}
	if o.BufferSize <= 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.BufferSize < MinBufferSize {
		o.BufferSize = MinBufferSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Dialer opens the TCP (or unix) connection to the target. timeout bounds
// each connect attempt; ctx ends all of them. addr is the address actually
// connected (nginx's $upstream_addr), also reported on failure when known.
// An error that is a timeout (net.Error Timeout, os.ErrDeadlineExceeded or
// context.DeadlineExceeded) makes Serve answer 504, any other error 502.
// proxy/upstream implements it.
type Dialer interface {
	Dial(ctx context.Context, timeout time.Duration) (net.Conn, string, error)
}

// Result describes one request handled by Serve.
type Result struct {
	// Status is 101 when the tunnel ran; otherwise the status the caller
	// must answer with (400, 426, 500, 502, 503, 504); nothing was written.
	Status int
	// BytesSent counts bytes written to the client connection (101 response
	// and frames); BytesReceived counts WebSocket bytes read from it after
	// the request head.
	BytesSent, BytesReceived int64
	// UpstreamAddr is the target address connected or last tried.
	UpstreamAddr string
	// ConnectTime is how long the dial took.
	ConnectTime time.Duration
	// Err says why the handshake failed or why the tunnel ended; nil for a
	// normal end (either side closed, client close frame).
	Err error
}

// Errors reported in Result.Err; callers may branch on them with errors.Is.
var (
	ErrBadHandshake = errors.New("websockify: bad websocket handshake")
	ErrIdleTimeout  = errors.New("websockify: tunnel idle timeout")
	ErrSendTimeout  = errors.New("websockify: send timeout")
	ErrShutdown     = errors.New("websockify: server shutting down")
	ErrProtocol     = errors.New("websockify: websocket protocol error")
	ErrBadBase64    = errors.New("websockify: invalid base64 from client")
	// ErrInternal ends tunnels when the relay itself failed (a panic of an
	// event loop); the error text carries the panic and its stack.
	ErrInternal = errors.New("websockify: internal error")
)

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Serve relays one WebSocket request to the target d dials and returns when
// the tunnel has ended (see the package doc for who writes what). ts may be
// nil.
func Serve(w http.ResponseWriter, r *http.Request, d Dialer, o Options, ts *Tunnels) Result {
	var final Result
	t, res := start(w, r, d, o, ts, func(r Result) { final = r }, true)
	if t == nil {
		return res
	}
	if t.ev == nil {
		t.copyToBackend()
	}
	<-t.done
	return final
}

// ServeAsync is Serve that returns as soon as the tunnel runs: it returns
// the handshake's Result (Status 101, UpstreamAddr, ConnectTime, BytesSent of
// the 101) and later calls done, once, with the final Result from another
// goroutine. When the handshake fails it returns that Result and
// never calls done. Returning early frees the net/http handler goroutine and
// its request for the tunnel's lifetime, which roughly halves the memory of
// an idle tunnel.
func ServeAsync(w http.ResponseWriter, r *http.Request, d Dialer, o Options, ts *Tunnels, done func(Result)) Result {
	t, res := start(w, r, d, o, ts, done, false)
	if t != nil && t.ev == nil {
		go t.copyToBackend()
	}
	return res
}

// start does the handshake and starts the tunnel: on an event loop, or with
// copyFromBackend running and copyToBackend left to the caller (t.ev nil).
// It returns the tunnel and the handshake's Result, or nil and the failure.
func start(w http.ResponseWriter, r *http.Request, d Dialer, o Options, ts *Tunnels, onDone func(Result), wait bool) (*tunnel, Result) {
	o = o.withDefaults()
	proto, key, status, err := checkHandshake(w, r)
	if err != nil {
		return nil, Result{Status: status, Err: err}
	}
	if ts != nil && ts.closing.Load() {
		return nil, Result{Status: http.StatusServiceUnavailable, Err: ErrShutdown}
	}
	if ts != nil {
		ts.starting.Add(1)
		defer ts.starting.Add(-1)
	}

	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, Result{Status: http.StatusInternalServerError,
			Err: fmt.Errorf("websockify: %T cannot be hijacked (HTTP/2?)", w)}
	}

	// The event loop that will relay the tunnel makes the connect attempts
	// itself when d dials through Dial (proxy/upstream does).
	ctx := r.Context()
	var onLoop *tunnel
	var l *loop
	if ts != nil && !ts.noLoops {
		if l = loopOf(ctx); l == nil { // the client's, if it waited on one (Listener)
			l = ts.pick()
		}
	}
	if l != nil && l.reserve() == nil {
		onLoop = l.newTunnel()
		ctx = onLoop.withDial(ctx)
	}
	begin := nanotime() // one clock read where time.Now takes two
	target, addr, err := d.Dial(ctx, o.ConnectTimeout)
	connectTime := time.Duration(nanotime() - begin)
	if onLoop != nil {
		// Nothing reads the dial's context after Dial; it leads to the
		// request, its connection and their objects, which an idle tunnel
		// would otherwise keep for its whole life.
		onLoop.dctx = ctxval.Value{}
	}
	if onLoop != nil && !onLoop.dialled(target) {
		onLoop.ev.l.unreserve() // d dialled another way, or failed
		onLoop = nil
	}
	if err != nil {
		return nil, Result{Status: dialStatus(err), UpstreamAddr: addr, ConnectTime: connectTime, Err: err}
	}

	hb := headPool.Get().(*[]byte)
	head := appendResponseHead((*hb)[:0], w.Header(), key, proto, o.Server)
	client, br, err := hijack(w, hj)
	if err != nil {
		target.Close()
		return nil, Result{Status: http.StatusInternalServerError, UpstreamAddr: addr, ConnectTime: connectTime,
			Err: fmt.Errorf("websockify: hijack: %w", err)}
	}
	// Bytes the client sent after its request head (frames pipelined behind
	// the handshake) are still in net/http's reader.
	var early []byte
	if n := br.Buffered(); n > 0 {
		early, _ = br.Peek(n)
		early = append([]byte(nil), early...)
	}
	// net/http will not touch its bufio reader once the connection is
	// hijacked; dropping its buffer now keeps idle tunnels small while this
	// handler goroutine still references the conn. proxy/http1 takes its
	// reader back for the next connection.
	if rr, ok := w.(readerReleaser); ok {
		rr.ReleaseReader(br)
	} else {
		*br = bufio.Reader{}
	}

	t := newTunnel(onLoop, client, target, o, proto == "base64", ts)
	t.upstreamAddr, t.connectTime = addr, connectTime
	t.pending = early
	t.onDone = onDone
	if wait {
		t.done = make(chan struct{})
	}
	client.SetWriteDeadline(time.Now().Add(o.SendTimeout))
	n, err := client.Write(head)
	client.SetWriteDeadline(time.Time{})
	*hb = head[:0] // grown, if it was
	headPool.Put(hb)
	t.sent.Add(int64(n))
	if err != nil {
		client.Close()
		target.Close()
		return nil, Result{Status: http.StatusSwitchingProtocols, BytesSent: int64(n), UpstreamAddr: addr,
			ConnectTime: connectTime, Err: fmt.Errorf("websockify: writing 101: %w", err)}
	}
	if err := ts.prepare(t); err != nil {
		client.Close()
		target.Close()
		return nil, Result{Status: http.StatusSwitchingProtocols, BytesSent: t.sent.Load(), UpstreamAddr: addr,
			ConnectTime: connectTime, Err: err}
	}
	if t.ev == nil {
		t.onGoroutines()
	}
	res := Result{Status: http.StatusSwitchingProtocols, BytesSent: t.sent.Load(), UpstreamAddr: addr, ConnectTime: connectTime}
	if t.ev != nil {
		// Under the registry's lock, so that a Shutdown that sees t posts
		// its close to the loop after t's start.
		if ts.add(t, func() { t.ev.l.begin(t) }) {
			return t, res
		}
	} else if ts == nil || ts.add(t, nil) {
		t.arm()
		go t.copyFromBackend()
		return t, res
	}
	// Shutdown has begun.
	code := closeCode(ErrShutdown)
	if e := t.ev; e != nil {
		t.sent.Add(int64(e.discard(t, closeFrame(code))))
	} else {
		t.sendClose(code, "")
		client.Close()
		target.Close()
	}
	return nil, Result{Status: http.StatusSwitchingProtocols, BytesSent: t.sent.Load(), UpstreamAddr: addr,
		ConnectTime: connectTime, Err: ErrShutdown}
}

// readerHijacker is a ResponseWriter whose Hijack has a form without a
// buffered writer (proxy/http1's), which the relay does not use.
type readerHijacker interface {
	HijackReader() (net.Conn, *bufio.Reader, error)
}

// hijack takes the client's connection from w and the reader with what it
// sent after the request head.
func hijack(w http.ResponseWriter, hj http.Hijacker) (net.Conn, *bufio.Reader, error) {
	if rh, ok := w.(readerHijacker); ok {
		return rh.HijackReader()
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	*brw.Writer = bufio.Writer{} // not used: its buffer can go
	return c, brw.Reader, nil
}

// readerReleaser is a ResponseWriter that takes back the reader its Hijack
// handed over (proxy/http1's), once its buffered bytes were copied.
type readerReleaser interface {
	ReleaseReader(br *bufio.Reader)
}

// dialStatus maps a dial error to nginx's status: 504 for a timeout, else 502.
func dialStatus(err error) int {
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// checkHandshake validates the upgrade request and picks the subprotocol
// ("" for none offered, "binary" or "base64").
func checkHandshake(w http.ResponseWriter, r *http.Request) (proto, key string, status int, err error) {
	bad := func(format string, args ...any) (string, string, int, error) {
		return "", "", http.StatusBadRequest, fmt.Errorf("%w: "+format, append([]any{ErrBadHandshake}, args...)...)
	}
	if r.Method != http.MethodGet {
		return bad("method %s", r.Method)
	}
	if !r.ProtoAtLeast(1, 1) {
		return bad("%s", r.Proto)
	}
	if !hasToken(r.Header["Upgrade"], "websocket") {
		return bad(`no "Upgrade: websocket"`)
	}
	if !hasToken(r.Header["Connection"], "upgrade") {
		return bad(`no "Connection: upgrade"`)
	}
	if v := r.Header["Sec-Websocket-Version"]; len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return "", "", http.StatusUpgradeRequired, fmt.Errorf("%w: Sec-WebSocket-Version %q", ErrBadHandshake, v)
	}
	k := r.Header["Sec-Websocket-Key"]
	if len(k) != 1 {
		return bad("Sec-WebSocket-Key missing or repeated")
	}
	key = strings.TrimSpace(k[0])
	if !keyOf16(key) {
		return bad("Sec-WebSocket-Key %q", key)
	}
	offered, hasBinary, hasBase64 := false, false, false
	for _, line := range r.Header["Sec-Websocket-Protocol"] {
		for item := range strings.SplitSeq(line, ",") {
			item = strings.Trim(item, " \t")
			if item == "" {
				continue
			}
			offered = true
			switch item {
			case "binary":
				hasBinary = true
			case "base64":
				hasBase64 = true
			}
		}
	}
	switch {
	case !offered:
		proto = ""
	case hasBinary:
		proto = "binary"
	case hasBase64:
		proto = "base64"
	default:
		return bad("no binary or base64 in Sec-WebSocket-Protocol %q", r.Header["Sec-Websocket-Protocol"])
	}
	return proto, key, 0, nil
}

// keyOf16 reports whether key is the base64 of 16 bytes (24 bytes long: a
// header value holds no line break, which the decoder would skip).
func keyOf16(key string) bool {
	if len(key) != 24 {
		return false
	}
	var raw [18]byte
	n, err := base64.StdEncoding.Decode(raw[:], []byte(key))
	return err == nil && n == 16
}

// hasToken reports whether a comma-separated header holds token (case-insensitive).
func hasToken(lines []string, token string) bool {
	for _, line := range lines {
		for item := range strings.SplitSeq(line, ",") {
			if strings.EqualFold(strings.Trim(item, " \t"), token) {
				return true
			}
		}
	}
	return false
}

// acceptKey computes Sec-WebSocket-Accept for key.
func acceptKey(key string) string {
	return string(appendAcceptKey(nil, key))
}

// appendAcceptKey appends Sec-WebSocket-Accept for key to b. A key of a
// valid handshake (24 bytes) is hashed from the stack.
func appendAcceptKey(b []byte, key string) []byte {
	var in [24 + len(wsGUID)]byte
	var sum [sha1.Size]byte
	if len(key) == 24 {
		copy(in[copy(in[:], key):], wsGUID)
		sum = sha1.Sum(in[:])
	} else {
		sum = sha1.Sum([]byte(key + wsGUID))
	}
	return base64.StdEncoding.AppendEncode(b, sum[:])
}

// headPool keeps the buffers the 101 responses are rendered in.
var headPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// responseHead renders the 101 response with the caller's extra headers
// and server, the Server header ("": none but extra's).
func responseHead(extra http.Header, key, proto, server string) []byte {
	return appendResponseHead(make([]byte, 0, 256), extra, key, proto, server)
}

// appendResponseHead is responseHead appending to b.
func appendResponseHead(b []byte, extra http.Header, key, proto, server string) []byte {
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = appendAcceptKey(b, key)
	b = append(b, "\r\n"...)
	if proto != "" {
		b = append(b, "Sec-WebSocket-Protocol: "...)
		b = append(b, proto...)
		b = append(b, "\r\n"...)
	}
	if server != "" {
		b = append(b, "Server: "...)
		b = append(b, server...)
		b = append(b, "\r\n"...)
	}
	for name, values := range extra {
		switch http.CanonicalHeaderKey(name) {
		case "Upgrade", "Connection", "Content-Length", "Transfer-Encoding":
			continue
		case "Server":
			if server != "" {
				continue
			}
		}
		if strings.HasPrefix(http.CanonicalHeaderKey(name), "Sec-Websocket-") {
			continue
		}
		for _, v := range values {
			b = append(b, name...)
			b = append(b, ": "...)
			if strings.ContainsAny(v, "\r\n") {
				v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
			}
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	return append(b, "\r\n"...)
}
