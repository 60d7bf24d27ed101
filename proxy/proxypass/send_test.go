//go:build unix

package proxypass

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// backend accepts one connection on a fresh listener and runs serve on it.
func backend(t *testing.T, serve func(c net.Conn)) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSenderWaitsForTheAnswer(t *testing.T) {
	var s Sender
	for i := range 2 { // a second connection on the same Sender
		got := make(chan []byte, 1)
		c := backend(t, func(c net.Conn) {
			b := make([]byte, 4)
			io.ReadFull(c, b)
			got <- b
			time.Sleep(20 * time.Millisecond) // the answer comes after the wait began
			c.Write([]byte("pong"))
		})
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := s.Send(c, []byte("ping"), false); n != 4 || err != nil {
			t.Fatalf("#%d: Send = %d, %v; want 4, nil", i, n, err)
		}
		if b := <-got; string(b) != "ping" {
			t.Fatalf("#%d: backend got %q", i, b)
		}
		b := make([]byte, 8)
		if n, err := c.Read(b); string(b[:n]) != "pong" || err != nil {
			t.Fatalf("#%d: read %q, %v", i, b[:n], err)
		}
	}
}

func TestSenderReadDeadline(t *testing.T) {
	var s Sender
	done := make(chan struct{})
	c := backend(t, func(c net.Conn) { <-done })
	defer close(done)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if n, err := s.Send(c, []byte("ping"), false); n != 4 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Send = %d, %v; want 4, a deadline", n, err)
	}
}

func TestSenderShortWrite(t *testing.T) {
	var s Sender
	big := bytes.Repeat([]byte("x"), 32<<20) // more than the socket buffers hold
	read := make(chan int, 1)
	start := make(chan struct{})
	c := backend(t, func(c net.Conn) {
		<-start
		n, _ := io.Copy(io.Discard, io.LimitReader(c, int64(len(big))))
		read <- int(n)
	})
	n, err := s.Send(c, big, false)
	if n >= len(big) || err != nil {
		t.Fatalf("Send = %d, %v; want a short write and no error", n, err)
	}
	close(start)
	if _, err := c.Write(big[n:]); err != nil { // the rest, the ordinary way
		t.Fatal(err)
	}
	if got := <-read; got != len(big) {
		t.Fatalf("backend read %d bytes, want %d", got, len(big))
	}
}

func TestSenderNotASocket(t *testing.T) {
	var s Sender
	c, d := net.Pipe()
	defer c.Close()
	defer d.Close()
	if n, err := s.Send(c, []byte("ping"), false); n != 0 || err != nil {
		t.Fatalf("Send = %d, %v; want 0, nil (the caller writes)", n, err)
	}
}

func TestSenderCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		idle  func(c *net.TCPConn) // what the backend does while the connection is idle
		stale bool
	}{
		{"quiet", func(*net.TCPConn) {}, false},
		{"half-closed", func(c *net.TCPConn) { c.CloseWrite() }, true},
		{"wrote", func(c *net.TCPConn) { c.Write([]byte("junk")) }, true},
	} {
		var s Sender
		got := make(chan int, 1)
		c := backend(t, func(c net.Conn) {
			tc.idle(c.(*net.TCPConn))
			c.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := io.Copy(io.Discard, c)
			got <- int(n)
		})
		time.Sleep(20 * time.Millisecond) // what the backend did has come
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, err := s.Send(c, []byte("ping"), true)
		if tc.stale {
			if n != 0 || err != ErrStale {
				t.Errorf("%s: Send = %d, %v; want 0, ErrStale", tc.name, n, err)
			}
		} else if n != 4 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s: Send = %d, %v; want 4 and the wait's deadline", tc.name, n, err)
		}
		c.Close()
		if want := map[bool]int{false: 4, true: 0}[tc.stale]; <-got != want {
			t.Errorf("%s: the backend did not get %d bytes", tc.name, want)
		}
	}
}

// TestSenderCheckPastDeadline: a read deadline that passed before Send
// began leaves the write to the caller, but not the look at the
// connection.
func TestSenderCheckPastDeadline(t *testing.T) {
	for _, half := range []bool{false, true} {
		var s Sender
		c := backend(t, func(c net.Conn) {
			if half {
				c.(*net.TCPConn).CloseWrite()
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			io.Copy(io.Discard, c)
		})
		time.Sleep(20 * time.Millisecond) // the FIN has come
		c.SetReadDeadline(time.Now().Add(-time.Second))
		n, err := s.Send(c, []byte("ping"), true)
		if want := map[bool]error{false: nil, true: ErrStale}[half]; n != 0 || err != want {
			t.Errorf("half-closed %v: Send = %d, %v; want 0, %v", half, n, err, want)
		}
	}
}

// TestSenderExchange: the answer's first bytes are read in the step that
// waited for them; an end is left to the caller's read.
func TestSenderExchange(t *testing.T) {
	var s Sender
	c := backend(t, func(c net.Conn) {
		b := make([]byte, 4)
		io.ReadFull(c, b)
		time.Sleep(20 * time.Millisecond) // the answer comes after the wait began
		c.Write([]byte("pong"))
		io.ReadFull(c, b)
		c.(*net.TCPConn).CloseWrite() // the second request's answer: the end
		io.Copy(io.Discard, c)
	})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	in := make([]byte, 16)
	if n, got, err := s.Exchange(c, []byte("ping"), in, false); n != 4 || string(in[:got]) != "pong" || err != nil {
		t.Fatalf("Exchange = %d, %q, %v; want 4, pong, nil", n, in[:got], err)
	}
	if n, got, err := s.Exchange(c, []byte("ping"), in, false); n != 4 || got != 0 || err != nil {
		t.Fatalf("Exchange at the end = %d, %d, %v; want 4, 0, nil", n, got, err)
	}
	if n, err := c.Read(in); n != 0 || err != io.EOF {
		t.Fatalf("read after = %d, %v; want the end", n, err)
	}
}
