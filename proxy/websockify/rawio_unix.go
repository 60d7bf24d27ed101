//go:build unix

package websockify

import (
	"net"
	"os"
	"syscall"
)

// initRaw lets the goroutine relay read and write c with non-blocking
// syscalls when c exposes its descriptor.
func (e *endpoint) initRaw(c net.Conn) {
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			e.rc = rc
			e.readFn = e.doRead
			e.writeFn = e.doWrite
		}
	}
}

// doRead is the RawConn.Read callback: one non-blocking read; on EAGAIN the
// buffer goes back to the pool before the goroutine parks.
func (e *endpoint) doRead(fd uintptr) bool {
	if e.bp == nil {
		e.bp = getBuf(e.pool)
	}
	n, err := readFd(int(fd), (*e.bp)[e.roff:e.rlim])
	switch err {
	case nil:
		e.rn, e.rerr = n, nil
		return true
	case syscall.EAGAIN:
		putBuf(e.pool, e.bp)
		e.bp = nil
		return false
	default:
		e.rn, e.rerr = 0, os.NewSyscallError("read", err)
		return true
	}
}

// doWrite is the RawConn.Write callback: one non-blocking write attempt.
func (e *endpoint) doWrite(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), e.wbuf)
		if err == syscall.EINTR {
			continue
		}
		if n < 0 {
			n = 0
		}
		e.wn, e.werr = n, err
		return true
	}
}

// readFd is read(2), retried on EINTR.
func readFd(fd int, p []byte) (int, error) {
	for {
		n, err := sysRead(fd, p)
		if err == syscall.EINTR {
			continue
		}
		return n, err
	}
}

// writeFd writes what fd takes now; EAGAIN is not an error.
func writeFd(fd int, p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		n, err := sysWrite(fd, p)
		switch err {
		case nil:
			total += n
			p = p[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return total, nil
		default:
			return total, os.NewSyscallError("write", err)
		}
	}
	return total, nil
}
