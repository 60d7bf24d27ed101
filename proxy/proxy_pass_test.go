package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"ngxsockify/netpeek"
)

// TestProxyPassIdleHalfClosed: a backend half-closes a kept connection
// just before proxy_pass takes it for the next request (after the pool
// would have looked at it). nginx, told by epoll, would have closed it
// while idle: the request goes whole to a new connection, at once, and
// nothing is written to the half-closed one (a wait that lost the close
// would last until a timer).
func TestProxyPassIdleHalfClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	halfClose := make(chan struct{})
	late := make(chan int, 1) // bytes the first connection got after its half-close
	go func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(i int, c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					body := "one"
					if i > 0 {
						body = "two"
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"+body)
					if i == 0 {
						<-halfClose
						c.(*net.TCPConn).CloseWrite()
						c.SetReadDeadline(time.Now().Add(3 * time.Second))
						n, _ := io.Copy(io.Discard, br)
						late <- int(n)
						return
					}
				}
			}(i, c)
		}
	}()
	s, ctx := newBenchServer(t, `upstream backend { server `+ln.Addr().String()+`; keepalive 4; }
server {
    listen 127.0.0.1:18080;
    location / {
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_read_timeout 5s;
        proxy_pass http://backend;
    }
}`)
	var first net.Conn
	testHookSend = func(c net.Conn) {
		if first == nil {
			first = c
			return
		}
		if c != first {
			return
		}
		// the half-close lands now: after the pool's look, if it looked
		close(halfClose)
		for deadline := time.Now().Add(3 * time.Second); !netpeek.Closed(c); {
			if time.Now().After(deadline) {
				t.Error("the backend's FIN did not arrive")
				return
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(5 * time.Millisecond) // the poller sees it too
	}
	defer func() { testHookSend = nil }()
	for i, want := range []string{"one", "two"} {
		w := httptest.NewRecorder()
		start := time.Now()
		s.ServeHTTP(w, httptest.NewRequest("GET", "http://front/", nil).WithContext(ctx))
		if w.Code != 200 || w.Body.String() != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i+1, w.Code, w.Body.String(), want)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("request %d took %v", i+1, d)
		}
	}
	if n := <-late; n != 0 {
		t.Errorf("%d bytes were written to the half-closed connection, want none", n)
	}
}

// TestProxyPassIdlePastDeadlines: the idle cache leaves a connection's
// deadlines as they were (proxy_read_timeout's from its last read); they
// pass while it is idle, and its next request is still served on it.
func TestProxyPassIdlePastDeadlines(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	s, ctx := newBenchServer(t, `upstream backend { server `+ln.Addr().String()+`; keepalive 4; }
server {
    listen 127.0.0.1:18080;
    location / {
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_read_timeout 30ms;
        proxy_send_timeout 30ms;
        proxy_pass http://backend;
    }
}`)
	for i := range 3 {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", "http://front/", nil).WithContext(ctx))
		if w.Code != 200 || w.Body.String() != "ok" {
			t.Fatalf("request %d: %d %q", i+1, w.Code, w.Body.String())
		}
		time.Sleep(60 * time.Millisecond) // past both timeouts
	}
	if n := len(accepted); n != 1 {
		t.Errorf("%d connections, want 1 (the first kept)", n)
	}
}

// TestBackendConnGrace: a head wait keeps the read deadline the last one
// set while it is watchGrace ahead; a deadline the reader sets forgets it.
func TestBackendConnGrace(t *testing.T) {
	var bc backendConn
	t0 := monoTime()
	for _, tc := range []struct {
		at    time.Duration // after t0
		renew bool
	}{
		{0, true}, // none known
		{watchGrace / 2, false},
		{watchGrace, false},
		{(graceKept-1)*watchGrace + 1, true},
		{graceKept * watchGrace, false},
	} {
		before := bc.grace
		if got := bc.renewGrace(t0.Add(tc.at), time.Minute); got != tc.renew {
			t.Fatalf("at %v: renew %v, want %v", tc.at, got, tc.renew)
		}
		if want := t0.Add(tc.at + graceKept*watchGrace); tc.renew && !bc.grace.Equal(want) || !tc.renew && !bc.grace.Equal(before) {
			t.Fatalf("at %v: grace %v", tc.at, bc.grace.Sub(t0))
		}
	}
	c, d := net.Pipe()
	defer c.Close()
	defer d.Close()
	go d.Write([]byte("x"))
	r := deadlineReader{c: c, timeout: time.Second, kept: &bc.grace}
	if n, err := r.Read(make([]byte, 4)); n != 1 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}
	if !bc.grace.IsZero() {
		t.Errorf("a read that set its deadline left the kept one: %v", bc.grace.Sub(t0))
	}
	if !bc.renewGrace(monoTime(), time.Minute) {
		t.Error("a forgotten deadline was kept")
	}
	// never past proxy_read_timeout
	if now := monoTime(); !bc.renewGrace(now, 2*watchGrace) || !bc.grace.Equal(now.Add(2*watchGrace)) {
		t.Errorf("grace %v ahead, want the limit", bc.grace.Sub(now))
	}
	if now := monoTime(); bc.renewGrace(now, 2*watchGrace) {
		t.Error("a deadline within the limit was not kept")
	}
	if now := monoTime(); !bc.renewGrace(now, watchGrace+watchGrace/2) {
		t.Error("a deadline past a shorter limit was kept")
	}
}

// TestDeadlineReaderUntil: after send's wait for the head ran out, the
// head's first read waits until proxy_read_timeout from the send, not that
// timeout again from now.
func TestDeadlineReaderUntil(t *testing.T) {
	c, d := net.Pipe()
	defer c.Close()
	defer d.Close()
	start := time.Now()
	r := deadlineReader{c: c, timeout: time.Minute, until: monoTime().Add(50 * time.Millisecond)}
	if _, err := r.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want the deadline", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the read waited %v: proxy_read_timeout from now", took)
	}
	if !r.until.IsZero() {
		t.Error("until stays for the next read")
	}
}
