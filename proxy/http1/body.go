package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
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
}

func (b *body) Read(p []byte) (int, error) {
	if b.expect {
		b.expect = false
		b.c.sendContinue()
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	if b.chunked && b.left == 0 {
		if err := b.nextChunk(); err != nil {
			b.err = err
			return 0, err
		}
		if b.done {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	b.c.readDeadline(b.c.params.BodyTimeout)
	n, err := b.br.Read(p)
	b.left -= int64(n)
	b.c.read += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
		return n, err
	}
	if b.left == 0 {
		if b.chunked {
			if e := b.chunkEnd(); e != nil {
				b.err = e
				return n, nil
			}
		} else {
			b.done = true
		}
	}
	return n, nil
}

// line reads one line of chunk framing, counting it.
func (b *body) line() ([]byte, error) {
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

// nextChunk reads a chunk-size line (and the trailer after the last chunk).
func (b *body) nextChunk() error {
	l, err := b.line()
	if err != nil {
		return err
	}
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
			return ErrBadChunk
		}
		size = size*16 + int64(d)
	}
end:
	if i == 0 {
		return ErrBadChunk
	}
	for ; i < len(l) && (l[i] == ' ' || l[i] == '\t'); i++ {
	}
	if i < len(l) && l[i] != ';' {
		return ErrBadChunk
	}
	if size == 0 {
		for {
			t, err := b.line()
			if err != nil {
				return err
			}
			if len(t) == 0 {
				break
			}
		}
		b.done = true
		return nil
	}
	b.left = size
	return nil
}

// chunkEnd reads the line end after a chunk's data.
func (b *body) chunkEnd() error {
	l, err := b.line()
	if err != nil {
		return err
	}
	if len(l) != 0 {
		return ErrBadChunk
	}
	return nil
}

// discard reads what is left of the body, bounded by limit bytes. It
// reports whether the body was read to its end.
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

// discardBuffered drops the body bytes already received, stopping where
// reading on would wait for the client.
func (b *body) discardBuffered() error {
	var buf [512]byte
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
		if b.chunked && b.left == 0 {
			if p, _ := b.br.Peek(n); bytes.IndexByte(p, '\n') < 0 {
				break
			}
		}
		b.Read(buf[:min(n, len(buf))])
	}
	if b.err == io.EOF {
		return nil
	}
	return b.err
}

// Close leaves what is unread for the connection to discard.
func (b *body) Close() error { return nil }

func (c *conn) readDeadline(d time.Duration) {
	if d > 0 {
		c.rwc.SetReadDeadline(time.Now().Add(d))
	}
}
