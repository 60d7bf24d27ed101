package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
)

// BenchmarkServeProxyPass measures the request path of a small proxied GET
// with a backend keep-alive pool (the setting of test/bench/proxy.sh's
// "small"), without the client connection: the backend is a loopback
// server answering 100 bytes on kept connections.
func BenchmarkServeProxyPass(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	answer := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n%s", strings.Repeat("0", 100))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if _, err := io.WriteString(c, answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	s, ctx := newBenchServer(b, `upstream backend { server `+ln.Addr().String()+`; keepalive 16; }
server {
    listen 127.0.0.1:18080;
    location / {
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://backend;
    }
}`)
	req := httptest.NewRequest("GET", "http://front/small", nil).WithContext(ctx)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 200 || w.Body.Len() != 100 {
			b.Fatalf("status %d, %d bytes", w.Code, w.Body.Len())
		}
	}
}

// TestBackendBody: a known length is read from what came with the head,
// then from the connection, never past it; what is left of the head's
// bytes tells the caller not to reuse the connection.
func TestBackendBody(t *testing.T) {
	b := &backendBody{rest: []byte("hel"), rd: strings.NewReader("lo, world"), left: 5}
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "hello" {
		t.Fatalf("%q, %v", got, err)
	}
	b = &backendBody{rest: []byte("hello, world"), rd: strings.NewReader(""), left: 5}
	if got, _ = io.ReadAll(b); string(got) != "hello" || len(b.rest) == 0 {
		t.Fatalf("%q, rest %q", got, b.rest)
	}
	b = &backendBody{rest: []byte("he"), rd: strings.NewReader("y"), left: -1}
	if got, _ = io.ReadAll(b); string(got) != "hey" {
		t.Fatalf("to the end: %q", got)
	}
}

// BenchmarkProxyPassWire is test/bench/proxy.sh's small request through
// the whole server: a client on a kept-alive loopback connection, the
// connection layer (proxy/http1), the phases and proxy_pass to a backend
// kept in the upstream's pool. The backend and the client are raw loops
// that allocate nothing, so allocs/op are the server's.
func BenchmarkProxyPassWire(b *testing.B) {
	benchProxyPassWire(b, "GET /small HTTP/1.1\r\nHost: localhost\r\nUser-Agent: wrk\r\n\r\n")
}

// BenchmarkProxyPassWireLogged is BenchmarkProxyPassWire's request in a
// location with an access log in the combined format (to /dev/null: the
// line is made and written, the disk does nothing).
func BenchmarkProxyPassWireLogged(b *testing.B) {
	benchProxyPassWire(b, "GET /logged/small?x=1 HTTP/1.1\r\nHost: localhost\r\n"+
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"+
		"Referer: http://localhost/app/\r\n\r\n")
}

func benchProxyPassWire(b *testing.B, request string) {
	c := wireClient(b)
	req := []byte(request)
	buf := make([]byte, 4096)
	// the answer's length, from a first exchange
	want := exchange(b, c, req, buf, 0)
	b.ReportAllocs()
	user0, sys0 := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		exchange(b, c, req, buf, want)
	}
	b.StopTimer()
	// the process's CPU (user and system) per request: the server's, plus
	// the client's and the backend's few syscalls, which stay the same;
	// user time apart (the server's almost all)
	user1, sys1 := processCPU()
	b.ReportMetric(float64(user1-user0+sys1-sys0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(user1-user0)/float64(b.N), "user-ns/op")
}

// processCPU is the user and system CPU time the process used so far.
func processCPU() (user, sys time.Duration) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// wire is BenchmarkProxyPassWire's server, started once for all its runs
// (benchmarks run the function several times).
var wire struct {
	once sync.Once
	addr string
	err  error
}

// wireClient connects to the wire server.
func wireClient(b testing.TB) net.Conn {
	wire.once.Do(func() {
		backend := rawBackend(nil)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			wire.err = err
			return
		}
		wire.addr = ln.Addr().String()
		ln.Close()
		cfg, err := nginxconf.LoadString("/t/nginx.conf", `events {}
http {
    upstream backend { server `+backend+`; keepalive 16; }
    server {
        listen `+wire.addr+`;
        access_log off;
        keepalive_requests 1000000;
        location / {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://backend;
        }
        location /logged/ {
            access_log /dev/null;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://backend;
        }
    }
}`, nginxconf.LoadOptions{Prefix: "/t"})
		if err != nil {
			wire.err = err
			return
		}
		s, err := New(cfg, Options{ErrorLog: NewErrorLog(discard{}, ngxlog.Err)})
		if err == nil {
			err = s.Listen()
		}
		wire.err = err
	})
	if wire.err != nil {
		b.Fatal(wire.err)
	}
	c, err := net.Dial("tcp", wire.addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// exchange sends req on c and reads an answer of n bytes (n 0: what one
// read gives, which must end with a 100-byte body).
func exchange(tb testing.TB, c net.Conn, req []byte, buf []byte, n int) int {
	if _, err := c.Write(req); err != nil {
		tb.Fatal(err)
	}
	got := 0
	for got == 0 || got < n {
		m, err := c.Read(buf[got:])
		if err != nil {
			tb.Fatal(err)
		}
		got += m
	}
	if n == 0 && !strings.HasSuffix(string(buf[:got]), strings.Repeat("0", 100)) {
		tb.Fatalf("answer %q", buf[:got])
	}
	return got
}

// rawBackend answers every request head on its connections with 100
// bytes, allocating nothing per request; it returns its address. It
// stays until tb ends (nil: until the process ends).
func rawBackend(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	if tb != nil {
		tb.Cleanup(func() { ln.Close() })
	}
	answer := []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sat, 05 Dec 2026 03:00:00 GMT\r\n"+
		"Content-Type: text/plain\r\nContent-Length: 100\r\nConnection: keep-alive\r\n\r\n%s", strings.Repeat("0", 100)))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				have := 0
				for {
					n, err := c.Read(buf[have:])
					if err != nil {
						return
					}
					have += n
					// heads only (GETs): answer each one whole
					for {
						i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := c.Write(answer); err != nil {
							return
						}
						have = copy(buf, buf[i+4:have])
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
