package websockify

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// headroom is the space kept before the data in every relay buffer: room for
// a server frame header (at most 10 bytes) in front of target data, and the
// slack that lets the client-frame parser compact payload in place.
const headroom = 16

// pools holds one *sync.Pool of *[]byte per buffer size.
var pools sync.Map

// buffersOut counts relay buffers taken from the pools and not given back:
// idle tunnels must hold none (TestIdleTunnelsHoldNoBuffers).
var buffersOut atomic.Int64

// bytesOut is the size of the buffers buffersOut counts.
var bytesOut atomic.Int64

func getBuf(p *sync.Pool) *[]byte {
	b := p.Get().(*[]byte)
	buffersOut.Add(1)
	bytesOut.Add(int64(len(*b)))
	return b
}

func putBuf(p *sync.Pool, b *[]byte) {
	buffersOut.Add(-1)
	bytesOut.Add(-int64(len(*b)))
	p.Put(b)
}

// poolFor returns the pool of buffers of size BufferSize+headroom.
func poolFor(bufferSize int) *sync.Pool {
	size := bufferSize + headroom
	if p, ok := pools.Load(size); ok {
		return p.(*sync.Pool)
	}
	p, _ := pools.LoadOrStore(size, &sync.Pool{New: func() any {
		b := make([]byte, size)
		return &b
	}})
	return p.(*sync.Pool)
}

// endpoint is one side of a tunnel. On Unix sockets that expose
// syscall.RawConn (rawio_unix.go) it reads with non-blocking syscalls so
// that no buffer is held while the goroutine waits for data, and writes
// without arming a deadline unless the write would block.
type endpoint struct {
	conn net.Conn
	rc   syscall.RawConn // nil: plain conn.Read / conn.Write

	// read state, owned by the one reading goroutine.
	readFn     func(uintptr) bool
	pool       *sync.Pool
	bp         *[]byte
	roff, rlim int
	rn         int
	rerr       error
	// write state, owned by whoever holds the side's write lock.
	writeFn func(uintptr) bool
	wbuf    []byte
	wn      int
	werr    error
}

func (e *endpoint) init(c net.Conn, pool *sync.Pool) {
	e.conn, e.pool = c, pool
}

// drop forgets the connection once an event loop relays its socket; only
// the buffer pool stays.
func (e *endpoint) drop() { *e = endpoint{pool: e.pool} }

// read reads into (*bp)[off:lim], taking the buffer from the pool when *bp
// is nil. On return *bp may be nil only if an error is returned. io.EOF
// means the peer closed its side.
func (e *endpoint) read(bp **[]byte, off, lim int) (int, error) {
	if e.rc == nil {
		if *bp == nil {
			*bp = getBuf(e.pool)
		}
		return e.conn.Read((**bp)[off:lim])
	}
	e.bp, e.roff, e.rlim = *bp, off, lim
	err := e.rc.Read(e.readFn)
	*bp, e.bp = e.bp, nil
	if err != nil {
		return 0, err
	}
	if e.rerr != nil {
		return 0, e.rerr
	}
	if e.rn == 0 {
		return 0, io.EOF
	}
	return e.rn, nil
}

// write writes all of p. A write that cannot complete at once waits at most
// timeout; then the error is ErrSendTimeout.
func (e *endpoint) write(p []byte, timeout time.Duration) (int, error) {
	total := 0
	if e.rc != nil {
		e.wbuf = p
		err := e.rc.Write(e.writeFn)
		e.wbuf = nil
		if err != nil {
			return 0, err
		}
		total, p = e.wn, p[e.wn:]
		if len(p) == 0 {
			return total, nil
		}
		if e.werr != nil && e.werr != syscall.EAGAIN {
			return total, os.NewSyscallError("write", e.werr)
		}
	}
	e.conn.SetWriteDeadline(time.Now().Add(timeout))
	n, err := e.conn.Write(p)
	total += n
	if e.rc != nil {
		// The fast path above fails on an expired deadline: clear it.
		e.conn.SetWriteDeadline(time.Time{})
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = ErrSendTimeout
	}
	return total, err
}
