package http1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func readOne(raw string) (*Head, error) {
	p := DefaultParams()
	h, _, err := readHead(bufio.NewReaderSize(strings.NewReader(raw), readerSize), &p, false, nil)
	return h, err
}

// status is the verdict as a status (0: accepted; -1: the input ended).
func status(err error) int {
	var e *Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e.Status
	}
	return -1
}

func TestReadHeadVerdicts(t *testing.T) {
	long := strings.Repeat("a", 9000)
	for _, tc := range []struct {
		name, raw string
		want      int
	}{
		{"plain", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"leading CRLF", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", 0},
		{"folded", "GET / HTTP/1.1\r\nHost: a\r\n x\r\n\r\n", 400},
		{"CL and TE", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"two CL", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400},
		{"CL sign", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", 400},
		{"TE gzip", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"TE twice", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400}, // nginx 1.22: "client sent duplicate header line"
		{"TE on 1.0", "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400},
		{"two Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"no Host 1.0", "GET / HTTP/1.0\r\n\r\n", 0},
		{"TRACE", "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", 405},
		{"lower method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"HTTP/1.9", "GET / HTTP/1.9\r\nHost: a\r\n\r\n", 0},
		{"HTTP/0.9 version", "GET / HTTP/0.9\r\n\r\n", 400},
		{"leading zero", "GET / HTTP/01.1\r\nHost: a\r\n\r\n", 400},
		{"HTTP/0.9", "GET /\r\n", 0},
		{"HTTP/0.9 POST", "POST /\r\n", 400},
		{"absolute", "GET http://h:1/p?q HTTP/1.1\r\n\r\n", 0},
		{"absolute no path", "GET http://h HTTP/1.1\r\n\r\n", 0},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"space in URI", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"long URI", "GET /" + long + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"long header", "GET / HTTP/1.1\r\nHost: a\r\nX: " + long + "\r\n\r\n", StatusHeaderTooLarge},
		{"header past the read buffer", "GET / HTTP/1.1\r\nHost: a\r\nX: " + long[:6000] + "\r\n\r\n", 0},
		{"URI past the read buffer", "GET /" + long[:8000] + " HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"head past the buffers", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: "+long[:8000]+"\r\n", 5) + "\r\n", StatusHeaderTooLarge},
		{"bare CR", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400},
		{"NUL value", "GET / HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n", 400},
		{"space in name", "GET / HTTP/1.1\r\nHost: a\r\nX Y: 1\r\n\r\n", 400},
		{"no colon", "GET / HTTP/1.1\r\nHost: a\r\nFoo\r\n\r\n", 0},
		{"cut short", "GET / HTTP/1.1\r\nHost: a\r\n", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readOne(tc.raw)
			if got := status(err); got != tc.want {
				t.Errorf("%q: status %d (%v), want %d", tc.raw, got, err, tc.want)
			}
		})
	}
}

func TestReadHeadFields(t *testing.T) {
	h, err := readOne("\r\nGET http://Example.com:8/p?q=1 HTTP/1.1\r\nX_u: 1\r\nA@b: 2\r\nx-Y:  v \r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if h.Method != "GET" || h.URI != "/p?q=1" || h.Host != "Example.com:8" || h.Proto() != "HTTP/1.1" {
		t.Errorf("head %+v", h)
	}
	if len(h.Header) != 1 || h.Header.Get("X-Y") != "v" {
		t.Errorf("headers %v: want only X-Y (underscores and invalid names ignored)", h.Header)
	}
	if want := "GET http://Example.com:8/p?q=1 HTTP/1.1\r\nX_u: 1\r\nA@b: 2\r\nx-Y:  v \r\n\r\n"; string(h.Raw) != want {
		t.Errorf("raw %q, want %q", h.Raw, want)
	}
}

// TestReadHeadRepeated: a key sent on several lines gets its values in
// one list, in order, also in objects reused from an earlier request.
func TestReadHeadRepeated(t *testing.T) {
	p := DefaultParams()
	var x *reqObjects
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-B: 2\r\n\r\n",
		"GET / HTTP/1.1\r\nCookie: a=1\r\nHost: a\r\ncookie: b=2\r\nX-B: 3\r\nCOOKIE: c=3\r\n\r\n",
	} {
		h, _, err := readHead(bufio.NewReaderSize(strings.NewReader(raw), readerSize), &p, false, x)
		if err != nil {
			t.Fatal(err)
		}
		x = h.x
	}
	want := http.Header{"Host": {"a"}, "Cookie": {"a=1", "b=2", "c=3"}, "X-B": {"3"}}
	if got := x.head.Header; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("headers %v, want %v", got, want)
	}
}

func TestValidHost(t *testing.T) {
	for in, want := range map[string]string{
		"A.b.:80": "a.b", "[::1]:8": "[::1]", "x": "x", "a..b": "", "a/b": "", "": "", ".": "", "a b": "",
	} {
		got, ok := ValidHost(in)
		if (want == "") == ok || got != want {
			t.Errorf("ValidHost(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestChunkedBody(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{"3\r\nabc\r\n0\r\n\r\n", "abc", false},
		{"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: 1\r\n\r\n", "abcde", false},
		{"zz\r\n", "", true},
		{"+1\r\nx\r\n0\r\n\r\n", "", true},
		{"ffffffffffffffffff\r\nx\r\n", "", true},
		{"3\r\nabcX\r\n0\r\n\r\n", "abc", true},
	} {
		c := &conn{params: DefaultParams()}
		b := &body{c: c, br: bufio.NewReader(strings.NewReader(tc.in)), chunked: true}
		c.rwc = nopConn{}
		got, err := io.ReadAll(b)
		if string(got) != tc.want || (err != nil) != tc.bad {
			t.Errorf("%q: %q, %v", tc.in, got, err)
		}
	}
}

func TestStatusLine(t *testing.T) {
	for code, want := range map[int]string{200: "200 OK", 302: "302 Moved Temporarily", 405: "405 Not Allowed",
		503: "503 Service Temporarily Unavailable", 299: "299 ", 306: "306 ", 418: "418 "} {
		if got := StatusLine(code); got != want {
			t.Errorf("StatusLine(%d) = %q, want %q", code, got, want)
		}
	}
}

// FuzzReadHead: no input panics the parser, and what it accepts is
// unambiguous: never both Content-Length and Transfer-Encoding, one Host at
// most, a URI starting with "/", a Content-Length of digits.
func FuzzReadHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET http://h:1/p HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
		"\r\nGET /\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n x\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		h, err := readOne(raw)
		if err != nil {
			return
		}
		if !strings.HasPrefix(h.URI, "/") || h.Method == "" {
			t.Fatalf("accepted %q: method %q uri %q", raw, h.Method, h.URI)
		}
		_, cl := h.Header["Content-Length"]
		_, te := h.Header["Transfer-Encoding"]
		if cl && te || len(h.Header["Host"]) > 1 || len(h.Header["Content-Length"]) > 1 {
			t.Fatalf("accepted an ambiguous head %q: %v", raw, h.Header)
		}
		if cl {
			if _, ok := parseLength(h.Header.Get("Content-Length")); !ok {
				t.Fatalf("accepted Content-Length %q", h.Header.Get("Content-Length"))
			}
		}
		var _ http.Header = h.Header
	})
}

// nopConn stands in for a connection where only deadlines are set.
type nopConn struct{ net.Conn }

func (nopConn) SetReadDeadline(time.Time) error { return nil }

func TestInvalidHeaderLineMessage(t *testing.T) {
	for raw, want := range map[string]string{
		"GET / HTTP/1.1\r\nHost: a\r\n x: folded\r\n\r\n": `client sent invalid header line: "\x20..."`,
		"GET / HTTP/1.1\r\nHost: a\r\nX y: 1\r\n\r\n":     `client sent invalid header line: "X\x20..."`,
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n":    `client sent invalid header line: "X: a\x0d..."`,
	} {
		_, err := readOne(raw)
		if err == nil || err.Error() != want {
			t.Errorf("%q: %v, want %s", raw, err, want)
		}
	}
}
