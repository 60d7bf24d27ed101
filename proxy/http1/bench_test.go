package http1

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
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
		if _, _, err := readHead(br, &p, false); err != nil {
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
