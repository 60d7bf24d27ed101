package websockify

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// newListenerRelay is newRelay behind Listener, as the proxy serves: its
// connections wait for their requests on the event loops and the tunnels
// take their sockets over.
func newListenerRelay(t *testing.T, d Dialer, o Options, readTimeout time.Duration) *relay {
	t.Helper()
	if goroutineRelay {
		t.Skip("goroutine relay")
	}
	checkNoLeak(t)
	o.Logger = quiet
	rl := &relay{tunnels: &Tunnels{linger: time.Nanosecond}, results: make(chan Result, 100)}
	rl.tunnels.SetLoops(2)
	rl.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			io.WriteString(w, "plain "+r.URL.Path)
			return
		}
		res := Serve(w, r, d, o, rl.tunnels)
		if res.Status != http.StatusSwitchingProtocols {
			http.Error(w, http.StatusText(res.Status), res.Status)
		}
		rl.results <- res
	}))
	rl.srv.Listener = Listener(rl.srv.Listener, rl.tunnels)
	rl.srv.Config.ConnContext = WithConn
	rl.srv.Config.ErrorLog = nil
	rl.srv.Config.ReadTimeout = readTimeout
	rl.srv.Start()
	t.Cleanup(rl.srv.Close)
	return rl
}

// TestListenerTunnels relays through Listener's connections: requests
// that came with the connection, and requests that come late (the read
// waits on the loop). The tunnel takes the socket over: it is not in Go's
// netpoller (no *os.File) when the loop gets it (strace: no dup, one
// epoll_ctl for the client).
func TestListenerTunnels(t *testing.T) {
	tg := newTarget(t, echo)
	rl := newListenerRelay(t, tg.dialer(), Options{}, 0)
	for _, delay := range []time.Duration{0, 50 * time.Millisecond} {
		c, err := net.Dial("tcp", rl.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		fmt.Fprintf(c, "GET /websockify HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("delay %v: %v %v", delay, resp, err)
		}
		msg := []byte("hello through the loop")
		c.Write(frame(true, opBinary, msg, 0))
		got := make([]byte, 2+len(msg))
		if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got[2:], msg) {
			t.Fatalf("delay %v: echo %q %v", delay, got, err)
		}
		c.Close()
		if res := rl.result(t); res.Err != nil {
			t.Errorf("delay %v: %v", delay, res.Err)
		}
	}
}

// TestListenerKeepAlive serves plain HTTP over Listener's connections:
// the first request waits on the loop, later ones in the netpoller.
func TestListenerKeepAlive(t *testing.T) {
	tg := newTarget(t, echo)
	rl := newListenerRelay(t, tg.dialer(), Options{}, 0)
	c, err := net.Dial("tcp", rl.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for i := range 3 {
		time.Sleep(20 * time.Millisecond)
		fmt.Fprintf(c, "GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if want := fmt.Sprintf("plain /r%d", i); string(body) != want {
			t.Fatalf("request %d: %q, want %q", i, body, want)
		}
	}
}

// TestListenerWaitEnds: a connection that sends nothing is closed at the
// server's read deadline (the wait on the loop times out), and one that
// is waiting when the server closes is closed too.
func TestListenerWaitEnds(t *testing.T) {
	tg := newTarget(t, echo)
	rl := newListenerRelay(t, tg.dialer(), Options{}, 200*time.Millisecond)
	c, err := net.Dial("tcp", rl.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection: %d, %v; want EOF", n, err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("closed after %v, before the read timeout", d)
	}

	c2, err := net.Dial("tcp", rl.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Write([]byte("GET / HTTP/1.1\r\n")) // an incomplete head: its Read waits again
	time.Sleep(50 * time.Millisecond)
	rl.srv.CloseClientConnections()
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c2); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after closing: %v", err)
	}
}

// TestSockConn checks sockConn as a net.Conn: echo before and after it
// moves to the netpoller, deadlines set before the move, errors.
func TestSockConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := Listener(ln, nil)
	defer wl.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := wl.Accept()
		if err != nil {
			t.Error(err)
			close(accepted)
			return
		}
		accepted <- c
	}()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c := <-accepted
	if c == nil {
		t.FailNow()
	}
	sc := c.(*sockConn)
	if c.LocalAddr().String() != ln.Addr().String() || c.RemoteAddr().String() != peer.LocalAddr().String() {
		t.Errorf("addresses %v %v, want %v %v", c.LocalAddr(), c.RemoteAddr(), ln.Addr(), peer.LocalAddr())
	}
	// Without a loop, a read that would block moves to the netpoller, and
	// a deadline set before applies there.
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err = c.Read(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a timeout", err)
	}
	if sc.f.Load() == nil {
		t.Fatal("still outside the netpoller")
	}
	// a read timeout is made once per connection: the next is the same
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" || oe.Addr != c.RemoteAddr() || oe.Source != c.LocalAddr() {
		t.Errorf("read timeout %#v", err)
	}
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err2 := c.Read(make([]byte, 10)); err2 != err {
		t.Errorf("second read timeout %v (%p), want the first (%p)", err2, err2, err)
	}
	c.SetReadDeadline(time.Time{})
	peer.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q %v", buf, err)
	}
	if _, err := c.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("peer read %q %v", buf, err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := peer.Read(buf); err != io.EOF {
		t.Fatalf("after CloseWrite: %v", err)
	}
	c.Close()
	if _, err := c.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second close: %v", err)
	}
	if fd, _ := sc.take(nil); fd != -1 {
		t.Errorf("take after close: %d", fd)
	}

	// The raw path: an expired deadline fails at once, as net.Conn's.
	go func() {
		c, err := wl.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	peer2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer2.Close()
	c = <-accepted
	defer c.Close()
	peer2.Write([]byte("x"))
	time.Sleep(20 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("raw read past its deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	if n, err := c.Read(buf); n != 1 || err != nil || c.(*sockConn).f.Load() != nil {
		t.Errorf("raw read: %d %v (in netpoller: %v)", n, err, c.(*sockConn).f.Load() != nil)
	}
	peer2.Close()
	if _, err := c.Read(buf); err != io.EOF {
		t.Errorf("raw read at the peer's close: %v", err)
	}

	// Accept after Close ends with net.ErrClosed.
	wl.Close()
	if _, err := wl.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("accept after close: %v", err)
	}
}

// TestSockConnFileWrites: in the netpoller, Writes (raw calls under the
// RawConn) still wait for room, honour the write deadline, and fail as
// net.Conn's after Close; concurrent ones each write all of theirs.
func TestSockConnFileWrites(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := Listener(ln, nil)
	defer wl.Close()
	c, peer := acceptPair(t, wl)
	defer peer.Close()
	defer c.Close()
	sc := c.(*sockConn)
	if _, err := sc.SyscallConn(); err != nil || sc.f.Load() == nil {
		t.Fatalf("not in the netpoller: %v", err)
	}

	// A write far larger than the socket's buffers, by two writers at
	// once: the peer gets every byte of both.
	const size = 8 << 20
	chunk := func(b byte) []byte { return bytes.Repeat([]byte{b}, size) }
	errs := make(chan error, 2)
	for _, b := range []byte{'a', 'b'} {
		go func() {
			n, err := c.Write(chunk(b))
			if err == nil && n != size {
				err = fmt.Errorf("wrote %d of %d", n, size)
			}
			errs <- err
		}()
	}
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := map[byte]int{}
	buf := make([]byte, 64<<10)
	for got['a']+got['b'] < 2*size {
		n, err := peer.Read(buf)
		if err != nil {
			t.Fatalf("peer read after %v: %v", got, err)
		}
		for _, x := range buf[:n] {
			got[x]++
		}
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got['a'] != size || got['b'] != size {
		t.Fatalf("peer got %v", got)
	}

	// Nobody reads: the write waits for room until its deadline.
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	n, err := c.Write(chunk('c'))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) || n <= 0 || n >= size {
		t.Fatalf("write past its deadline: %d %v", n, err)
	}
	c.SetWriteDeadline(time.Time{})
	c.Close()
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
}

// TestListenerOthers: Listener leaves other listeners alone.
func TestListenerOthers(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("unix", dir+"/s")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if Listener(ln, nil) != ln {
		t.Error("a unix listener was wrapped")
	}
	if !strings.HasPrefix(ln.Addr().Network(), "unix") {
		t.Error(ln.Addr().Network())
	}
	_ = websocket.BinaryMessage
}

// TestSockConnWaitWakes: a Read waiting on the loop for the first bytes
// sees a deadline set meanwhile (as net.Conn's), and goes on in the
// netpoller when a Write moves the socket there.
func TestSockConnWaitWakes(t *testing.T) {
	wl := newLoopListener(t)

	c, peer := acceptPair(t, wl)
	defer peer.Close()
	errc := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 1)); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(-time.Second))
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read: %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting Read did not see the deadline")
	}
	c.Close()

	c, peer = acceptPair(t, wl)
	defer peer.Close()
	defer c.Close()
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 5)
		n, _ := io.ReadFull(c, b)
		got <- string(b[:n])
	}()
	time.Sleep(50 * time.Millisecond)
	c.(*sockConn).mu.Lock()
	c.(*sockConn).toFile() // as a Write that would block does
	c.(*sockConn).mu.Unlock()
	peer.Write([]byte("hello"))
	select {
	case s := <-got:
		if s != "hello" {
			t.Errorf("read %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting Read did not move to the netpoller")
	}
}

// newLoopListener is a Listener on loopback whose connections wait for
// their first bytes on an event loop.
func newLoopListener(t *testing.T) net.Listener {
	t.Helper()
	checkNoLeak(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := Listener(ln, &Tunnels{linger: time.Nanosecond})
	t.Cleanup(func() { wl.Close() })
	return wl
}

// acceptPair connects to wl and accepts the connection: wl's end and the
// peer's (the listen backlog holds the connection until Accept).
func acceptPair(t *testing.T, wl net.Listener) (c, peer net.Conn) {
	t.Helper()
	peer, err := net.Dial("tcp", wl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if c, err = wl.Accept(); err != nil {
		peer.Close()
		t.Fatal(err)
	}
	return c, peer
}

// TestListenerNoDelay: Listener's connections have TCP_NODELAY, as Go's
// have; Linux copies it from the listening socket, so that only the first
// connection costs a system call (getsockopt, to check).
func TestListenerNoDelay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := Listener(ln, nil)
	defer wl.Close()
	sl, ok := wl.(*sockListener)
	if !ok {
		t.Fatalf("Listener gave %T", wl)
	}
	check := func(i int) {
		c, peer := acceptPair(t, wl)
		var v int
		rc, err := c.(*sockConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		rc.Control(func(fd uintptr) { v, err = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY) })
		if err != nil || v == 0 {
			t.Errorf("connection %d: TCP_NODELAY %d, %v", i, v, err)
		}
		c.Close()
		peer.Close()
	}
	for i := range 3 {
		check(i)
	}
	if got := sl.nodelay.Load(); got != nodelayInherited {
		t.Errorf("nodelay state %d, want %d (inherited)", got, nodelayInherited)
	}
	// A listening socket without it (a system that would not copy it):
	// each connection gets it set.
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 0) })
	if err != nil {
		t.Fatal(err)
	}
	sl.nodelay.Store(nodelayUnknown)
	for i := range 2 {
		check(3 + i)
	}
	if got := sl.nodelay.Load(); got != nodelayNotInherited {
		t.Errorf("nodelay state %d, want %d (not inherited)", got, nodelayNotInherited)
	}
}

// TestSockConnWaitAsNew: after a PROXY protocol header came alone, the
// read of the request waits on the loop again (WaitAsNew) rather than
// moving the socket to the netpoller; without it, it moves.
func TestSockConnWaitAsNew(t *testing.T) {
	wl := newLoopListener(t)
	for _, again := range []bool{true, false} {
		c, peer := acceptPair(t, wl)
		sc := c.(*sockConn)
		peer.Write([]byte("PROXY UNKNOWN\r\n"))
		buf := make([]byte, 64)
		if n, err := c.Read(buf); err != nil || string(buf[:n]) != "PROXY UNKNOWN\r\n" {
			t.Fatalf("header: %q %v", buf[:n], err)
		}
		if again {
			sc.WaitAsNew()
		}
		go func() {
			time.Sleep(50 * time.Millisecond)
			peer.Write([]byte("GET"))
		}()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(buf); err != nil || string(buf[:n]) != "GET" {
			t.Fatalf("request: %q %v", buf[:n], err)
		}
		if inPoller := sc.f.Load() != nil; inPoller == again {
			t.Errorf("WaitAsNew %v: the socket in the netpoller: %v", again, inPoller)
		}
		c.Close()
		peer.Close()
	}
}
