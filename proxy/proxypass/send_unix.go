//go:build unix

package proxypass

import (
	"net"
	"syscall"

	"ngxsockify/netpeek"
)

// Sender writes a request to a backend connection and waits for the
// answer without the read that fails first: Go's poller learns that a
// socket is readable only from a read that found nothing (EAGAIN), where
// nginx's epoll already knows. Send writes from inside a RawConn.Read,
// which forgets the socket's past readiness before it calls back and
// waits after: the answer's readiness, which comes after the write,
// cannot be lost, and the read that follows finds the answer. One Sender
// serves a request's exchanges in turn; its zero value is ready.
type Sender struct {
	conn net.Conn
	rc   syscall.RawConn // conn's; nil: not a socket of its own
	out  []byte
	n    int  // of out written
	done bool // the write is over (whole, or to be finished the ordinary way)
	// check: look first whether the connection is still open and quiet;
	// stale: it was not
	check, stale bool
	// in: where the answer's first bytes go once the socket is readable
	// (Exchange); got of them came
	in   []byte
	got  int
	step func(fd uintptr) bool
}

// Send writes p to c and waits, until c's read deadline, for c to be
// readable. It returns how much of p it wrote: the caller writes the rest
// the ordinary way (the socket's buffer was full, the write failed, which
// the ordinary write reports, or c is not a plain socket: TLS). When it
// wrote all of p, err is the wait's (os.ErrDeadlineExceeded once the read
// deadline passed, with nothing to read yet), nil once c is readable.
//
// With check, c is an idle connection taken from a pool: Send first looks
// whether the peer has closed it or written to it meanwhile, and then
// returns ErrStale with nothing written. It looks after the poller forgot
// the socket's readiness, so a close that comes later still ends the wait.
func (s *Sender) Send(c net.Conn, p []byte, check bool) (int, error) {
	n, _, err := s.Exchange(c, p, nil, check)
	return n, err
}

// Exchange is Send that also reads, once c is readable, the answer's
// first bytes into in, in the same step (no read of the poller's of its
// own: its lock, its readiness reset, a syscall entered and left): got
// bytes of in hold them. It reads only after writing all of p; got is 0
// when c was readable with nothing to give (an end or an error, which the
// caller's read reports).
func (s *Sender) Exchange(c net.Conn, p, in []byte, check bool) (sent, got int, err error) {
	if c != s.conn {
		s.conn, s.rc = c, nil
		if sc, ok := c.(*net.TCPConn); ok {
			s.rc, _ = sc.SyscallConn()
		} else if uc, ok := c.(*net.UnixConn); ok {
			s.rc, _ = uc.SyscallConn()
		}
	}
	if s.rc == nil || len(p) == 0 {
		if check && !netpeek.Alive(c) {
			return 0, 0, ErrStale
		}
		return 0, 0, nil
	}
	if s.step == nil {
		s.step = s.stepFD
	}
	s.out, s.n, s.done, s.check, s.stale = p, 0, false, check, false
	s.in, s.got = in, 0
	err = s.rc.Read(s.step)
	s.out, s.in = nil, nil
	if !s.done && check {
		// no callback: the read deadline had passed (or the connection
		// was closed here). The caller writes the ordinary way, whose
		// read sees a close: a look as the pool's will do.
		s.rc.Control(func(fd uintptr) { s.stale = stale(fd) })
	}
	if s.stale {
		return 0, 0, ErrStale
	}
	if s.n < len(p) {
		return s.n, 0, nil
	}
	return s.n, s.got, err
}

// stepFD is the RawConn.Read callback: the first call writes, and waits
// (false) if the write was whole; the next one finds the socket readable
// and reads into in, if any.
func (s *Sender) stepFD(fd uintptr) bool {
	if s.done {
		return s.read(int(fd))
	}
	s.done = true
	if s.check && stale(fd) {
		s.stale = true
		return true
	}
	for s.n < len(s.out) {
		n, e := sysWrite(int(fd), s.out[s.n:])
		if e == syscall.EINTR {
			continue
		}
		if e != 0 || n <= 0 {
			return true // EAGAIN or a failure: the ordinary write goes on
		}
		s.n += n
	}
	return false
}

// read reads the answer's first bytes into in once the socket is readable;
// false: it was not after all (the wait goes on).
func (s *Sender) read(fd int) bool {
	if len(s.in) == 0 {
		return true
	}
	for {
		n, e := sysRead(fd, s.in)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return false
		case e == 0 && n > 0:
			s.got = n
		}
		return true // an end or an error: the caller's read reports it
	}
}

// stale reports whether the peer of an idle socket has closed it (a read
// would give 0), reset it, or written to it: a peek that does not wait
// finds anything but EAGAIN.
func stale(fd uintptr) bool {
	_, e := sysPeek(int(fd))
	return e != syscall.EAGAIN && e != syscall.EWOULDBLOCK
}
