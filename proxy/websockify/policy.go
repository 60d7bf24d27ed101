package websockify

import (
	"errors"
	"io"
	"time"
)

// The relay's rules. A tunnel runs on one of two engines, an event loop
// (evloop_linux.go) or the goroutine relay (tunnel.go); each moves bytes
// its own way, but what a read, a failed write or a timeout means is
// decided here, for both, so that changing a rule cannot leave one engine
// behind. frame.go (the client's frames, pings and close frames) is shared
// by both engines too.

// closeCode is the status of the close frame that ends a tunnel for cause:
// nil (the target closed its side) is a normal closure, the idle timeout
// and a shutdown are "going away", a client's protocol error and invalid
// base64 have their own codes, and anything else (a failed read from or
// write to the target, a send timeout towards it) is an internal error.
func closeCode(cause error) int {
	switch {
	case cause == nil:
		return CloseNormalClosure
	case errors.Is(cause, ErrIdleTimeout), errors.Is(cause, ErrShutdown):
		return CloseGoingAway
	case errors.Is(cause, ErrProtocol):
		return CloseProtocolError
	case errors.Is(cause, ErrBadBase64):
		return CloseInvalidFramePayloadData
	}
	return CloseInternalError
}

// closeFor ends the tunnel for cause with the close frame closeCode gives.
// graceful: the client gets closeGraceWait to answer the close frame.
func (t *tunnel) closeFor(cause error, graceful bool) {
	t.closeWith(closeCode(cause), cause, graceful)
}

// closeGrace is how long the relay waits for the client's close frame after
// sending its own, before it closes the socket.
const closeGrace = 2 * time.Second

// closeGraceWait is how long a graceful close waits for the client's close
// frame; the idle timeout bounds it too.
func (t *tunnel) closeGraceWait() time.Duration { return min(closeGrace, t.o.ReadTimeout) }

// closeSendWait is how long a close frame may take to reach the client.
func (t *tunnel) closeSendWait() time.Duration { return min(closeGrace, t.o.SendTimeout) }

// idleDeadline is the nanotime at which the tunnel is idle: ReadTimeout
// after data last moved in either direction.
func (t *tunnel) idleDeadline() int64 { return t.last.Load() + int64(t.o.ReadTimeout) }

// idleTimedOut ends a tunnel that reached its idleDeadline.
func (t *tunnel) idleTimedOut() { t.closeFor(ErrIdleTimeout, true) }

// pingDeadline is the nanotime at which the tunnel pings its client:
// PingInterval after data last moved in either direction or after the last
// ping, whichever is later; 0 when PingInterval is off. A pong is data from
// the client, so an answering client is pinged again PingInterval after
// its pong, and one that never answers meets idleDeadline (ReadTimeout
// after its last data) and is closed with CloseGoingAway.
func (t *tunnel) pingDeadline() int64 {
	if t.o.PingInterval <= 0 {
		return 0
	}
	return max(t.last.Load(), t.pinged.Load()) + int64(t.o.PingInterval)
}

// wakeAt is when the tunnel's timer must next fire: at its idleDeadline or
// its pingDeadline, whichever comes first.
func (t *tunnel) wakeAt() int64 {
	next := t.idleDeadline()
	if p := t.pingDeadline(); p != 0 {
		next = min(next, p)
	}
	return next
}

// pingIfDue sends a ping frame (no payload) to the client when its
// pingDeadline has passed at now. Sending it does not count as activity.
func (t *tunnel) pingIfDue(now int64) {
	if p := t.pingDeadline(); p != 0 && now >= p && !t.ending.Load() {
		t.pinged.Store(now)
		t.sendControl(opPing, nil)
	}
}

// targetReadSize is the most one read from the target takes: what fills a
// frame of BufferSize payload bytes, less in base64 mode, where three bytes
// become four.
func (t *tunnel) targetReadSize() int {
	if t.b64 {
		return t.o.BufferSize / 4 * 3
	}
	return t.o.BufferSize
}

// fromTarget relays n bytes read from the target (buf[headroom:]) to the
// client; it reports whether the tunnel is over because the write failed.
func (t *tunnel) fromTarget(buf []byte, n int) (stop bool) {
	t.touch()
	if err := t.toClient(buf, n); err != nil {
		t.clientWriteFailed(err)
		return true
	}
	return false
}

// targetEnded ends the tunnel when a read from the target returned err:
// io.EOF (the target closed its side) closes normally, anything else with
// an internal error; either way the client may answer the close frame.
func (t *tunnel) targetEnded(err error) {
	if t.ending.Load() {
		return
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	t.closeFor(err, true)
}

// targetWriteFailed ends the tunnel after a failed write to the target (an
// error or ErrSendTimeout) unless it is ending already.
func (t *tunnel) targetWriteFailed(err error) {
	if !t.ending.Load() {
		t.closeFor(err, false)
	}
}

// clientWriteFailed ends the tunnel after a failed write to the client (an
// error or ErrSendTimeout), without a close frame, which could not reach
// the client either, unless it is ending already.
func (t *tunnel) clientWriteFailed(err error) {
	if !t.ending.Load() {
		t.closeWith(0, err, false)
	}
}

// clientData hands n bytes read from the client (buf[headroom:]) to the
// frame parser; it reports whether the tunnel is over.
func (t *tunnel) clientData(buf []byte, n int) (stop bool) {
	t.recv.Add(int64(n))
	t.touch()
	if t.raw {
		if err := t.writeTarget(buf[headroom : headroom+n]); err != nil {
			t.targetWriteFailed(err)
			return true
		}
		return false
	}
	return t.fromClient(buf, headroom, headroom+n)
}

// clientGone records why reading the client ended: io.EOF (the client went
// away) is a normal end, and so is any error once the tunnel is ending
// (the client did not answer the close frame in time, say); another error
// is the tunnel's cause.
func (t *tunnel) clientGone(err error) {
	if !t.ending.Load() && !errors.Is(err, io.EOF) {
		t.setErr(err)
	}
}

// takePending moves client bytes that came with the handshake into p; a
// tunnel parses them before it reads the client.
func (t *tunnel) takePending(p []byte) int {
	n := copy(p, t.pending)
	t.pending = t.pending[n:]
	if len(t.pending) == 0 {
		t.pending = nil
	}
	return n
}
