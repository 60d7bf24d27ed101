package websockify

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// loopDial makes one Dial as Serve does: for a tunnel that the loop will
// relay. It returns the connection and the loop.
func loopDial(ctx context.Context, t *testing.T, network, addr string, timeout time.Duration) (net.Conn, *loop, error) {
	t.Helper()
	ts := &Tunnels{linger: time.Nanosecond}
	l := ts.pick()
	if err := l.reserve(); err != nil {
		t.Fatal(err)
	}
	tn := l.newTunnel()
	c, err := Dial(context.WithValue(ctx, dialKey{}, tn), network, addr, timeout)
	if !tn.dialled(c) {
		l.unreserve()
	}
	return c, l, err
}

// waitStopped checks that a loop lets go of everything: its goroutine ends.
func waitStopped(t *testing.T, l *loop) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for l.isRunning() {
		if time.Now().After(deadline) {
			t.Fatal("the loop still runs: a reservation or a socket was not let go")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDialOnLoop connects on an event loop to TCP (IPv4, IPv6) and unix
// targets (paths and abstract names), and falls back to net.Dialer for
// host names.
func TestDialOnLoop(t *testing.T) {
	dir := t.TempDir()
	targets := []struct{ network, addr string }{{"tcp", "127.0.0.1:0"}, {"tcp", "[::1]:0"},
		{"unix", dir + "/t.sock"}, {"unix", "@ngxsockify-dial-test"}}
	for _, tc := range targets {
		ln, err := net.Listen(tc.network, tc.addr)
		if err != nil {
			t.Logf("%s %s: %v (skipped)", tc.network, tc.addr, err)
			continue
		}
		defer ln.Close()
		c, l, err := loopDial(context.Background(), t, tc.network, ln.Addr().String(), time.Second)
		if err != nil {
			t.Fatalf("%s: %v", ln.Addr(), err)
		}
		if _, ok := c.(*loopConn); !ok {
			t.Errorf("%s: dialled with %T, not on the loop", ln.Addr(), c)
		}
		if c.RemoteAddr().String() != ln.Addr().String() {
			t.Errorf("remote address %v, want %v", c.RemoteAddr(), ln.Addr())
		}
		peer, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := peer.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s: the loop did not close the unused socket", ln.Addr())
		}
		peer.Close()
		waitStopped(t, l)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	c, l, err := loopDial(context.Background(), t, "tcp", "localhost:"+port, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*loopConn); ok {
		t.Error("a host name was dialled on the loop")
	}
	c.Close()
	waitStopped(t, l)
}

// TestDialOnLoopErrors: a refused connect, a timeout and a cancelled
// context give net.Dialer's errors, and the loop keeps nothing.
func TestDialOnLoopErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	_, l, err := loopDial(context.Background(), t, "tcp", refused, time.Second)
	var oe *net.OpError
	if !errors.As(err, &oe) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("refused: %v", err)
	}
	waitStopped(t, l)

	stuck := stuckListener(t)
	start := time.Now()
	_, l, err = loopDial(context.Background(), t, "tcp", stuck, 200*time.Millisecond)
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("timeout: %v", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Errorf("timed out after %v, want 200ms", d)
	}
	if dialStatus(err) != 504 {
		t.Errorf("status %d for a timeout", dialStatus(err))
	}
	waitStopped(t, l)

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, l, err = loopDial(ctx, t, "tcp", stuck, 5*time.Second)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	waitStopped(t, l)

	_, l, err = loopDial(ctx, t, "tcp", stuck, 5*time.Second)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before: %v", err)
	}
	waitStopped(t, l)
}
