package websockify

import (
	"container/heap"
	"context"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// A target connect on the event loop (Dial). The handshake's goroutine
// creates the socket and starts the connect with raw, non-blocking system
// calls; the loop registers the socket in its epoll set for good (the
// tunnel's later events come through the same registration), learns the
// outcome from EPOLLOUT (EPOLLERR: SO_ERROR says why), and times the
// attempt out with its timer heap. The handshake's goroutine waits for the
// verdict on a channel. Against net.Dialer followed by the loop's dup of
// the descriptor, a connect costs no netpoller registration and removal,
// no getsockname/getpeername, no dup and no second close.
//
// Between the verdict and the start of the tunnel (begin, or discard if the
// handshake fails later), the socket belongs to the loop: the tunnel's
// events only set its readiness flags, and the socket is closed only by
// the loop, so that its number cannot be reused under a stale entry of
// l.byFd. A connect that completes within connect() itself (loopback) is
// not registered until the tunnel starts (add), so that the handshake
// costs no extra wake-up of the loop; the socket is still closed only by
// the loop (drop), and it has no l.byFd entry meanwhile.

// dialState is one connect attempt of an early tunnel (t.ev.dial).
type dialState struct {
	deadline  int64      // nanotime
	done      chan error // the verdict, sent once
	connected bool       // sent nil: the socket waits for the tunnel
}

// dial makes the connect attempt of Dial for t's tunnel on l; ok is false
// when the address is not one it can connect to itself (a host name).
func (l *loop) dial(ctx context.Context, t *tunnel, network, address string, timeout time.Duration) (c net.Conn, err error, ok bool) {
	sa, salen, family, raddr := sockaddrOf(network, address)
	if raddr == nil {
		return nil, nil, false
	}
	fail := func(err error) (net.Conn, error, bool) {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: err}, true
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	fd, errno := sockcall(sysSocket, uintptr(family), syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0, 0)
	if errno != 0 {
		return fail(os.NewSyscallError("socket", errno))
	}
	if family != syscall.AF_UNIX {
		one := int32(1)
		sockcall(sysSetsockopt, fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, uintptr(unsafe.Pointer(&one)), 4)
	}
	_, errno = sockcall(sysConnect, fd, uintptr(sa), uintptr(salen), 0, 0)
	switch errno {
	case 0, syscall.EINPROGRESS, syscall.EINTR, syscall.EALREADY:
		// Connected at once (unix) or under way: the loop finds out which.
	default:
		sysClose(int(fd))
		return fail(os.NewSyscallError("connect", errno))
	}
	e := t.ev
	e.tfd, e.dial = int(fd), nil // nil: not the state of a failed attempt before
	if errno == 0 || writable(int(fd)) {
		// Connected already: on loopback the whole TCP handshake runs
		// within connect(). Nothing to tell the loop yet: it registers
		// the socket when the tunnel starts (add), or closes it (drop),
		// which saves a wake-up of the loop per handshake.
		return e.targetConn(t, raddr), nil, true
	}
	d := &dialState{deadline: nanotime() + int64(timeout), done: make(chan error, 1)}
	e.dial = d
	l.post(func() { l.watch(t) })
	select {
	case err = <-d.done:
	case <-ctx.Done():
		l.post(func() {
			if e.dial == d {
				l.dialDone(t, ctx.Err())
			}
		})
		err = <-d.done
	}
	if err != nil {
		if err != os.ErrDeadlineExceeded && err != context.Canceled && err != context.DeadlineExceeded {
			err = os.NewSyscallError("connect", err)
		}
		return fail(err)
	}
	return e.targetConn(t, raddr), nil, true
}

// tcpSockaddrs caches sockaddrOf's answers for "tcp" addresses (the
// targets of a server are few and dialled again and again), up to
// maxTCPSockaddrs of them; their values are read only.
var (
	tcpSockaddrs    sync.Map // address -> *sockaddr
	tcpSockaddrsLen atomic.Int32
	maxTCPSockaddrs int32 = 1024
)

type sockaddr struct {
	sa     unsafe.Pointer
	salen  uint32
	family int
	raddr  net.Addr
}

// sockaddrOf returns the raw socket address of a "tcp" IP:port or a
// "unix" path, with its length, family and net.Addr; raddr is nil for
// anything else (a host name).
func sockaddrOf(network, address string) (sa unsafe.Pointer, salen uint32, family int, raddr net.Addr) {
	if network != "tcp" {
		return parseSockaddr(network, address)
	}
	if v, ok := tcpSockaddrs.Load(address); ok {
		a := v.(*sockaddr)
		return a.sa, a.salen, a.family, a.raddr
	}
	sa, salen, family, raddr = parseSockaddr(network, address)
	if raddr != nil && tcpSockaddrsLen.Load() < maxTCPSockaddrs {
		if _, loaded := tcpSockaddrs.LoadOrStore(address, &sockaddr{sa, salen, family, raddr}); !loaded {
			tcpSockaddrsLen.Add(1)
		}
	}
	return sa, salen, family, raddr
}

// parseSockaddr is sockaddrOf without the cache.
func parseSockaddr(network, address string) (sa unsafe.Pointer, salen uint32, family int, raddr net.Addr) {
	switch network {
	case "unix":
		if len(address) == 0 || len(address) >= len(syscall.RawSockaddrUnix{}.Path) {
			return nil, 0, 0, nil
		}
		var su syscall.RawSockaddrUnix
		su.Family = syscall.AF_UNIX
		for i := range len(address) {
			su.Path[i] = int8(address[i])
		}
		if address[0] == '@' {
			su.Path[0] = 0 // abstract socket, as Go names it
		}
		n := uint32(unsafe.Offsetof(su.Path)) + uint32(len(address))
		if address[0] != '@' {
			n++ // the terminating NUL of a path
		}
		return unsafe.Pointer(&su), n, syscall.AF_UNIX, &net.UnixAddr{Name: address, Net: "unix"}
	case "tcp", "tcp4", "tcp6":
		ap, err := netip.ParseAddrPort(address)
		if err != nil || ap.Addr().Zone() != "" {
			return nil, 0, 0, nil
		}
		a := ap.Addr().Unmap()
		raddr = net.TCPAddrFromAddrPort(ap)
		port := ap.Port()
		if a.Is4() {
			s4 := &syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: a.As4()}
			p := (*[2]byte)(unsafe.Pointer(&s4.Port))
			p[0], p[1] = byte(port>>8), byte(port)
			return unsafe.Pointer(s4), syscall.SizeofSockaddrInet4, syscall.AF_INET, raddr
		}
		s6 := &syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: a.As16()}
		p := (*[2]byte)(unsafe.Pointer(&s6.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		return unsafe.Pointer(s6), syscall.SizeofSockaddrInet6, syscall.AF_INET6, raddr
	}
	return nil, 0, 0, nil
}

// writable reports whether a connecting socket is connected: writable
// and no error (poll with a zero timeout).
func writable(fd int) bool {
	pfd := struct {
		fd             int32
		events, revent int16
	}{fd: int32(fd), events: 0x4} // POLLOUT
	var ts syscall.Timespec
	n, _, errno := syscall.RawSyscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	return errno == 0 && n == 1 && pfd.revent == 0x4
}

// watch registers the socket of t's connect in the epoll set; it runs on
// the loop. The registration stays for the tunnel's lifetime.
func (l *loop) watch(t *tunnel) {
	e := t.ev
	if e.tfd < 0 {
		return // dropped (the handshake failed) before this ran
	}
	l.setFd(e.tfd, t)
	ev := syscall.EpollEvent{Events: epollFlags, Fd: int32(e.tfd)}
	if err := epollCtl(l.epfd, syscall.EPOLL_CTL_ADD, e.tfd, &ev); err != nil {
		l.dialDone(t, err)
		return
	}
	l.schedule(t, e.dial.deadline)
}

// dialEvent handles an event of t's target socket before the tunnel runs.
func (l *loop) dialEvent(t *tunnel, events uint32) {
	e := t.ev
	if e.dial.connected {
		// Readiness is found out by trying once the tunnel runs, but the
		// end of the target's data raises no new edge: remember it.
		e.tEnd = e.tEnd || events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0
		return
	}
	if events&(syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
		var soErr int32
		n := uint32(4)
		_, errno := sockcall(sysGetsockopt, uintptr(e.tfd), syscall.SOL_SOCKET, syscall.SO_ERROR,
			uintptr(unsafe.Pointer(&soErr)), uintptr(unsafe.Pointer(&n)))
		switch {
		case errno != 0:
			l.dialDone(t, errno)
			return
		case soErr != 0:
			l.dialDone(t, syscall.Errno(soErr))
			return
		}
	}
	if events&syscall.EPOLLOUT != 0 {
		l.dialDone(t, nil)
		e.tEnd = events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP) != 0
	}
}

// dialDone ends the connect attempt of t with its verdict; a failed
// attempt's socket is closed.
func (l *loop) dialDone(t *tunnel, err error) {
	e := t.ev
	d := e.dial
	if d == nil || d.connected || e.tfd < 0 {
		return // decided already
	}
	if e.hidx >= 0 {
		heap.Remove(&l.timers, e.hidx)
	}
	if err != nil {
		l.closeFd(e.tfd)
		e.tfd = -1
	} else {
		d.connected = true
	}
	d.done <- err
}

// dialExpired reports whether t is connecting and fails it if its time is
// up (expire calls it).
func (l *loop) dialExpired(t *tunnel, now int64) bool {
	d := t.ev.dial
	if d == nil {
		return false
	}
	if !d.connected {
		if now >= d.deadline {
			l.dialDone(t, os.ErrDeadlineExceeded)
		} else {
			l.schedule(t, d.deadline)
		}
	}
	return true
}

// loopConn is a target socket connected by an event loop, as Dial returns
// it: the loop holds the descriptor, and the tunnel that Serve starts
// takes it from there (prepare). Only Close and RemoteAddr are meant to
// be used; the relay does the rest.
type loopConn struct {
	t     *tunnel
	raddr net.Addr
}

func (c *loopConn) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (c *loopConn) Write([]byte) (int, error)        { return 0, net.ErrClosed }
func (c *loopConn) LocalAddr() net.Addr              { return nil }
func (c *loopConn) RemoteAddr() net.Addr             { return c.raddr }
func (c *loopConn) SetDeadline(time.Time) error      { return nil }
func (c *loopConn) SetReadDeadline(time.Time) error  { return nil }
func (c *loopConn) SetWriteDeadline(time.Time) error { return nil }

// targetConn returns the loopConn of t's target (part of e).
func (e *evTunnel) targetConn(t *tunnel, raddr net.Addr) *loopConn {
	e.target = loopConn{t: t, raddr: raddr}
	return &e.target
}

// Close drops a connection whose tunnel never started (the handshake
// failed after the connect): the loop closes the socket and lets its
// reservation go.
func (c *loopConn) Close() error {
	t := c.t
	l := t.ev.l
	l.post(func() { l.drop(t) })
	return nil
}

// release takes the socket out of the loop for the goroutine relay (the
// client cannot go on an event loop: TLS over a connection that is no
// IORedirector) and returns it as a net.Conn.
func (c *loopConn) release() (net.Conn, error) {
	t := c.t
	e := t.ev
	l := e.l
	fd := e.tfd
	done := make(chan struct{})
	l.post(func() {
		if fd < len(l.byFd) && l.byFd[fd] == t {
			l.byFd[fd] = nil
			epollCtl(l.epfd, syscall.EPOLL_CTL_DEL, fd, &syscall.EpollEvent{})
		} // else connected at once by dial: never registered
		l.mu.Lock()
		l.reserved--
		l.mu.Unlock()
		close(done)
	})
	<-done
	f := os.NewFile(uintptr(fd), "")
	nc, err := net.FileConn(f)
	f.Close()
	return nc, err
}

// drop closes the sockets of a tunnel that never ran and lets its
// reservation go; it runs on the loop.
func (l *loop) drop(t *tunnel) {
	e := t.ev
	for _, fd := range [2]int{e.cfd, e.tfd} {
		if fd >= 0 {
			l.closeFd(fd)
		}
	}
	e.cfd, e.tfd = -1, -1
	if e.hidx >= 0 {
		heap.Remove(&l.timers, e.hidx)
	}
	l.mu.Lock()
	l.reserved--
	if e.cWait != nil {
		l.reserved-- // the client's wait
		e.cWait = nil
	}
	l.mu.Unlock()
}

// setFd makes t the owner of fd in l.byFd.
func (l *loop) setFd(fd int, t *tunnel) {
	for fd >= len(l.byFd) {
		l.byFd = append(l.byFd, nil)
	}
	l.byFd[fd] = t
}

// closeFd closes one of the loop's descriptors.
func (l *loop) closeFd(fd int) {
	if fd < len(l.byFd) {
		l.byFd[fd] = nil
	}
	sysClose(fd)
}

// dialled reports whether c is the connection Dial made on t's loop.
func (t *tunnel) dialled(c net.Conn) bool {
	lc, ok := c.(*loopConn)
	return ok && lc.t == t
}

// leaveLoop moves t, whose target its loop dialled, to the goroutine
// relay: its client could not go on the loop.
func (t *tunnel) leaveLoop() error {
	lc := t.target.conn.(*loopConn)
	c, err := lc.release()
	t.ev = nil
	if err != nil {
		return err
	}
	t.target.init(c, t.pool)
	return nil // start calls onGoroutines
}
