package websockify

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"ngxsockify/proxy/internal/ctxval"
)

// Listener wraps a TCP listener so that an event loop can take over the
// sockets of the connections it accepts without duplicating them: Go's
// net.Conn owns its descriptor for good, so a tunnel on an event loop
// otherwise costs a dup, and the removal of the original from Go's
// netpoller and its close.
//
// Its connections (sockConn) start outside Go's netpoller: they read and
// write with non-blocking system calls while the socket has data or room,
// which is the whole life of a WebSocket handshake. Until the first bytes
// come, a read that would block waits on one of ts's event loops (the one
// that will relay the connection's tunnel, if it becomes one: see
// WithConn), as an nginx worker waits for a request: the socket is
// registered in the loop's epoll set once, for good. After the first bytes,
// a read or write that would block puts the socket in the netpoller (an
// *os.File; the loop lets it go), after which the connection is an
// ordinary one, and a tunnel takes it over with a dup as before. Deadlines
// set before then are kept and applied. ts may be nil (no loops).
//
// A listener's RawConn cannot wait for connections, so Listener waits on
// a duplicate of its descriptor, put in the netpoller as an *os.File.
//
// Other listeners (unix sockets) are returned as they are; so is ln on
// other systems, and on any failure.
func Listener(ln net.Listener, ts *Tunnels) net.Listener {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return ln
	}
	fd := dupFd(tl)
	if fd < 0 {
		return ln
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return ln
	}
	f := os.NewFile(uintptr(fd), "listener")
	rc, err := f.SyscallConn()
	if err == nil {
		err = f.SetReadDeadline(time.Time{}) // fails unless in the netpoller
	}
	if err != nil {
		f.Close()
		return ln
	}
	l := &sockListener{Listener: ln, f: f, rc: rc, ts: ts}
	// TCP_NODELAY on the listening socket: Linux copies it to the
	// sockets accepted from it, which then need no setsockopt each
	// (Accept checks the first one).
	if setNoDelay(fd) == 0 {
		l.nodelay.Store(nodelayUnknown)
	}
	if a, ok := tl.Addr().(*net.TCPAddr); ok && !a.IP.IsUnspecified() {
		l.laddr = a // every connection's local address; else getsockname
	}
	return l
}

type sockListener struct {
	net.Listener
	f      *os.File // the duplicate Accept waits on
	rc     syscall.RawConn
	ts     *Tunnels
	laddr  *net.TCPAddr // nil: a wildcard address
	closed atomic.Bool
	// nodelay says whether accepted sockets come with TCP_NODELAY set
	// (nodelayInherited) or need it set (nodelayNotInherited, the zero
	// value: the listening socket did not take it)
	nodelay atomic.Int32

	acceptMu sync.Mutex
	as       acceptState
}

// Close closes the listener and the duplicate.
func (l *sockListener) Close() error {
	l.closed.Store(true)
	err := l.Listener.Close()
	l.f.Close()
	return err
}

// acceptState is what Accept's raw read fills; one per listener, so that
// an accept allocates no closure (Accept's callers call it one at a time,
// acceptMu covers the others).
type acceptState struct {
	rsa   syscall.RawSockaddrAny
	nfd   int
	errno syscall.Errno
	fn    func(fd uintptr) bool // accept, bound once
}

func (a *acceptState) accept(fd uintptr) bool {
	for {
		n := uint32(syscall.SizeofSockaddrAny)
		r, e := accept4(fd, &a.rsa, &n)
		switch e {
		case 0:
			a.nfd = int(r)
			return true
		case syscall.EINTR, syscall.ECONNABORTED:
			// As Go's accept: a connection reset while queued is skipped.
		case syscall.EAGAIN:
			return false
		default:
			a.errno = e
			return true
		}
	}
}

func (l *sockListener) Accept() (net.Conn, error) {
	l.acceptMu.Lock()
	a := &l.as
	if a.fn == nil {
		a.fn = a.accept
	}
	a.nfd, a.errno = -1, 0
	err := l.rc.Read(a.fn)
	nfd, errno := a.nfd, a.errno
	var c *sockConn
	if err == nil && errno == 0 {
		c = &sockConn{fd: nfd, l: l.ts.pick()}
		c.raddr = c.peer.set(&a.rsa)
	}
	l.acceptMu.Unlock()
	switch {
	case err != nil && l.closed.Load():
		err = net.ErrClosed // not the duplicate's "use of closed file"
	case err == nil && errno != 0:
		err = os.NewSyscallError("accept4", errno)
	}
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: err}
	}
	l.noDelay(nfd) // as Go sets it on the connections it accepts
	if l.laddr != nil {
		c.laddr = l.laddr
	} else {
		var lsa syscall.RawSockaddrAny
		n := uint32(syscall.SizeofSockaddrAny)
		sockcall(sysGetsockname, uintptr(nfd), uintptr(unsafe.Pointer(&lsa)), uintptr(unsafe.Pointer(&n)), 0, 0)
		c.laddr = tcpAddrOf(&lsa)
	}
	return c, nil
}

const (
	nodelayNotInherited = iota
	nodelayUnknown
	nodelayInherited
)

// noDelay makes sure that TCP_NODELAY is set on fd, a socket accepted
// from l: a system call only when the listening socket's setting does not
// carry over (the first connection tells).
func (l *sockListener) noDelay(fd int) {
	switch l.nodelay.Load() {
	case nodelayInherited:
		return
	case nodelayUnknown:
		var v int32
		n := uint32(4)
		_, errno := sockcall(sysGetsockopt, uintptr(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY,
			uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&n)))
		if errno == 0 && v != 0 {
			l.nodelay.Store(nodelayInherited)
			return
		}
		l.nodelay.Store(nodelayNotInherited)
	}
	setNoDelay(fd)
}

// setNoDelay sets TCP_NODELAY on the socket fd.
func setNoDelay(fd int) syscall.Errno {
	one := int32(1)
	_, errno := sockcall(sysSetsockopt, uintptr(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY, uintptr(unsafe.Pointer(&one)), 4)
	return errno
}

// tcpAddrOf converts an IPv4 or IPv6 socket address.
func tcpAddrOf(rsa *syscall.RawSockaddrAny) *net.TCPAddr {
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return &net.TCPAddr{IP: net.IPv4(sa.Addr[0], sa.Addr[1], sa.Addr[2], sa.Addr[3]), Port: int(p[0])<<8 | int(p[1])}
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		a := &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: int(p[0])<<8 | int(p[1])}
		if sa.Scope_id != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.Scope_id)); err == nil {
				a.Zone = ifi.Name
			}
		}
		return a
	}
	return &net.TCPAddr{}
}

// peerAddr holds a connection's remote address in the connection itself,
// its IP in ip (one allocation less per accepted connection).
type peerAddr struct {
	addr net.TCPAddr
	ip   [16]byte
}

// set fills p from an IPv4 or IPv6 socket address (as tcpAddrOf) and
// returns its address.
func (p *peerAddr) set(rsa *syscall.RawSockaddrAny) *net.TCPAddr {
	if rsa.Addr.Family != syscall.AF_INET {
		p.addr = *tcpAddrOf(rsa)
		return &p.addr
	}
	sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(rsa))
	port := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p.ip = [16]byte{10: 0xff, 11: 0xff, 12: sa.Addr[0], 13: sa.Addr[1], 14: sa.Addr[2], 15: sa.Addr[3]}
	p.addr = net.TCPAddr{IP: p.ip[:], Port: int(port[0])<<8 | int(port[1])}
	return &p.addr
}

// sockConn is a connection accepted by Listener. Until f is set it does
// its own non-blocking reads and writes on fd under mu; after, f (the
// socket in Go's netpoller) does everything.
type sockConn struct {
	mu           sync.Mutex
	fd           int // -1 once closed or taken by an event loop
	f            atomic.Pointer[os.File]
	rdl, wdl     time.Time // deadlines while f is nil; guarded by mu
	laddr, raddr net.Addr
	l            *loop         // the loop it waits on and is relayed by; nil: none
	reg          *tunnel       // its entry in l while registered there; guarded by mu
	started      bool          // bytes were read: waits go to the netpoller; guarded by mu
	closed       chan struct{} // closed by Close while reg is set: wakes a waiting Read
	peer         peerAddr      // raddr's storage
	rw           rawWrite      // Writes once f is set
	// ctx is the context the first WithConn returned (ctxTaken), kept
	// here rather than allocated
	ctx      ctxval.Value
	ctxTaken atomic.Bool
	rto      atomic.Pointer[net.OpError] // readTimeout's
}

func (c *sockConn) LocalAddr() net.Addr  { return c.laddr }
func (c *sockConn) RemoteAddr() net.Addr { return c.raddr }

func (c *sockConn) Read(p []byte) (int, error) {
	if f := c.f.Load(); f != nil {
		n, err := f.Read(p)
		return n, c.fileErr("read", err)
	}
	c.mu.Lock()
	if f := c.f.Load(); f != nil {
		c.mu.Unlock()
		return c.Read(p)
	}
	if err := c.usable(c.rdl); err != nil {
		c.mu.Unlock()
		return 0, c.readErr(err)
	}
	n, err := readFd(c.fd, p)
	if err == syscall.EAGAIN {
		if c.waitsOnLoop() {
			w, deadline := c.reg.ev.wait, c.rdl
			c.mu.Unlock()
			if err := w.wait(deadline); err != nil {
				return 0, c.readErr(err)
			}
			return c.Read(p)
		}
		f := c.toFile()
		c.mu.Unlock()
		n, err := f.Read(p)
		return n, c.fileErr("read", err)
	}
	if n > 0 {
		c.started = true
	}
	c.mu.Unlock()
	switch {
	case err != nil:
		return 0, c.opErr("read", os.NewSyscallError("read", err))
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *sockConn) Write(p []byte) (int, error) {
	if f := c.f.Load(); f != nil {
		return c.fileWrite(f, p)
	}
	c.mu.Lock()
	if f := c.f.Load(); f != nil {
		c.mu.Unlock()
		return c.Write(p)
	}
	if err := c.usable(c.wdl); err != nil {
		c.mu.Unlock()
		return 0, c.opErr("write", err)
	}
	n, err := writeFd(c.fd, p)
	if err != nil || n == len(p) {
		c.mu.Unlock()
		if err != nil {
			return n, c.opErr("write", err)
		}
		return n, nil
	}
	f := c.toFile() // the socket is full: wait for room in the netpoller
	c.mu.Unlock()
	m, err := f.Write(p[n:])
	return n + m, c.fileErr("write", err)
}

// WaitAsNew makes the reads that would block wait on the event loop again,
// as before the first bytes came: those read were a PROXY protocol header
// (proxy/http1), and the request is still to come. Once the socket is in
// the netpoller it stays there.
func (c *sockConn) WaitAsNew() {
	c.mu.Lock()
	if c.f.Load() == nil {
		c.started = false
	}
	c.mu.Unlock()
}

// usable says why the raw path may not read or write now: closed, or the
// deadline passed (as net.Conn, even with data waiting).
func (c *sockConn) usable(deadline time.Time) error {
	if c.fd < 0 {
		return net.ErrClosed
	}
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// toFile puts the socket in Go's netpoller; c.mu is held.
func (c *sockConn) toFile() *os.File {
	c.unregister()
	f := os.NewFile(uintptr(c.fd), "socket")
	if !c.rdl.IsZero() {
		f.SetReadDeadline(c.rdl)
	}
	if !c.wdl.IsZero() {
		f.SetWriteDeadline(c.wdl)
	}
	if rc, err := f.SyscallConn(); err == nil {
		c.rw.rc = rc
	}
	c.f.Store(f)
	return f
}

// fileWrite writes p to the socket in the netpoller with raw write
// system calls (rawsys_linux.go), waiting for room in the netpoller if
// the socket is full. A write through os.File enters the syscall state,
// and on loopback the write wakes the peer, which often preempts the
// writer inside write(): the scheduler's monitor then sees the P in a
// system call for a tick and hands it to another thread (a futex wake,
// and the writer finds a P again after), which raw calls do not let it
// do. The reads stay ordinary system calls: each wake-up of the
// connection's goroutine still starts with one (rawsys_linux.go's rule).
func (c *sockConn) fileWrite(f *os.File, p []byte) (int, error) {
	w := &c.rw
	if w.rc == nil {
		n, err := f.Write(p)
		return n, c.fileErr("write", err)
	}
	w.mu.Lock()
	if w.fn == nil {
		w.fn = w.write
	}
	w.p, w.n, w.err = p, 0, nil
	err := w.rc.Write(w.fn)
	n, werr := w.n, w.err
	w.p, w.err = nil, nil
	w.mu.Unlock()
	switch {
	case err != nil:
		// Closed or past the deadline: os.File words the error (and
		// writes the rest if the socket took a new deadline meanwhile).
		m, err := f.Write(p[n:])
		return n + m, c.fileErr("write", err)
	case werr != nil:
		return n, c.opErr("write", werr)
	}
	return n, nil
}

// rawWrite is the state of sockConn's raw writes in the netpoller; mu
// serialises Writes (as os.File's write lock would), so that one bound
// callback serves them all.
type rawWrite struct {
	mu  sync.Mutex
	rc  syscall.RawConn // set before sockConn.f
	fn  func(fd uintptr) bool
	p   []byte
	n   int
	err error // a failed write(2)
}

// write is the RawConn.Write callback: it writes what the socket takes
// (writeFd: raw calls); false when it is full (wait for room).
func (w *rawWrite) write(fd uintptr) bool {
	n, err := writeFd(int(fd), w.p[w.n:])
	w.n += n
	if err != nil {
		w.err = err
		return true
	}
	return w.n == len(w.p)
}

func (c *sockConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.f.Load(); f != nil {
		return c.fileErr("close", f.Close())
	}
	if c.fd < 0 {
		return c.opErr("close", net.ErrClosed)
	}
	if wt := c.reg; wt != nil {
		// Registered in the loop: the loop closes it (its entry goes
		// with it), and a Read waiting there returns.
		c.reg = nil
		close(wt.ev.wait.closed)
		wt.ev.l.post(func() { wt.ev.l.dropWait(wt, true) })
	} else {
		sysClose(c.fd)
	}
	c.fd = -1
	return nil
}

// CloseWrite shuts down the sending side of the socket.
func (c *sockConn) CloseWrite() error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Shutdown(int(fd), syscall.SHUT_WR) }); err != nil {
		return c.opErr("close", err)
	}
	if serr != nil {
		return c.opErr("close", os.NewSyscallError("shutdown", serr))
	}
	return nil
}

// SyscallConn puts the socket in the netpoller (its users may wait on it)
// and returns its raw connection.
func (c *sockConn) SyscallConn() (syscall.RawConn, error) {
	c.mu.Lock()
	f := c.f.Load()
	if f == nil {
		if c.fd < 0 {
			c.mu.Unlock()
			return nil, c.opErr("raw-conn", net.ErrClosed)
		}
		f = c.toFile()
	}
	c.mu.Unlock()
	return f.SyscallConn()
}

func (c *sockConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *sockConn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(&c.rdl, t, (*os.File).SetReadDeadline)
}
func (c *sockConn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(&c.wdl, t, (*os.File).SetWriteDeadline)
}

func (c *sockConn) setDeadline(d *time.Time, t time.Time, set func(*os.File, time.Time) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.f.Load(); f != nil {
		return c.fileErr("set", set(f, t))
	}
	if c.fd < 0 {
		return c.opErr("set", net.ErrClosed)
	}
	*d = t
	if c.reg != nil {
		c.reg.ev.wait.notify() // a Read waiting on the loop looks at it again
	}
	return nil
}

// take hands the socket to the event loop l: the descriptor, or -1 when
// it is in the netpoller already (the caller duplicates it then) or
// closed, and its entry if l has it registered already (see add). The
// connection is closed for its other users.
func (c *sockConn) take(l *loop) (int, *tunnel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f.Load() != nil || c.fd < 0 {
		return -1, nil
	}
	if c.reg != nil && c.reg.ev.l != l {
		c.unregister()
	}
	fd, wt := c.fd, c.reg
	c.fd, c.reg = -1, nil
	return fd, wt
}

// waitsOnLoop reports whether a read that would block waits on the loop
// (registering the socket there first); c.mu is held.
func (c *sockConn) waitsOnLoop() bool {
	switch {
	case c.started || c.l == nil:
		return false
	case c.reg == nil:
		return c.register()
	}
	return !c.reg.ev.wait.failed.Load()
}

// WithConn notes in ctx the event loop that c (a connection of Listener,
// possibly under wrappers with NetConn) waits on, so that Serve relays
// its tunnel on that loop, where its socket is registered already.
func WithConn(ctx context.Context, c net.Conn) context.Context {
	for {
		switch x := c.(type) {
		case *sockConn:
			if x.l == nil {
				return ctx
			}
			if !x.ctxTaken.CompareAndSwap(false, true) {
				return context.WithValue(ctx, connLoopKey{}, x.l)
			}
			x.ctx = ctxval.Value{Context: ctx, Key: connLoopKey{}, Val: x.l}
			return &x.ctx
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return ctx
		}
	}
}

type connLoopKey struct{}

// loopOf returns the loop WithConn noted in ctx, or nil.
func loopOf(ctx context.Context) *loop {
	l, _ := ctx.Value(connLoopKey{}).(*loop)
	return l
}

// register puts the socket in c.l's epoll set, for Reads to wait on
// (c.mu is held); false if the loop cannot start.
func (c *sockConn) register() bool {
	l := c.l
	if l.reserve() != nil {
		return false
	}
	w := &connWait{ch: make(chan struct{}, 1), closed: make(chan struct{})}
	wt := newLoopTunnel(evTunnel{l: l, cfd: c.fd, tfd: -1, hidx: -1, wait: w})
	c.reg = wt
	// The loop's entry first (quietly: a sleeping loop is not woken for
	// it), then the registration, whose first event wakes the loop.
	l.postQuiet(func() { l.watchConn(wt) })
	if !l.register(c.fd) {
		w.failed.Store(true) // watchConn makes no entry; Read goes to the netpoller
	}
	return true
}

// unregister takes the socket out of its loop's epoll set (c.mu is held).
func (c *sockConn) unregister() {
	wt := c.reg
	if wt == nil {
		return
	}
	c.reg = nil
	done := make(chan struct{})
	l := wt.ev.l
	l.post(func() {
		l.dropWait(wt, false)
		close(done)
	})
	<-done
	wt.ev.wait.notify() // a Read waiting on the loop goes to the netpoller
}

// connWait is the loop's side of a Listener's connection that waits for
// its first bytes (the ev.wait of its entry in l.byFd).
type connWait struct {
	ch     chan struct{} // a token per event: retry the read
	closed chan struct{} // closed by Close
	end    bool          // the peer's FIN or an error was signalled; loop-owned
	failed atomic.Bool   // the loop could not register it: use the netpoller
}

// wait waits for an event of the socket, the deadline or Close.
func (w *connWait) wait(deadline time.Time) error {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if d <= 0 {
			return os.ErrDeadlineExceeded
		}
		tm := time.NewTimer(d)
		defer tm.Stop()
		timeout = tm.C
	}
	select {
	case <-w.ch:
		return nil
	case <-w.closed:
		return net.ErrClosed
	case <-timeout:
		return os.ErrDeadlineExceeded
	}
}

// watchConn makes the loop's entry of a waiting connection, whose socket
// register put in the epoll set; it runs on the loop.
func (l *loop) watchConn(wt *tunnel) {
	e := wt.ev
	select {
	case <-e.wait.closed:
		return // Close came first; its dropWait follows
	default:
	}
	if !e.wait.failed.Load() {
		l.setFd(e.cfd, wt)
	}
}

// waitEvent passes an event of a waiting connection on to its Read. The
// token goes under l.mu, for beginQuiet: a token left there means that an
// event came after the connection's last wait, which the tunnel must not
// miss.
func (l *loop) waitEvent(wt *tunnel, events uint32) {
	w := wt.ev.wait
	w.end = w.end || events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0
	l.mu.Lock()
	w.notify()
	l.mu.Unlock()
}

func (w *connWait) notify() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// dropWait ends a waiting connection's registration and lets its
// reservation go; closing its socket too (Close) or not (the netpoller
// or another loop takes it). It runs on the loop.
func (l *loop) dropWait(wt *tunnel, closeIt bool) {
	fd := wt.ev.cfd
	if fd < len(l.byFd) && l.byFd[fd] == wt {
		l.byFd[fd] = nil
		if !closeIt {
			epollCtl(l.epfd, syscall.EPOLL_CTL_DEL, fd, &syscall.EpollEvent{})
		}
	}
	if closeIt {
		sysClose(fd)
	}
	l.mu.Lock()
	l.reserved--
	l.mu.Unlock()
}

func (c *sockConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: err}
}

// readErr is opErr("read", err), the same object each time for a passed
// deadline (readTimeout).
func (c *sockConn) readErr(err error) error {
	if err == os.ErrDeadlineExceeded {
		return c.readTimeout()
	}
	return c.opErr("read", err)
}

// readTimeout is the error of a read whose deadline passed, made once per
// connection: a watch (proxy/http1's WatchClose) ends its read so, per
// request.
func (c *sockConn) readTimeout() error {
	if e := c.rto.Load(); e != nil {
		return e
	}
	e := &net.OpError{Op: "read", Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: os.ErrDeadlineExceeded}
	c.rto.Store(e)
	return e
}

// fileErr words the netpoller's errors as net.Conn's: an *os.PathError
// becomes a *net.OpError, a closed file net.ErrClosed.
func (c *sockConn) fileErr(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	switch {
	case errors.Is(err, os.ErrClosed):
		err = net.ErrClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		if op == "read" {
			return c.readTimeout()
		}
		err = os.ErrDeadlineExceeded
	default:
		var errno syscall.Errno
		if errors.As(err, &errno) {
			err = os.NewSyscallError(op, errno)
		}
	}
	return c.opErr(op, err)
}
