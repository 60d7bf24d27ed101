package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
