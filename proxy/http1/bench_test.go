package http1

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// upgradeHead is a noVNC handshake as browsers send it.
const upgradeHead = "GET /websockify?token=abc HTTP/1.1\r\nHost: console.example.com\r\n" +
	"Connection: Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n" +
	"Upgrade: websocket\r\nOrigin: https://console.example.com\r\nSec-WebSocket-Version: 13\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"

// BenchmarkReadHead is the parser's cost per handshake head, and
// BenchmarkReadHeadNetHTTP net/http's on the same bytes, for comparison.
func BenchmarkReadHead(b *testing.B) {
	p := DefaultParams()
	r := strings.NewReader(upgradeHead)
	br := bufio.NewReaderSize(r, p.LargeBufferSize)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(upgradeHead)
		br.Reset(r)
		if _, _, err := readHead(br, &p, false, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadHeadReused is BenchmarkReadHead with the objects of the
// request before, as a kept-alive connection reads its heads.
func BenchmarkReadHeadReused(b *testing.B) {
	p := DefaultParams()
	r := strings.NewReader(upgradeHead)
	br := bufio.NewReaderSize(r, p.LargeBufferSize)
	var x *reqObjects
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(upgradeHead)
		br.Reset(r)
		h, _, err := readHead(br, &p, false, x)
		if err != nil {
			b.Fatal(err)
		}
		x = h.x
	}
}

func BenchmarkReadHeadNetHTTP(b *testing.B) {
	r := strings.NewReader(upgradeHead)
	br := bufio.NewReaderSize(r, 4096)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(upgradeHead)
		br.Reset(r)
		if _, err := http.ReadRequest(br); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResponseHead is the writing of a proxied answer's head: the
// status line, the fixed headers, the framing and two more in the order
// noted.
func BenchmarkResponseHead(b *testing.B) {
	p := DefaultParams()
	c := &conn{s: &Server{}, rwc: discardConn{}, params: p, start: time.Now(), requests: 1}
	h := &Head{Method: "GET", URI: "/small", Major: 1, Minor: 1, Header: http.Header{"Host": {"localhost"}}}
	r := &http.Request{Method: "GET", Header: h.Header}
	b.ReportAllocs()
	for b.Loop() {
		w := newResponse(c, r, h)
		hd := w.Header()
		hd["Content-Type"] = []string{"text/plain"}
		hd["Content-Length"] = []string{"100"}
		hd["X-Cache"] = []string{"MISS"}
		w.Note("X-Cache")
		hd["Vary"] = []string{"Accept-Encoding"}
		w.Note("Vary")
		w.WriteHeader(http.StatusOK)
		w.finish()
	}
}

// discardConn is a connection that drops what is written to it.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }

// smallGet is what wrk sends for each request of the small-GET runs.
const smallGet = "GET /small HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"

// BenchmarkServeKeepalive is the layer's work for one small GET on a
// kept-alive connection: waiting for the request, reading its head, the
// request objects, a proxied answer's head and body, and the flush.
func BenchmarkServeKeepalive(b *testing.B) {
	body := []byte(strings.Repeat("0", 100))
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Server"] = []string{"ngxsockify"}
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = []string{"100"}
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	})}
	rc := &repeatConn{req: smallGet}
	p := DefaultParams()
	p.KeepaliveRequests = 1 << 62 // as the small-GET runs' keepalive_requests
	c := &conn{s: s, sock: rc, rwc: rc, raw: rc, params: p, start: time.Now(), ctx: context.Background()}
	c.br = bufio.NewReaderSize(rc, readerSize)
	b.ReportAllocs()
	for b.Loop() {
		if !c.serveOne() {
			b.Fatal("connection closed")
		}
	}
}

// repeatConn is a connection on which the client sends req each time it
// is read, and what is written is dropped.
type repeatConn struct {
	net.Conn
	req string
}

func (c *repeatConn) Read(p []byte) (int, error)     { return copy(p, c.req), nil }
func (*repeatConn) Write(p []byte) (int, error)      { return len(p), nil }
func (*repeatConn) SetReadDeadline(time.Time) error  { return nil }
func (*repeatConn) SetWriteDeadline(time.Time) error { return nil }
func (*repeatConn) SetDeadline(time.Time) error      { return nil }
func (*repeatConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
