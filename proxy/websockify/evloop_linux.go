//go:build linux

package websockify

import (
	"container/heap"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// An event loop (Linux only: epoll) relays the tunnels whose client and target are plain
// sockets (TCP or unix), or whose client is TLS over an IORedirector; the
// others keep the goroutine relay of tunnel.go.
// It is nginx's design: one goroutine waits in epoll_wait on every socket it
// owns and does all reads and writes itself with non-blocking syscalls.
// Compared with two goroutines per tunnel parked in Go's netpoller, a message
// costs no goroutine wake-up and no hand-off between threads, and an idle
// tunnel costs no goroutine stack: only its struct and two file descriptors.
//
// The loop owns duplicates of the sockets' descriptors: the net.Conns are
// closed once their fds are duplicated, which also takes them out of Go's
// own epoll set, so that an event wakes this loop and nothing else.
//
// After a batch of events that relayed data the loop polls without blocking
// for up to spinFor before it sleeps in epoll_wait: an interactive round
// trip (a keystroke and its echo, a framebuffer request and its update)
// usually comes back within that window, and catching it while polling
// saves the wake-up of a sleeping thread, which is what dominates relay
// latency on a virtual machine. Opening and closing tunnels does not poll.
type loop struct {
	mu       sync.Mutex
	running  bool        // a goroutine runs the loop; guarded by mu
	reserved int         // prepared tunnels not added yet: the loop must not stop; guarded by mu
	inbox    []posted    // work posted from other goroutines; guarded by mu
	next     int         // inbox[next] runs next; guarded by mu
	parked   bool        // the loop goroutine sleeps in Go's netpoller; guarded by mu
	parkAt   int64       // while parked: the nanotime it wakes at by itself, 0 none; guarded by mu
	posted   atomic.Bool // inbox is not empty

	epfd  int      // valid while running
	ep    *os.File // epfd in Go's netpoller, where the loop sleeps
	epRaw syscall.RawConn
	// wait's poll through the netpoller (pollSleeping) and its state.
	pollFn func(uintptr) bool
	sleptN int
	woken  bool
	linger time.Duration // how long the loop outlives its last tunnel
	rep    *reporters    // the goroutines reporting tunnels' ends; valid while running

	// Owned by the loop goroutine.
	byFd   []*tunnel // tunnel by descriptor
	live   int       // tunnels attached and not finished
	timers timerHeap
	ready  []*tunnel // tunnels that stopped before running out of work
	moved  bool      // the last batch relayed data: poll before sleeping
	idle   int64     // nanotime when the last tunnel ended; 0 while there are tunnels
	ended  []*tunnel // tunnels that ended in this round, to report (tunnel.end)
	buf    []byte    // read buffer shared by all tunnels: headroom + the largest BufferSize
	raw    []byte    // TLS clients' socket bytes before decryption
	events [128]syscall.EpollEvent
}

// spinFor is how long the loop polls for new events before it blocks; 0 on
// a single CPU, where polling only delays the peer it waits for.
var spinFor = func() time.Duration {
	if runtime.NumCPU() > 1 {
		return 50 * time.Microsecond
	}
	return 0
}()

// maxPongBacklog is how many bytes of pongs may wait for a client, on top
// of a frame of target data, before the loop stops reading the client.
const maxPongBacklog = 4096

// evTunnel is the event-loop state of a tunnel.
type evTunnel struct {
	l          *loop
	cfd, tfd   int      // -1 once closed
	cOut, tOut outQueue // bytes waiting for the client, for the target
	// Readiness, edge-triggered: set by events, cleared by EAGAIN or by a
	// short read. A short read proves nothing once the peer's FIN (or an
	// error) is signalled: no new edge would come, so cEnd and tEnd keep
	// reading until EOF.
	cR, cW, tR, tW bool
	cEnd, tEnd     bool
	graceUntil     int64 // nanotime: after our close frame, the end of the wait for the client
	lingering      bool  // ending: only the close frame still waits in cOut
	finished       bool
	queued         bool // on l.ready
	// A TLS client: crypto/tls reads from tin and writes through send.
	tls  *tls.Conn
	tin  tlsInput
	when int64 // the tunnel's timer (nanotime); valid while hidx >= 0
	hidx int
	// The connect of a tunnel whose target the loop dialled (dial_linux.go),
	// until the tunnel starts (add).
	dial *dialState
	// target is what Dial returned for the target the loop dialled.
	target loopConn
	// A Listener's connection waiting for its first bytes (accept_linux.go):
	// the entry has only cfd.
	wait *connWait
	// The client's entry in l.byFd while it waited (add takes it over).
	cWait *tunnel
	// beginQuiet put the target, the client in the epoll set
	tReg, cReg bool
	// The client, the target is registered without EPOLLOUT (needOut).
	cNoOut, tNoOut bool
}

// outQueue holds bytes that a socket did not take at once.
type outQueue struct {
	b     []byte
	bp    *[]byte // pool buffer behind b; nil if b was allocated
	since int64   // nanotime when bytes started to wait
}

func (q *outQueue) push(p []byte, pool *sync.Pool, poolSize int) {
	if len(q.b) == 0 {
		q.since = nanotime()
		if len(p) <= poolSize {
			q.bp = getBuf(pool)
			q.b = append((*q.bp)[:0], p...)
			return
		}
	}
	if len(q.b)+len(p) > cap(q.b) && q.bp != nil {
		// Rare (a pong or close frame behind a full frame): leave the pool buffer.
		nb := append(make([]byte, 0, len(q.b)+len(p)), q.b...)
		putBuf(pool, q.bp)
		q.bp, q.b = nil, nb
	}
	q.b = append(q.b, p...)
}

func (q *outQueue) release(pool *sync.Pool) {
	if q.bp != nil {
		putBuf(pool, q.bp)
	}
	*q = outQueue{}
}

const epollFlags = syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | syscall.EPOLLET&0xffffffff

// epollInFlags registers a socket for reading only: a socket that has
// just been written to (a handshake's) is writable at once, and with
// EPOLLOUT its registration alone would wake the loop. needOut adds
// EPOLLOUT when a write first falls short.
const epollInFlags = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLET&0xffffffff

// dupFd returns a close-on-exec duplicate of c's descriptor, or -1.
func dupFd(c any) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	rc.Control(func(f uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f, syscall.F_DUPFD_CLOEXEC, 0)
		if errno == 0 {
			fd = int(r)
		}
	})
	return fd
}

// takeFd returns the descriptor of c, a socket, for the event loop l, or
// -1: a Listener's connection gives its own up when it can (no system
// call), with its entry when l has it registered already; others are
// duplicated and closed.
func takeFd(c net.Conn, l *loop) (int, *tunnel) {
	if sc, ok := c.(*sockConn); ok {
		if fd, wt := sc.take(l); fd >= 0 {
			return fd, wt
		}
	}
	fd := dupFd(c)
	if fd >= 0 {
		c.Close()
	}
	return fd, nil
}

// socketOf returns the TCP or unix socket under c, or nil when c has none
// or changes the bytes (TLS). Wrappers are looked through with NetConn, as
// (*tls.Conn).NetConn names it.
func socketOf(c net.Conn) net.Conn {
	for {
		switch x := c.(type) {
		case *net.TCPConn, *net.UnixConn, *sockConn:
			return c
		case *tls.Conn:
			return nil
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return nil
		}
	}
}

// prepare takes over t's sockets for l: it duplicates their descriptors
// and closes the net.Conns. On failure it returns false and t keeps its
// net.Conns. start then either hands t to l (begin) or drops it (discard).
//
// A target the loop connected itself (a loopConn, t.ev set by start) is
// the loop's already: only the client is taken over. If the client cannot
// be, prepare returns false and start moves the target to the goroutine
// relay (loopConn.release).
func (l *loop) prepare(t *tunnel) bool {
	client := socketOf(t.client.conn)
	tc, redirect := tlsClient(t.client.conn)
	if tc != nil {
		client = socketOf(tc.NetConn())
	}
	if t.ev != nil {
		if client == nil {
			return false
		}
		cfd, wt := takeFd(client, l)
		if cfd < 0 {
			return false
		}
		t.client.drop()
		t.target.drop()
		t.ev.cfd, t.ev.cWait = cfd, wt
		t.ev.cR, t.ev.cW = true, true
		l.takeTLS(t, tc, redirect)
		return true
	}
	target := socketOf(t.target.conn)
	if client == nil || target == nil {
		return false
	}
	if l.reserve() != nil {
		return false // out of descriptors, say: the goroutine relay needs none
	}
	tfd := dupFd(target)
	if tfd < 0 {
		l.unreserve()
		return false
	}
	cfd, wt := takeFd(client, l)
	if cfd < 0 {
		syscall.Close(tfd)
		l.unreserve()
		return false
	}
	target.Close()
	// The loop owns the duplicates: the tunnel keeps no net.Conn (the
	// accepted connection's wrappers, a TLS client's *tls.Conn is kept
	// below) and no raw-conn state, which an idle tunnel would hold for
	// nothing.
	t.client.drop()
	t.target.drop()
	// Readiness is found out by trying; bytes that came with the
	// handshake are read first.
	t.ev = &evTunnel{l: l, cfd: cfd, tfd: tfd, hidx: -1, cR: true, cW: true, tR: true, tW: true, cWait: wt}
	l.takeTLS(t, tc, redirect)
	return true
}

// newTunnel is a tunnel whose target l will dial (Dial), with its loop
// state; the client's descriptor comes at prepare.
func (l *loop) newTunnel() *tunnel {
	return newLoopTunnel(evTunnel{l: l, cfd: -1, tfd: -1, hidx: -1, tR: true, tW: true})
}

// newLoopTunnel returns a tunnel and its event-loop state e in one
// allocation.
func newLoopTunnel(e evTunnel) *tunnel {
	lt := &struct {
		t tunnel
		e evTunnel
	}{e: e}
	lt.t.ev = &lt.e
	return &lt.t
}

// takeTLS redirects a TLS client's reads and writes to the loop.
func (l *loop) takeTLS(t *tunnel, tc *tls.Conn, redirect IORedirector) {
	if tc != nil {
		t.ev.tls = tc
		t.ev.tin.t = t
		redirect.RedirectIO(&t.ev.tin, &t.ev.tin)
	}
}

// IORedirector is implemented by connections that can hand their reads and
// writes over (proxy's listener wraps every accepted connection in one).
// When the connection under a TLS client's *tls.Conn is one, the tunnel
// runs on an event loop too: the loop reads the socket, crypto/tls reads
// those bytes from memory, and what it writes goes out through the loop.
type IORedirector interface {
	RedirectIO(r io.Reader, w io.Writer)
}

// tlsClient returns c as a *tls.Conn whose connection can be redirected.
func tlsClient(c net.Conn) (*tls.Conn, IORedirector) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil, nil
	}
	r, ok := tc.NetConn().(IORedirector)
	if !ok {
		return nil, nil
	}
	return tc, r
}

// tlsInput sits under a TLS client's *tls.Conn on an event loop. Read
// hands over the socket bytes the loop read (in), and then reports "would
// block", a temporary error after which crypto/tls keeps its state and
// tries again later. Write sends crypto/tls's records through the loop.
type tlsInput struct {
	t     *tunnel
	in    []byte // socket bytes not yet taken
	owned bool   // in is the tunnel's own copy, not the loop's buffer
}

func (x *tlsInput) Read(p []byte) (int, error) {
	if len(x.in) == 0 {
		return 0, errWouldBlock
	}
	n := copy(p, x.in)
	x.in = x.in[n:]
	return n, nil
}

func (x *tlsInput) Write(p []byte) (int, error) {
	e := x.t.ev
	if _, err := e.l.send(x.t, e.cfd, &e.cOut, &e.cW, p); err != nil {
		return 0, err
	}
	return len(p), nil // what the socket did not take waits in cOut
}

// errWouldBlock is what tlsInput.Read returns when it has nothing.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "websockify: would block" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// begin starts relaying a prepared tunnel.
func (l *loop) begin(t *tunnel) {
	t.last.Store(nanotime())
	if h := testHookBegin.Load(); h != nil {
		(*h)(t)
	}
	if !l.beginQuiet(t) {
		l.post(func() { l.add(t) })
	}
}

// beginQuiet starts t without a post when it has no bytes to relay yet:
// its sockets go in the epoll set here (a client that waited for its
// request on this loop is there already), and add runs before the loop
// handles the first event of either. The loop wakes for those events
// through the netpoller (a target just registered reports itself
// writable), so that the tunnel's start and its first events, often the
// client's close too, take one wake-up where a post, which readies the
// loop at once, took two. A sleeping loop wakes by t's first deadline at
// the latest, for add to set t's timer. It reports false when t cannot
// start so.
func (l *loop) beginQuiet(t *tunnel) bool {
	e := t.ev
	if e.tls != nil || e.dial != nil || e.tfd < 0 || e.cfd < 0 || len(t.pending) > 0 {
		return false
	}
	waited := e.cWait != nil
	if waited && e.cWait.ev.wait.failed.Load() {
		return false
	}
	when := t.wakeAt()
	// Under l.mu, so that the loop, which may have collected an event
	// of these sockets already, finds add in the inbox before it handles it.
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.running || waited && len(e.cWait.ev.wait.ch) > 0 {
		// An event of the waiting client came after its request was
		// read (a frame, its FIN): its edge went to the wait's entry,
		// so nothing would wake the loop for it.
		return false
	}
	if !l.register(e.tfd) {
		return false
	}
	if !waited {
		if !l.register(e.cfd) {
			epollCtl(l.epfd, syscall.EPOLL_CTL_DEL, e.tfd, &syscall.EpollEvent{})
			return false
		}
		e.cReg = true
	}
	e.tReg, e.tNoOut, e.cNoOut = true, true, true // a waiting client is registered so too
	l.inbox = append(l.inbox, posted{add: t})
	l.posted.Store(true)
	if l.parked && (l.parkAt == 0 || when < l.parkAt) {
		l.parkAt = when
		l.ep.SetReadDeadline(wallTime(when))
	}
	return true
}

// register puts fd in the epoll set, for reading only (see needOut).
func (l *loop) register(fd int) bool {
	ev := syscall.EpollEvent{Events: epollInFlags, Fd: int32(fd)}
	return epollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev) == nil
}

// needOut asks for fd's EPOLLOUT edges, when fd is a socket of t that
// was registered without them and a write to it has just fallen short.
// Edge-triggered, the change reports the socket at once if it is
// writable again by now.
func (l *loop) needOut(t *tunnel, fd int) {
	e := t.ev
	var noOut *bool
	switch fd {
	case e.cfd:
		noOut = &e.cNoOut
	case e.tfd:
		noOut = &e.tNoOut
	default:
		return
	}
	if !*noOut {
		return
	}
	*noOut = false
	ev := syscall.EpollEvent{Events: epollFlags, Fd: int32(fd)}
	epollCtl(l.epfd, syscall.EPOLL_CTL_MOD, fd, &ev) // cannot fail on a registered socket; else the send timeout ends t
}

// discard closes a prepared tunnel that never ran, after trying to send the
// client last (a close frame); it returns the bytes the client took.
func (e *evTunnel) discard(t *tunnel, last []byte) int {
	n, _ := writeFd(e.cfd, last)
	e.l.post(func() { e.l.drop(t) }) // the loop may hold the target (Dial)
	return n
}

// writeClient is tunnel.writeClient on the loop: it never blocks, what the
// socket does not take waits in cOut.
func (e *evTunnel) writeClient(t *tunnel, p []byte) (int, error) {
	if e.tls != nil {
		if e.cfd < 0 {
			return 0, net.ErrClosed
		}
		return e.tls.Write(p) // records go out through tlsInput.Write
	}
	return e.l.send(t, e.cfd, &e.cOut, &e.cW, p)
}

// writeTarget is tunnel.writeTarget on the loop, like writeClient.
func (e *evTunnel) writeTarget(t *tunnel, p []byte) error {
	_, err := e.l.send(t, e.tfd, &e.tOut, &e.tW, p)
	return err
}

// reserve starts the loop if needed and keeps it running until the
// reservation is used (add) or dropped (unreserve).
func (l *loop) reserve() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.running {
		if err := l.open(); err != nil {
			return err
		}
		l.running = true
		go l.run()
	}
	l.reserved++
	return nil
}

// unreserve drops a reservation; the loop then checks whether to stop.
func (l *loop) unreserve() {
	l.post(func() {
		l.mu.Lock()
		l.reserved--
		l.mu.Unlock()
	})
}

// post runs f on the loop goroutine. A stopped loop drops f: it has no
// tunnel left (a tunnel or a reservation keeps it running), so f concerns
// tunnels already finished. A sleeping loop is woken by an expired
// deadline on its epoll descriptor (see wait): no system call. The
// deadline is set under l.mu, so that it never reaches a descriptor that
// stop closed.
func (l *loop) post(f func()) { l.enqueue(f, true) }

// postQuiet queues f for the loop without waking it: f runs before the
// loop handles its next events. The caller then puts a socket in the
// loop's epoll set itself (epoll_ctl is safe from any thread), and f makes
// the loop's entry for it: the socket's first event both wakes the loop
// and finds its entry, and a sleeping loop costs no wake-up meanwhile.
func (l *loop) postQuiet(f func()) { l.enqueue(f, false) }

// enqueue is post, and postQuiet when wake is false.
func (l *loop) enqueue(f func(), wake bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.running {
		return
	}
	l.inbox = append(l.inbox, posted{f: f})
	l.posted.Store(true)
	if wake && l.parked {
		l.parked = false
		l.ep.SetReadDeadline(longAgo)
	}
}

// posted is an item of a loop's inbox: f to run, or a tunnel to add (a
// start, without a closure to allocate).
type posted struct {
	f   func()
	add *tunnel
}

// longAgo is a deadline in the past: it wakes a sleeping loop.
var longAgo = time.Unix(1, 0)

// open creates the loop's epoll set and puts it in Go's netpoller (an
// epoll descriptor is readable while it holds events), where the loop
// goroutine sleeps like any goroutine waiting for a socket: a sleeping
// loop holds no thread and no P, and waking it is a goroutine wake-up that
// the scheduler often runs on the waker's thread (the handshake that
// posted a tunnel, say), not the wake-up of a thread blocked in
// epoll_wait.
func (l *loop) open() error {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(ep, true); err != nil {
		syscall.Close(ep)
		return os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(ep), "epoll")
	rc, err := f.SyscallConn()
	if err == nil {
		err = f.SetReadDeadline(time.Time{}) // fails unless in the netpoller
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("websockify: epoll descriptor not pollable: %w", err)
	}
	l.epfd, l.ep, l.epRaw = ep, f, rc
	l.rep = newReporters()
	if l.pollFn == nil {
		l.pollFn = l.pollSleeping
	}
	return nil
}

// add registers t's descriptors; it runs on the loop goroutine.
func (l *loop) add(t *tunnel) {
	e := t.ev
	l.mu.Lock()
	l.reserved--
	l.mu.Unlock()
	l.live++
	if need := headroom + t.o.BufferSize; len(l.buf) < need {
		l.buf = make([]byte, need)
	}
	if e.tls != nil && l.raw == nil {
		l.raw = make([]byte, 0, 64<<10)
	}
	fds := [2]int{e.cfd, e.tfd}
	if e.dial != nil {
		e.dial = nil
		fds[1] = -1 // registered by its connect
	}
	if e.tReg { // registered by beginQuiet
		fds[1] = -1
		l.setFd(e.tfd, t)
	}
	if e.cReg {
		fds[0] = -1
		l.setFd(e.cfd, t)
	}
	if wt := e.cWait; wt != nil {
		// The client's socket waited for its request on this loop.
		e.cWait = nil
		l.mu.Lock()
		l.reserved-- // the wait's
		l.mu.Unlock()
		if !wt.ev.wait.failed.Load() {
			fds[0] = -1
			l.setFd(e.cfd, t)
			e.cEnd = wt.ev.wait.end
			e.cNoOut = true // register's registration
		}
	}
	for _, fd := range fds {
		if fd < 0 {
			continue
		}
		l.setFd(fd, t)
		ev := syscall.EpollEvent{Events: epollFlags, Fd: int32(fd)}
		if err := epollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			t.setErr(os.NewSyscallError("epoll_ctl", err))
			t.ending.Store(true)
			l.finish(t)
			return
		}
	}
	l.schedule(t, t.wakeAt())
	if h := testHookAdd.Load(); h != nil {
		(*h)(t)
	}
	l.work(t)
}

// run is the loop goroutine. It returns when no tunnel is left.
func (l *loop) run() {
	defer func() {
		if r := recover(); r != nil {
			l.recoverFrom(r)
		}
	}()
	l.runInbox() // work posted before this goroutine (a restart) started
	for {
		n := l.wait()
		// Posted work first: an event may concern a socket that a quiet
		// post (postQuiet) is to register.
		l.runInbox()
		for _, ev := range l.events[:n] {
			fd := int(ev.Fd)
			if fd >= len(l.byFd) || l.byFd[fd] == nil {
				continue
			}
			t := l.byFd[fd]
			e := t.ev
			if e.wait != nil {
				l.waitEvent(t, ev.Events)
				continue
			}
			if e.dial != nil {
				l.dialEvent(t, ev.Events)
				continue
			}
			in := ev.Events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0
			out := ev.Events&(syscall.EPOLLOUT|syscall.EPOLLHUP|syscall.EPOLLERR) != 0
			end := ev.Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0
			if fd == e.cfd {
				e.cR, e.cW, e.cEnd = e.cR || in, e.cW || out, e.cEnd || end
			} else {
				e.tR, e.tW, e.tEnd = e.tR || in, e.tW || out, e.tEnd || end
			}
			l.work(t)
		}
		// One round over the tunnels that used up their budget; the next
		// wait does not block while some are left.
		ready := l.ready
		l.ready = nil
		for _, t := range ready {
			t.ev.queued = false
			l.work(t)
		}
		l.expire()
		l.report()
		if l.live > 0 {
			l.idle = 0
		} else if l.idle == 0 {
			l.idle = nanotime()
		} else if nanotime()-l.idle >= int64(l.linger) && l.stop() {
			return
		}
	}
}

// recoverFrom handles a panic of the loop goroutine (a bug): the loop's
// tunnels end with ErrInternal carrying the panic and its stack (the proxy
// logs it at "alert"), and a new goroutine takes over the loop, so that
// other tunnels and new ones go on.
func (l *loop) recoverFrom(r any) {
	err := fmt.Errorf("%w: event loop panic: %v\n%s", ErrInternal, r, debug.Stack())
	var waiting []*tunnel // connected by the loop, not started yet: begin comes
	var conns []*tunnel   // Listener's connections waiting for bytes
	for _, t := range l.byFd {
		if t == nil || t.ev.finished {
			continue
		}
		if t.ev.wait != nil {
			conns = append(conns, t)
			continue
		}
		if d := t.ev.dial; d != nil {
			if d.connected {
				waiting = append(waiting, t)
			} else {
				t.ev.hidx = -1 // the heap is dropped below, whatever its state
				l.dialDone(t, err)
			}
			continue
		}
		t.setErr(err)
		func() {
			defer func() { recover() }() // its state may be what broke
			l.finish(t)
		}()
	}
	l.byFd, l.timers, l.ready, l.live, l.moved = nil, nil, nil, 0, false
	for _, t := range waiting {
		t.ev.hidx = -1
		l.setFd(t.ev.tfd, t)
	}
	for _, t := range conns {
		l.setFd(t.ev.cfd, t)
	}
	l.report()
	l.mu.Lock()
	l.parked = false // the panic may have come from wait
	l.mu.Unlock()
	go l.run()
}

// testHookAdd, when set, runs on the loop as each tunnel is added (tests).
var testHookAdd atomic.Pointer[func(*tunnel)]

// testHookBegin, when set, runs as each tunnel starts, after its 101 went
// out (tests).
var testHookBegin atomic.Pointer[func(*tunnel)]

// wait fills l.events and returns how many there are; 0 when work was
// posted or a timer is due.
func (l *loop) wait() int {
	if len(l.ready) > 0 || l.posted.Load() {
		return l.poll()
	}
	if spinFor > 0 && l.moved {
		l.moved = false
		start := time.Now()
		for time.Since(start) < spinFor {
			if n := l.poll(); n > 0 || l.posted.Load() {
				return n
			}
		}
	}
	// Sleep in Go's netpoller until the epoll set holds events, the
	// deadline passes, or post moves the deadline to the past. The
	// deadline is set under l.mu, before parked tells post to move it.
	// Read polls once before it sleeps (events that are ready need no
	// sleep), and must: it forgets the netpoller's earlier readiness.
	l.mu.Lock()
	if l.next < len(l.inbox) {
		l.mu.Unlock()
		return 0
	}
	var deadline time.Time // none: sleep until an event or a post
	l.parkAt = 0
	switch {
	case len(l.timers) > 0:
		l.parkAt = l.timers[0].ev.when
		deadline = wallTime(l.parkAt)
	case l.live == 0 && l.reserved == 0:
		// The end of the linger (reservations keep the loop); it may
		// start now, when the last reservation went in this round.
		if l.idle == 0 {
			l.idle = nanotime()
		}
		l.parkAt = l.idle + int64(l.linger)
		deadline = wallTime(l.parkAt)
	}
	if !deadline.IsZero() && !deadline.After(time.Now()) {
		// Due now: Read would fail at once without polling.
		l.mu.Unlock()
		return l.poll()
	}
	l.ep.SetReadDeadline(deadline)
	l.parked = true
	l.mu.Unlock()
	l.sleptN, l.woken = 0, false // the first call polls before sleeping; later ones follow a wake-up
	err := l.epRaw.Read(l.pollFn)
	n := l.sleptN
	l.mu.Lock()
	l.parked = false
	l.mu.Unlock()
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		panic("websockify: waiting for epoll: " + err.Error())
	}
	return n
}

// pollSleeping is wait's poll through the netpoller, made once per loop
// (open) so that a wait allocates no closure; its state is sleptN and woken.
func (l *loop) pollSleeping(uintptr) bool {
	l.sleptN = l.pollAs(l.woken)
	l.woken = true
	return l.sleptN > 0
}

// wallTime is the wall-clock time of a nanotime instant.
func wallTime(when int64) time.Time {
	return time.Now().Add(time.Duration(when - nanotime()))
}

// poll collects the events that are ready, without waiting.
func (l *loop) poll() int { return l.pollAs(false) }

// pollAs is poll; woken when the netpoller has just woken the loop, which
// must then tell the runtime (see rawsys_linux.go).
func (l *loop) pollAs(woken bool) int {
	for {
		n, err := epollWaitNow(l.epfd, l.events[:], woken)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			panic("websockify: epoll_wait: " + err.Error())
		}
		return n
	}
}

func (l *loop) runInbox() {
	// One item at a time, so that a panic (see recoverFrom) loses none.
	for {
		l.mu.Lock()
		if l.next == len(l.inbox) {
			// Drained: the array is kept for the next posts (its
			// items were cleared as they ran).
			l.inbox, l.next = l.inbox[:0], 0
			l.posted.Store(false)
			l.mu.Unlock()
			return
		}
		p := l.inbox[l.next]
		l.inbox[l.next] = posted{}
		l.next++
		l.mu.Unlock()
		if p.add != nil {
			l.add(p.add)
		} else {
			p.f()
		}
	}
}

// stop ends the loop goroutine unless work was posted meanwhile.
func (l *loop) stop() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.next < len(l.inbox) || l.reserved > 0 {
		return false
	}
	l.ep.Close()
	l.rep.close()
	l.running = false
	l.byFd, l.buf, l.raw, l.timers, l.idle, l.parked = nil, nil, nil, nil, 0, false
	l.ep, l.epRaw, l.rep = nil, nil, nil
	return true
}

// report reports the ends of the round's tunnels: on the loop those whose
// done may run there (Options.DoneOnLoop), the others on another
// goroutine (reporters).
func (l *loop) report() {
	if len(l.ended) == 0 {
		return
	}
	// The ends whose done may run on the loop go first, at once; the
	// others go to a reporter, in their order.
	rest := l.ended[:0]
	for _, t := range l.ended {
		if t.o.DoneOnLoop {
			t.report()
		} else {
			rest = append(rest, t)
		}
	}
	if len(rest) > 0 {
		l.rep.run(rest)
		l.ended = nil
	} else {
		clear(l.ended[:cap(l.ended)])
		l.ended = l.ended[:0]
	}
}

// work moves t's data until every socket would block, or a budget runs out
// (then t goes on l.ready, so that one busy tunnel does not starve others).
func (l *loop) work(t *tunnel) {
	e := t.ev
	for budget := 32; budget > 0; budget-- {
		if e.finished {
			return
		}
		switch {
		case e.cW && len(e.cOut.b) > 0:
			l.flushQueue(t, e.cfd, &e.cOut, &e.cW, true)
		case e.tW && len(e.tOut.b) > 0:
			l.flushQueue(t, e.tfd, &e.tOut, &e.tW, false)
		case e.cR && len(e.tOut.b) == 0 && len(e.cOut.b) <= maxPongBacklog+t.o.BufferSize && !e.lingering:
			// Client frames are read while the target takes their payload
			// and the client its pongs: a client that sends pings and
			// reads nothing stops being read once its pongs pile up
			// behind the frame it is not reading.
			l.readClient(t)
		case e.tR && e.tfd >= 0 && len(e.cOut.b) == 0:
			l.readTarget(t)
		default:
			return
		}
	}
	if !e.finished && !e.queued {
		e.queued = true
		l.ready = append(l.ready, t)
	}
}

// flushQueue writes queued bytes to fd.
func (l *loop) flushQueue(t *tunnel, fd int, q *outQueue, writable *bool, toClient bool) {
	n, err := writeFd(fd, q.b)
	if toClient && n > 0 && t.ev.tls == nil { // TLS: writeClient counted the plaintext
		t.sent.Add(int64(n))
	}
	if err != nil {
		if toClient {
			l.dropClient(t, err)
		} else {
			t.targetWriteFailed(err)
		}
		return
	}
	if n < len(q.b) {
		*writable = false
		l.needOut(t, fd)
		q.b = q.b[n:]
		return
	}
	q.release(t.pool)
	if toClient && t.ev.lingering {
		l.finish(t) // the close frame is out
	}
}

// send writes p to fd, or queues it behind bytes already waiting. It returns
// the bytes the socket took at once.
func (l *loop) send(t *tunnel, fd int, q *outQueue, writable *bool, p []byte) (int, error) {
	if fd < 0 {
		return 0, net.ErrClosed
	}
	n := 0
	if len(q.b) == 0 && *writable {
		var err error
		if n, err = writeFd(fd, p); err != nil {
			return n, err
		}
		if n == len(p) {
			return n, nil
		}
		*writable = false
		l.needOut(t, fd)
	}
	q.push(p[n:], t.pool, headroom+t.o.BufferSize)
	l.schedule(t, q.since+int64(t.o.SendTimeout))
	return n, nil
}

func (l *loop) readClient(t *tunnel) {
	e := t.ev
	if e.tls != nil {
		l.readClientTLS(t)
		return
	}
	buf := l.buf[:headroom+t.o.BufferSize]
	var n int
	if len(t.pending) > 0 {
		n = t.takePending(buf[headroom:])
	} else {
		var err error
		n, err = readSocket(e.cfd, buf[headroom:], &e.cR, e.cEnd)
		if err != nil {
			t.clientGone(err) // io.EOF: the client went away, a normal end
			l.finish(t)
			return
		}
		if n == 0 {
			return
		}
	}
	l.moved = true
	t.clientData(buf, n)
}

// readClientTLS is readClient for a TLS client: plaintext crypto/tls
// already holds comes first (records read with the handshake, or behind the
// last one); socket bytes are read only when it has none. One call handles
// one read's worth; the loop calls again while the client is readable.
func (l *loop) readClientTLS(t *tunnel) {
	e := t.ev
	buf := l.buf[:headroom+t.o.BufferSize]
	var n int
	var err error
	if len(t.pending) > 0 {
		n = t.takePending(buf[headroom:])
	} else {
		n, err = e.tls.Read(buf[headroom:])
		if errors.Is(err, errWouldBlock) {
			// crypto/tls took every socket byte and wants more. A short
			// read keeps e.cR: what crypto/tls does not take at once
			// waits in e.tin, and only the next calls hand it over.
			raw := l.raw[:cap(l.raw)]
			var m int
			m, err = readSocket(e.cfd, raw, &e.cR, true)
			switch {
			case err != nil:
			case m == 0:
				return // would block
			default:
				e.tin.in, e.tin.owned = raw[:m], false
				n, err = e.tls.Read(buf[headroom:])
				if errors.Is(err, errWouldBlock) {
					err = nil // a partial record
				}
			}
		}
		if len(e.tin.in) > 0 && !e.tin.owned {
			// crypto/tls stopped inside the loop's buffer: keep the rest.
			e.tin.in, e.tin.owned = append([]byte(nil), e.tin.in...), true
		}
	}
	if n > 0 {
		l.moved = true
		t.clientData(buf, n)
	}
	if err != nil && !e.finished {
		t.clientGone(err)
		l.finish(t) // EOF or close_notify: the client went away
	}
}

func (l *loop) readTarget(t *tunnel) {
	e := t.ev
	n, err := readSocket(e.tfd, l.buf[headroom:headroom+t.targetReadSize()], &e.tR, e.tEnd)
	if err != nil {
		t.targetEnded(err)
		return
	}
	if n == 0 {
		return
	}
	l.moved = true
	t.fromTarget(l.buf, n)
}

// readSocket reads fd into p. It returns 0 and no error when fd would block,
// io.EOF when the peer closed its side, and clears *readable (edge-triggered
// readiness) on EAGAIN and on a short read: the next bytes raise a new edge.
// untilEAGAIN keeps *readable after a short read (the peer's FIN or an error
// was signalled, so no new edge would come).
func readSocket(fd int, p []byte, readable *bool, untilEAGAIN bool) (int, error) {
	n, err := readFd(fd, p)
	switch {
	case err == syscall.EAGAIN:
		*readable = false
		return 0, nil
	case err != nil:
		return 0, os.NewSyscallError("read", err)
	case n == 0:
		return 0, io.EOF
	case n < len(p) && !untilEAGAIN:
		*readable = false
	}
	return n, nil
}

// closeWith is tunnel.closeWith on the event loop.
func (l *loop) closeWith(t *tunnel, code int, cause error, graceful bool) {
	e := t.ev
	if e.finished {
		return
	}
	if t.raw {
		code, graceful = 0, false // no close handshake to wait for
	}
	t.setErr(cause)
	t.ending.Store(true)
	if code != 0 {
		t.sendClose(code, "")
		if e.finished {
			return
		}
	}
	if e.tfd >= 0 {
		l.closeFd(e.tfd)
		e.tfd = -1
		e.tOut.release(t.pool)
	}
	var wait time.Duration
	switch {
	case graceful:
		wait = t.closeGraceWait()
	case (code != 0 || t.raw) && len(e.cOut.b) > 0:
		// The close frame, or an upgraded connection's last bytes, still
		// wait for the client.
		e.lingering = true
		wait = t.closeSendWait()
	default:
		l.finish(t)
		return
	}
	// A second close (Shutdown after the target's EOF, say) does not
	// extend the wait.
	if until := nanotime() + int64(wait); e.graceUntil == 0 || until < e.graceUntil {
		e.graceUntil = until
	}
	l.schedule(t, e.graceUntil)
}

// dropClient ends t after a failed write to the client.
func (l *loop) dropClient(t *tunnel, err error) {
	if !t.ending.Load() {
		t.setErr(err)
	}
	t.ending.Store(true)
	l.finish(t)
}

// finish closes t's sockets and reports its end.
func (l *loop) finish(t *tunnel) {
	e := t.ev
	if e.finished {
		return
	}
	e.finished = true
	t.ending.Store(true)
	for _, fd := range [2]int{e.cfd, e.tfd} {
		if fd >= 0 {
			l.closeFd(fd)
		}
	}
	e.cfd, e.tfd = -1, -1
	e.cOut.release(t.pool)
	e.tOut.release(t.pool)
	if e.hidx >= 0 {
		heap.Remove(&l.timers, e.hidx)
	}
	l.live--
	t.end()
}

// schedule makes sure t's timer fires no later than when.
func (l *loop) schedule(t *tunnel, when int64) {
	e := t.ev
	switch {
	case e.hidx < 0:
		e.when = when
		heap.Push(&l.timers, t)
	case when < e.when:
		e.when = when
		heap.Fix(&l.timers, e.hidx)
	}
}

// expire runs the timers that are due. A timer is a lower bound: when it
// fires, the tunnel's deadlines are computed afresh from its state.
func (l *loop) expire() {
	now := nanotime()
	for len(l.timers) > 0 && l.timers[0].ev.when <= now {
		t := heap.Pop(&l.timers).(*tunnel)
		e := t.ev
		if l.dialExpired(t, now) {
			continue
		}
		if e.graceUntil != 0 {
			if now >= e.graceUntil {
				l.finish(t)
			} else {
				l.schedule(t, e.graceUntil)
			}
			continue
		}
		if now >= t.idleDeadline() {
			t.idleTimedOut()
			continue
		}
		if t.pingIfDue(now); t.ending.Load() {
			continue // the ping could not be written
		}
		next := t.wakeAt()
		send := int64(t.o.SendTimeout)
		if len(e.cOut.b) > 0 {
			if now >= e.cOut.since+send {
				t.clientWriteFailed(ErrSendTimeout)
				continue
			}
			next = min(next, e.cOut.since+send)
		}
		if len(e.tOut.b) > 0 {
			if now >= e.tOut.since+send {
				t.targetWriteFailed(ErrSendTimeout)
				continue
			}
			next = min(next, e.tOut.since+send)
		}
		l.schedule(t, next)
	}
}

// timerHeap orders tunnels by ev.when.
type timerHeap []*tunnel

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].ev.when < h[j].ev.when }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].ev.hidx, h[j].ev.hidx = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*tunnel)
	t.ev.hidx = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.ev.hidx = -1
	return t
}
