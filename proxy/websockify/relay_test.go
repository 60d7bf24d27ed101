package websockify

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// relayPair runs Relay between a client connection and one to tg on the
// engine asked for; it returns the client's side and the Result channel.
func relayPair(t *testing.T, tg *target, o Options, ts *Tunnels) (net.Conn, chan Result) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	relayed, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	backend, err := net.Dial("tcp", tg.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan Result, 1)
	go func() { res <- Relay(relayed, backend, o, ts) }()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, res
}

// waitLen waits up to 5 s for ts to hold n tunnels. A tunnel registers
// just after its 101 and leaves just after its Result is reported, so a
// count right after either can be one off.
func waitLen(t *testing.T, ts *Tunnels, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ts.Len() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d tunnels, want %d", ts.Len(), n)
		}
	}
}

func waitResult(t *testing.T, res chan Result) Result {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Relay did not return")
		return Result{}
	}
}

// TestRelay relays raw bytes both ways on both engines: an echo of sizes
// around the buffer, the target's last bytes before its close, the idle
// timeout and Shutdown.
func TestRelay(t *testing.T) {
	onBothEngines(t, func(t *testing.T, noLoops bool) {
		checkNoLeak(t)
		ts := &Tunnels{noLoops: noLoops, linger: time.Nanosecond}
		tg := newTarget(t, echo)
		c, res := relayPair(t, tg, Options{BufferSize: 4096, Logger: quiet}, ts)
		var sent int
		for _, n := range []int{1, 4095, 4096, 4097, 300000} {
			msg := randBytes(n)
			c.Write(msg)
			got := make([]byte, n)
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("%d bytes: echo differs (%v)", n, err)
			}
			sent += n
		}
		c.Close()
		if r := waitResult(t, res); r.Err != nil || r.BytesSent != int64(sent) || r.BytesReceived != int64(sent) {
			t.Errorf("result %+v, want %d bytes each way", r, sent)
		}

		last := newTarget(t, func(c net.Conn) { c.Write(bytes.Repeat([]byte("z"), 200000)) })
		c, res = relayPair(t, last, Options{Logger: quiet}, ts)
		if b, err := io.ReadAll(c); len(b) != 200000 || err != nil {
			t.Errorf("target's last bytes: %d, %v", len(b), err)
		}
		waitResult(t, res)

		c, res = relayPair(t, tg, Options{ReadTimeout: 300 * time.Millisecond, Logger: quiet}, ts)
		start := time.Now()
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("idle: %v, want EOF", err)
		}
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Errorf("idle close after %v", d)
		}
		if r := waitResult(t, res); !errors.Is(r.Err, ErrIdleTimeout) {
			t.Errorf("idle: %v", r.Err)
		}
		waitLen(t, ts, 0)

		c, res = relayPair(t, tg, Options{Logger: quiet}, ts)
		c.Write([]byte("x"))
		io.ReadFull(c, make([]byte, 1))
		if ts.Len() != 1 {
			t.Errorf("%d tunnels, want the relay counted", ts.Len())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("after Shutdown: %v, want EOF (no close frame)", err)
		}
		if r := waitResult(t, res); !errors.Is(r.Err, ErrShutdown) {
			t.Errorf("shutdown: %v", r.Err)
		}
	})
}
