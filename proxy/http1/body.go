package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// ErrBadChunk is the body error of a malformed chunked body (nginx: 400,
// "client sent invalid chunked body").
var ErrBadChunk = &Error{Status: 400, Msg: "client sent invalid chunked body"}

// body is a request body: Content-Length bytes, or chunks.
type body struct {
	c       *conn
	br      *bufio.Reader
	chunked bool
	left    int64 // bytes left: of the body, or of the current chunk
	done    bool
	err     error
	// expect: the client waits for "100 Continue" before it sends.
	expect bool
	// chunk framing state: the line end after a chunk's data is due
	// (needEnd); the last chunk was read and the trailer is being read.
	needEnd, trailer bool
	nonblock         bool // discardBuffered: stop where a line is incomplete
	// readTimeout, once set (SetReadTimeout), replaces client_body_timeout
	// and a read it ends leaves the body readable; cancelled ends reads
	// at once (CancelRead).
	readTimeout time.Duration
	cancelled   atomic.Bool
}

// SetReadTimeout makes each following read wait at most d for the client
// in place of client_body_timeout, and a read that times out leave the
// body readable, as ngx.req.socket's settimeout (a receive that timed out
// can be tried again).
func (b *body) SetReadTimeout(d time.Duration) { b.readTimeout = d }

// Continue sends "100 Continue" now if the client waits for it before it
// sends the body (ngx.req.socket() does so when it is called).
func (b *body) Continue() {
	if b.expect {
		b.expect = false
		b.c.sendContinue()
	}
}

// CancelRead ends the read that waits, and any later one, with a timeout
// error: the Lua thread that reads is gone (killed, or the request ended).
// It may be called from another goroutine.
func (b *body) CancelRead() {
	b.cancelled.Store(true)
	b.c.rdDirty.Store(true)
	b.c.rwc.SetReadDeadline(time.Unix(1, 0))
}

func (b *body) Read(p []byte) (int, error) {
	b.Continue()
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	if b.chunked && b.left == 0 {
		if err := b.nextChunk(); err != nil {
			if err != errWouldBlock {
				b.err = err
			}
			return 0, err
		}
		if b.done {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	if b.nonblock && b.br.Buffered() == 0 {
		return 0, errWouldBlock // the chunk's data has not come yet
	}
	if b.readTimeout > 0 {
		b.c.readDeadline(b.readTimeout)
	} else {
		b.c.readDeadline(b.c.params.BodyTimeout)
	}
	if b.cancelled.Load() {
		b.c.setReadDeadline(time.Unix(1, 0))
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	b.c.read += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if b.readTimeout > 0 && !b.cancelled.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err // settimeout's timeout: the client may still send
		}
		b.err = err
		return n, err
	}
	if b.left == 0 {
		if b.chunked {
			b.needEnd = true
		} else {
			b.done = true
		}
	}
	return n, nil
}

// errWouldBlock: discardBuffered reached bytes the client has not sent yet.
var errWouldBlock = errors.New("http1: would block")

// line reads one line of chunk framing, counting it.
func (b *body) line() ([]byte, error) {
	if b.nonblock {
		buf, _ := b.br.Peek(b.br.Buffered())
		if bytes.IndexByte(buf, '\n') < 0 {
			return nil, errWouldBlock
		}
	}
	b.c.readDeadline(b.c.params.BodyTimeout)
	l, err := b.br.ReadSlice('\n')
	b.c.read += int64(len(l))
	if err == bufio.ErrBufferFull {
		return nil, ErrBadChunk
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return trimEOL(l), nil
}

// peekByte returns the next byte of the body without reading it.
func (b *body) peekByte() (byte, error) {
	if b.nonblock && b.br.Buffered() == 0 {
		return 0, errWouldBlock
	}
	b.c.readDeadline(b.c.params.BodyTimeout)
	p, err := b.br.Peek(1)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	return p[0], nil
}

// nextChunk reads the line end after a chunk's data, then the next
// chunk-size line, and after the last chunk the trailer. It can stop where
// a line is incomplete (errWouldBlock) and go on from there.
func (b *body) nextChunk() error {
	if b.needEnd {
		l, err := b.line()
		if err != nil {
			return err
		}
		if len(l) != 0 {
			return ErrBadChunk
		}
		b.needEnd = false
	}
	if !b.trailer {
		// nginx refuses a chunk-size line at its first byte that is no
		// hex digit, without waiting for the line's end
		if first, err := b.peekByte(); err != nil {
			return err
		} else if _, ok := chunkSize([]byte{first}); !ok {
			return ErrBadChunk
		}
		l, err := b.line()
		if err != nil {
			return err
		}
		size, ok := chunkSize(l)
		if !ok {
			return ErrBadChunk
		}
		if size > 0 {
			b.left = size
			return nil
		}
		b.trailer = true
	}
	for {
		t, err := b.line()
		if err != nil {
			return err
		}
		if len(t) == 0 {
			b.done = true
			return nil
		}
		if bytes.IndexByte(t, '\r') >= 0 {
			return ErrBadChunk
		}
	}
}

// chunkSize reads a chunk-size line: hex digits, then optional blanks and
// an extension after ";".
func chunkSize(l []byte) (int64, bool) {
	var size int64
	i := 0
	for ; i < len(l); i++ {
		c := l[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			goto end
		}
		if size > (1<<62)/16 {
			return 0, false
		}
		size = size*16 + int64(d)
	}
end:
	if i == 0 {
		return 0, false
	}
	for ; i < len(l) && (l[i] == ' ' || l[i] == '\t'); i++ {
	}
	if i < len(l) && l[i] != ';' {
		return 0, false
	}
	return size, true
}

// discardBuffered drops the body bytes already received, stopping where
// reading on would wait for the client.
func (b *body) discardBuffered() error {
	var buf [512]byte
	// nginx does not count a discarded body in $request_length
	defer func(n int64) { b.c.read = n }(b.c.read)
	if b.expect {
		// nginx answers "Expect: 100-continue" when it discards too
		b.expect = false
		b.c.sendContinue()
	}
	for !b.done && b.err == nil {
		n := b.br.Buffered()
		if n == 0 {
			break
		}
		b.nonblock = true
		_, err := b.Read(buf[:min(n, len(buf))])
		b.nonblock = false
		if err == errWouldBlock {
			break
		}
	}
	return b.err
}

// Close leaves what is unread for the connection to discard.
func (b *body) Close() error { return nil }

// readDeadline lets the next reads wait d, keeping the deadline already
// set when it is close enough (lazyDeadline).
func (c *conn) readDeadline(d time.Duration) {
	if d <= 0 {
		return
	}
	now := monoNow()
	want := now + mono(d)
	if c.rdDirty.Load() {
		c.rdDirty.Store(false)
		c.rd.set = false
	}
	if !c.rd.keep(now, want, d) {
		c.rwc.SetReadDeadline(want.time())
		c.rd = lazyDeadline{at: want, set: true}
	}
}

// setReadDeadline sets the socket's read deadline, noting it.
func (c *conn) setReadDeadline(t time.Time) {
	c.rwc.SetReadDeadline(t)
	c.rd = lazyDeadline{at: monoOf(t), set: true}
}

// discard reads what is left of the body, bounded by limit bytes. It
// reports whether the body was read to its end (the connection can then
// serve another request).
func (b *body) discard(limit int64) bool {
	if b.done {
		return true
	}
	if b.err != nil || b.expect {
		return false
	}
	io.CopyN(io.Discard, b, limit)
	return b.done
}
