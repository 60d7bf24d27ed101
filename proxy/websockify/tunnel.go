package websockify

import (
	"context"
	"encoding/base64"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"ngxsockify/proxy/internal/ctxval"
)

// maxRecordPlaintext is the most plaintext one TLS record carries (RFC 8446
// section 5.1), so the most one (*tls.Conn).Read returns.
const maxRecordPlaintext = 16384

// epoch anchors the monotonic activity clock.
var epoch = time.Now()

func nanotime() int64 { return int64(time.Since(epoch)) }

// tunnel is one relayed WebSocket connection.
type tunnel struct {
	client, target endpoint
	o              Options
	b64            bool
	raw            bool // an upgraded connection (Relay): bytes as they are, no frames
	pool           *sync.Pool
	clientRead     int // most bytes one client read asks for (client.pool's buffers hold headroom more)
	ts             *Tunnels

	wmu       sync.Mutex // serialises writes to the client
	closeSent bool       // guarded by wmu
	ending    atomic.Bool
	live      atomic.Int32
	last      atomic.Int64 // nanotime of the last data read
	pinged    atomic.Int64 // nanotime of the last ping sent to the client
	idle      *time.Timer

	sent, recv atomic.Int64

	errMu sync.Mutex
	err   error

	upstreamAddr string
	connectTime  time.Duration
	pending      []byte // client bytes read by net/http before the hijack

	done   chan struct{} // closed at the end (Serve), after onDone
	onDone func(Result)  // called at the end

	p parser // client frame parser, owned by copyToBackend

	ev   *evTunnel    // non-nil: an event loop relays the tunnel (evloop.go)
	dctx ctxval.Value // the context start's Dial has (withDial)

	prev, next *tunnel // in ts.live
}

// newTunnel sets up the tunnel of client and target: t, whose target an
// event loop dialled (start), or a new one when t is nil.
func newTunnel(t *tunnel, client, target net.Conn, o Options, b64 bool, ts *Tunnels) *tunnel {
	if !o.Logger.Enabled(context.Background(), slog.LevelDebug) {
		o.Logger = nil // keep no per-request logger for the tunnel's lifetime
	}
	if t == nil {
		t = &tunnel{}
	}
	t.o, t.b64, t.pool, t.ts = o, b64, poolFor(o.BufferSize), ts
	t.client.init(client, t.pool)
	t.target.init(target, t.pool)
	t.clientRead = o.BufferSize
	return t
}

// onGoroutines readies the endpoints for the goroutine relay, once an
// event loop did not take t: the non-blocking reads and writes of
// rawio_unix.go where the sockets allow them. (Not before: asking a
// Listener's connection for its RawConn puts it in Go's netpoller, and an
// event loop would then have to duplicate it.)
func (t *tunnel) onGoroutines() {
	t.client.initRaw(t.client.conn)
	t.target.initRaw(t.target.conn)
	if t.client.rc == nil && t.o.BufferSize > maxRecordPlaintext {
		// A TLS client's blocked Read holds its buffer, and one Read
		// returns at most one record: a bigger buffer is never filled.
		t.clientRead = maxRecordPlaintext
		t.client.pool = poolFor(maxRecordPlaintext)
	}
}

// arm starts the idle clock; both copiers must be started after it.
func (t *tunnel) arm() {
	t.live.Store(2)
	t.last.Store(nanotime())
	// Create the timer stopped, then arm it, so that checkIdle never runs
	// before t.idle is set.
	t.idle = time.AfterFunc(time.Duration(math.MaxInt64), t.checkIdle)
	t.idle.Reset(time.Duration(t.wakeAt() - nanotime()))
}

func (t *tunnel) touch() { t.last.Store(nanotime()) }

// checkIdle runs from the idle timer: it ends an idle tunnel, or pings
// the client when due and re-arms for the time left.
func (t *tunnel) checkIdle() {
	if t.live.Load() == 0 {
		return
	}
	now := nanotime()
	if now >= t.idleDeadline() {
		t.idleTimedOut()
		return
	}
	t.pingIfDue(now)
	if !t.ending.Load() {
		t.idle.Reset(time.Duration(t.wakeAt() - now))
	}
}

func (t *tunnel) setErr(err error) {
	if err == nil {
		return
	}
	t.errMu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.errMu.Unlock()
}

func (t *tunnel) cause() error {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	return t.err
}

// sendClose sends a close frame with code unless one was sent already.
func (t *tunnel) sendClose(code int, _ string) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.closeSent {
		return
	}
	t.closeSent = true
	if t.raw {
		return // no frames on an upgraded connection
	}
	n, _ := t.writeClient(closeFrame(code), t.closeSendWait())
	t.sent.Add(int64(n))
}

// closeFrame returns a close frame with status code.
func closeFrame(code int) []byte {
	return []byte{0x88, 2, byte(code >> 8), byte(code)}
}

// writeClient writes p to the client, the caller holding t.wmu. On an event
// loop it never blocks: what the socket does not take waits in a queue.
func (t *tunnel) writeClient(p []byte, timeout time.Duration) (int, error) {
	if e := t.ev; e != nil {
		return e.writeClient(t, p)
	}
	return t.client.write(p, timeout)
}

// writeTarget writes p to the target, like writeClient.
func (t *tunnel) writeTarget(p []byte) error {
	if e := t.ev; e != nil {
		return e.writeTarget(t, p)
	}
	_, err := t.target.write(p, t.o.SendTimeout)
	return err
}

// closeWith ends the tunnel from any goroutine: it records cause, sends a
// close frame with code (code 0: none), closes the target and then either
// closes the client (graceful false) or gives it closeGrace to answer the
// close frame (copyToBackend then closes it).
func (t *tunnel) closeWith(code int, cause error, graceful bool) {
	if t.raw {
		code, graceful = 0, false // no close handshake to wait for
	}
	if t.ev != nil {
		t.ev.l.closeWith(t, code, cause, graceful)
		return
	}
	t.setErr(cause)
	t.ending.Store(true)
	if code != 0 {
		t.sendClose(code, "")
	}
	t.target.conn.Close()
	if graceful {
		t.client.conn.SetReadDeadline(time.Now().Add(t.closeGraceWait()))
	} else {
		t.client.conn.Close()
	}
}

// closeAsync is closeWith for callers outside the tunnel's goroutines.
func (t *tunnel) closeAsync(code int, cause error, graceful bool) {
	if e := t.ev; e != nil {
		e.l.post(func() { e.l.closeWith(t, code, cause, graceful) })
		return
	}
	go t.closeWith(code, cause, graceful)
}

// kill ends the tunnel at once for cause, without a close frame: Shutdown
// does it to the tunnels left when its context ends.
func (t *tunnel) kill(cause error) {
	t.setErr(cause)
	if e := t.ev; e != nil {
		e.l.post(func() { e.l.finish(t) })
		return
	}
	t.ending.Store(true)
	t.client.conn.Close()
	t.target.conn.Close()
}

// exit is called by each copier when it returns; the last one finishes the tunnel.
func (t *tunnel) exit() {
	if t.live.Add(-1) != 0 {
		return
	}
	t.idle.Stop()
	t.client.conn.Close()
	t.target.conn.Close()
	t.end()
}

// end reports the end of the tunnel, its sockets closed: at once, or for
// a tunnel on an event loop (unless Serve waits for it), on another
// goroutine after the loop's round (the loop must not wait for the
// caller's logging).
func (t *tunnel) end() {
	if t.o.Logger != nil {
		res := t.result()
		t.o.Logger.Debug("websockify tunnel closed", "upstream", t.upstreamAddr,
			"sent", res.BytesSent, "received", res.BytesReceived, "err", res.Err)
	}
	if t.ev != nil && t.done == nil {
		t.ev.l.ended = append(t.ev.l.ended, t)
		return
	}
	t.report()
}

// result is the Result of an ended tunnel.
func (t *tunnel) result() Result {
	return Result{Status: http.StatusSwitchingProtocols, BytesSent: t.sent.Load(), BytesReceived: t.recv.Load(),
		UpstreamAddr: t.upstreamAddr, ConnectTime: t.connectTime, Err: t.cause()}
}

// report gives the caller the Result of the ended tunnel. The tunnel
// leaves its Tunnels only after onDone returns, so that Shutdown also
// waits for the caller's last words (its access-log line).
func (t *tunnel) report() {
	if t.onDone != nil {
		t.onDone(t.result())
	}
	if t.ts != nil {
		t.ts.remove(t)
	}
	if t.done != nil {
		close(t.done)
	}
}

// copyFromBackend relays target bytes to the client, one frame per read.
func (t *tunnel) copyFromBackend() {
	defer t.exit()
	var bp *[]byte
	defer func() {
		if bp != nil {
			putBuf(t.pool, bp)
		}
	}()
	limit := headroom + t.targetReadSize()
	for {
		n, err := t.target.read(&bp, headroom, limit)
		if n > 0 && t.fromTarget(*bp, n) {
			return
		}
		if err != nil {
			t.targetEnded(err)
			return
		}
	}
}

// toClient frames buf[headroom:headroom+n] and writes it to the client.
func (t *tunnel) toClient(buf []byte, n int) error {
	var frame []byte
	var ob *[]byte
	if t.raw {
		frame = buf[headroom : headroom+n]
	} else if t.b64 {
		ob = getBuf(t.pool)
		m := base64.StdEncoding.EncodedLen(n)
		base64.StdEncoding.Encode((*ob)[headroom:], buf[headroom:headroom+n])
		start := putHeader((*ob)[:headroom], opText, m)
		frame = (*ob)[start : headroom+m]
	} else {
		start := putHeader(buf[:headroom], opBinary, n)
		frame = buf[start : headroom+n]
	}
	t.wmu.Lock()
	var err error
	if t.closeSent {
		err = net.ErrClosed
	} else {
		var w int
		w, err = t.writeClient(frame, t.o.SendTimeout)
		t.sent.Add(int64(w))
	}
	t.wmu.Unlock()
	if ob != nil {
		putBuf(t.pool, ob)
	}
	return err
}

// putHeader writes an unmasked FIN frame header for n payload bytes so that
// it ends at len(dst) and returns where it starts.
func putHeader(dst []byte, op byte, n int) int {
	end := len(dst)
	switch {
	case n <= 125:
		dst[end-2], dst[end-1] = 0x80|op, byte(n)
		return end - 2
	case n <= 0xffff:
		dst[end-4], dst[end-3] = 0x80|op, 126
		dst[end-2], dst[end-1] = byte(n>>8), byte(n)
		return end - 4
	default:
		s := end - 10
		dst[s], dst[s+1] = 0x80|op, 127
		v := uint64(n)
		for i := 9; i >= 2; i-- {
			dst[s+i] = byte(v)
			v >>= 8
		}
		return s
	}
}

// copyToBackend relays client frames to the target and answers control frames.
func (t *tunnel) copyToBackend() {
	defer t.exit()
	var bp *[]byte
	defer func() {
		if bp != nil {
			putBuf(t.client.pool, bp)
		}
		// The client's side is over: the target read that these closes
		// end is not the tunnel's cause.
		t.ending.Store(true)
		t.target.conn.Close()
		t.client.conn.Close()
	}()
	limit := headroom + t.clientRead
	for {
		var n int
		var err error
		if len(t.pending) > 0 {
			if bp == nil {
				bp = getBuf(t.client.pool)
			}
			n = t.takePending((*bp)[headroom:limit])
		} else {
			n, err = t.client.read(&bp, headroom, limit)
		}
		if n > 0 && t.clientData(*bp, n) {
			return
		}
		if err != nil {
			t.clientGone(err)
			return
		}
	}
}
