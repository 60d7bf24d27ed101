package http1

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"weak"

	"ngxsockify/proxy/internal/handoff"
)

// serve runs a Server with h on a loopback listener for the test.
func serve(t *testing.T, h http.HandlerFunc) string {
	_, addr := startServer(t, h)
	return addr
}

// startServer is serve that also returns the Server.
func startServer(t *testing.T, h http.HandlerFunc) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return s, ln.Addr().String()
}

// sayHi answers "hi" with its length.
func sayHi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Length", "2")
	io.WriteString(w, "hi")
}

// exchange sends raw and reads until the server closes or is quiet.
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, raw)
	var out []byte
	buf := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return string(out) + "[open]"
			}
			return string(out) + "[closed]"
		}
	}
}

func dropDate(s string) string {
	i := strings.Index(s, "Date: ")
	if i < 0 {
		return s
	}
	j := strings.Index(s[i:], "\r\n")
	return s[:i] + s[i+j+2:]
}

func TestServeResponses(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream":
			w.Header().Set("X-Late", "1")
			w.Header().Set("Content-Type", "text/plain")
			w.(Wire).Note("X-Late")
			io.WriteString(w, "ab")
			w.(http.Flusher).Flush()
			io.WriteString(w, "c")
		case "/len":
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, "xyz")
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Length", "3")
			w.Write(b[:3])
		}
	})
	for _, tc := range []struct{ raw, want string }{
		{"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nX-Late: 1\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n[open]"},
		{"GET /stream HTTP/1.0\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nX-Late: 1\r\n\r\nabc[closed]"},
		{"GET /stream\r\n", "abc[closed]"},
		{"HEAD /len HTTP/1.1\r\nHost: a\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n[open]"},
		{"GET /len HTTP/1.1\r\nHost: a\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nxy[open]"},
		{"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nabcd",
			"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc[open]"},
		{"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\nGET /len HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabcHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nxy[closed]"},
	} {
		if got := dropDate(dropDate(exchange(t, addr, tc.raw))); got != tc.want {
			t.Errorf("%q:\n got %q\nwant %q", tc.raw, got, tc.want)
		}
	}
}

// TestServeListedOrder: a Server, Content-Length or Location noted goes out
// in the noted order, after the framing, as an entry of nginx's header list;
// one not noted, or noted then unnoted, keeps the header filter's place
// (Content-Type always does); a name unnoted and noted again goes last.
func TestServeListedOrder(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		h, wire := w.Header(), w.(Wire)
		h.Set("Content-Type", "text/plain")
		h.Set("Last-Modified", "lm")
		for _, k := range []string{"X-A", "Server", "Content-Type", "X-B", "Location", "Content-Length"} {
			if k == "Content-Length" {
				h.Set(k, "2")
			} else {
				h.Set(k, strings.ToLower(k))
			}
			wire.Note(k)
		}
		wire.Unnote("Location")
		wire.Unnote("X-A")
		wire.Note("X-A")
		io.WriteString(w, "ok")
	})
	want := "HTTP/1.1 200 OK\r\nContent-Type: content-type\r\nLast-Modified: lm\r\nLocation: location\r\n" +
		"Connection: close\r\nServer: server\r\nX-B: x-b\r\nContent-Length: 2\r\nX-A: x-a\r\n\r\nok[closed]"
	if got := dropDate(exchange(t, addr, "GET / HTTP/1.0\r\n\r\n")); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestServeOwnVary: under OwnVary the first Vary value goes out after the
// framing, spelled as nginx spells its own, the others in their noted place.
func TestServeOwnVary(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		h, wire := w.Header(), w.(Wire)
		h["X-A"] = []string{"a"}
		wire.Note("X-A")
		h["vary"] = []string{"Accept-Encoding", "Cookie"}
		wire.Note("vary")
		h["X-B"] = []string{"b"}
		wire.Note("X-B")
		wire.OwnVary()
		h.Set("Content-Length", "2")
		io.WriteString(w, "ok")
	})
	want := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\nVary: Accept-Encoding\r\n" +
		"X-A: a\r\nvary: Cookie\r\nX-B: b\r\n\r\nok[closed]"
	if got := dropDate(exchange(t, addr, "GET / HTTP/1.0\r\n\r\n")); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestServeHijack: the hijacker gets the bytes behind the request head.
// One that gives the reader back (websockify does, once it copied them)
// leaves nothing of its connection to the next, which may get the same
// reader from the pool; the reader of a body not read yet stays.
func TestServeHijack(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		rr := w.(interface{ ReleaseReader(*bufio.Reader) })
		if r.Method == http.MethodPost {
			rr.ReleaseReader(brw.Reader)
			b, _ := io.ReadAll(r.Body)
			io.WriteString(c, "body:"+string(b))
			return
		}
		early := make([]byte, brw.Reader.Buffered())
		brw.Read(early)
		rr.ReleaseReader(bufio.NewReader(c)) // not Hijack's: ignored
		if brw.Reader.Size() != readerSize {
			t.Error("ReleaseReader took a reader it did not hand over")
		}
		rr.ReleaseReader(brw.Reader)
		io.WriteString(c, "early:"+string(early))
	})
	for _, early := range []string{"frame", "", "2"} {
		if got, want := exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"+early), "early:"+early+"[closed]"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if got, want := exchange(t, addr, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"), "body:hello[closed]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// The goroutines of an accept loop serve one connection after another,
// at most handoff.MaxIdle of them wait between connections, and they all end
// with Serve.
func TestServeAcceptLoopGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: http.HandlerFunc(sayHi)}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	addr := ln.Addr().String()
	const want = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi[closed]"
	var wg sync.WaitGroup
	for range 3 {
		for range 2 * int(handoff.MaxIdle) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if got := dropDate(exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")); got != want {
					t.Errorf("got %q", got)
				}
			}()
		}
		wg.Wait()
	}
	waitGoroutines := func(atMost int) int {
		n := runtime.NumGoroutine()
		for deadline := time.Now().Add(5 * time.Second); n > atMost && time.Now().Before(deadline); n = runtime.NumGoroutine() {
			time.Sleep(10 * time.Millisecond)
		}
		return n
	}
	// Serve's, the accepting one and the waiting ones
	if n, most := waitGoroutines(before+2+int(handoff.MaxIdle)), before+2+int(handoff.MaxIdle); n > most {
		t.Errorf("%d goroutines between connections, want at most %d", n, most)
	}
	s.Close()
	if err := <-served; err != ErrServerClosed {
		t.Errorf("Serve: %v", err)
	}
	if n := waitGoroutines(before); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}

func TestServeKeepaliveRequests(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "0")
	}), ConnParams: func(net.Conn) Params {
		p := DefaultParams()
		p.KeepaliveRequests, p.KeepaliveHeader = 2, 9*time.Second
		return p
	}}
	go s.Serve(ln)
	defer s.Close()
	got := exchange(t, ln.Addr().String(), strings.Repeat("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 3))
	got = strings.ReplaceAll(got, "\r\n", "|")
	want := "HTTP/1.1 200 OK|Content-Length: 0|Connection: keep-alive|Keep-Alive: timeout=9||" +
		"HTTP/1.1 200 OK|Content-Length: 0|Connection: close||[closed]"
	if d := dropDateBars(got); d != want {
		t.Errorf("got  %s\nwant %s", d, want)
	}
}

func dropDateBars(s string) string {
	var out []string
	for _, f := range strings.Split(s, "|") {
		if !strings.HasPrefix(f, "Date: ") {
			out = append(out, f)
		}
	}
	return strings.Join(out, "|")
}

func TestServePanic(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	logged := make(chan string, 1)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") }),
		Logf: func(format string, args ...any) { logged <- format }}
	go s.Serve(ln)
	defer s.Close()
	if got := exchange(t, ln.Addr().String(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); got != "[closed]" {
		t.Errorf("got %q", got)
	}
	if f := <-logged; !strings.Contains(f, "panic") {
		t.Errorf("logged %q", f)
	}
}

// TestLazyDeadline: a deadline set stands for a new one only while it is
// ahead and close enough (300 ms, at most an eighth of the timeout).
func TestLazyDeadline(t *testing.T) {
	now := monoNow()
	at := func(d time.Duration) mono { return now + mono(d) }
	set := func(t mono) lazyDeadline { return lazyDeadline{at: t, set: true} }
	for _, c := range []struct {
		name string
		l    lazyDeadline
		want mono
		d    time.Duration
		keep bool
	}{
		{"close", set(at(60*time.Second - 100*time.Millisecond)), at(60 * time.Second), 60 * time.Second, true},
		{"later by less", set(at(60*time.Second + 100*time.Millisecond)), at(60 * time.Second), 60 * time.Second, true},
		{"too far", set(at(59 * time.Second)), at(60 * time.Second), 60 * time.Second, false},
		{"short timeout", set(at(800 * time.Millisecond)), at(time.Second), time.Second, false},
		{"passed", set(at(-time.Millisecond)), at(100 * time.Millisecond), time.Minute, false},
		{"none", set(0), at(time.Minute), time.Minute, false},
		{"unknown", lazyDeadline{at: at(time.Minute)}, at(time.Minute), time.Minute, false},
	} {
		if got := c.l.keep(now, c.want, c.d); got != c.keep {
			t.Errorf("%s: keep %v, want %v", c.name, got, c.keep)
		}
	}
}

// TestServeTimeoutsKept: with deadlines set lazily, keepalive_timeout
// still closes an idle connection after requests, and
// client_header_timeout still ends a head that stops coming (408: closed
// without a reply).
func TestServeTimeoutsKept(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "0")
	}), ConnParams: func(net.Conn) Params {
		p := DefaultParams()
		p.KeepaliveTimeout, p.HeaderTimeout = 300*time.Millisecond, 200*time.Millisecond
		return p
	}}
	go s.Serve(ln)
	defer s.Close()
	for _, tail := range []string{"", "GET / HTTP/1.1\r\n"} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		for range 3 {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if n, err := c.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
				t.Fatalf("%q, %v", buf[:n], err)
			}
		}
		start := time.Now()
		io.WriteString(c, tail)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Read(buf)
		if err != io.EOF || n != 0 {
			t.Errorf("tail %q: %q, %v; want the connection closed", tail, buf[:n], err)
		}
		if d := time.Since(start); d < 150*time.Millisecond || d > time.Second {
			t.Errorf("tail %q: closed after %v", tail, d)
		}
		c.Close()
	}
}

// TestServeShutdownIdle: a connection that waits for its next request
// counts as idle: Shutdown closes it at once, after the answer.
func TestServeShutdownIdle(t *testing.T) {
	s, addr := startServer(t, sayHi)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil || !strings.HasSuffix(string(buf[:n]), "\r\n\r\nhi") {
		t.Fatalf("%q, %v", buf[:n], err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	if n, err := c.Read(buf); err != io.EOF {
		t.Errorf("after Shutdown: %q, %v; want EOF", buf[:n], err)
	}
}

// TestServeRequestDuringHandler: a request that comes while the one
// before is being answered (pipelined, in its own segment) is served at
// once, not after keepalive_timeout: the wait for it must not forget
// that the socket became readable meanwhile (as a wait that starts with
// RawConn.Read would: it resets the poller's readiness first).
func TestServeRequestDuringHandler(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(100 * time.Millisecond)
		}
		sayHi(w, r)
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(30 * time.Millisecond) // read by now, the handler sleeping
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for strings.Count(string(got), "\r\n\r\nhi") < 2 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("got %q, %v; want two answers", got, err)
		}
		got = append(got, buf[:n]...)
	}
}

// TestHijackedKeepsNoConn: the writer and request of a hijacked request
// (which a tunnel keeps for its access-log line) keep nothing of the
// connection object once detached, and the writer still answers
// RequestLength and BytesSent.
func TestHijackedKeepsNoConn(t *testing.T) {
	type kept struct {
		w    http.ResponseWriter
		conn weak.Pointer[conn]
	}
	keptc := make(chan kept, 1)
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		io.WriteString(c, "hijacked")
		c.Close()
		k := kept{w, weak.Make(w.(*response).c)}
		// the request's context leads to the connection: a keeper of the
		// request replaces it (as package proxy does)
		*r = *r.WithContext(context.Background())
		w.(interface{ Detach() }).Detach()
		keptc <- k
	})
	const req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	if got, want := exchange(t, addr, req), "hijacked[closed]"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	k := <-keptc
	for i := 0; i < 50 && k.conn.Value() != nil; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if k.conn.Value() != nil {
		t.Error("the writer of a hijacked request keeps its connection")
	}
	wire := k.w.(Wire)
	if n := wire.RequestLength(); n != int64(len(req)) {
		t.Errorf("RequestLength %d, want %d", n, len(req))
	}
	if n := wire.BytesSent(); n != 0 {
		t.Errorf("BytesSent %d, want 0 (the hijacker wrote)", n)
	}
}
