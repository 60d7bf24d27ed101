package http1

import (
	"bufio"
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
