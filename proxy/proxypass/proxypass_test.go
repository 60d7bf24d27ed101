package proxypass

import (
	"errors"
	"io"
	"net/textproto"
	"strings"
	"testing"
)

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name, in string
		limit    int
		err      error
		status   int
		length   int64
		chunked  bool
		http09   bool
		rest     string
	}{
		{name: "crlf", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok", limit: 4096, status: 200, length: 2, rest: "ok"},
		{name: "bare lf", in: "HTTP/1.0 404 Nope\nX-A: b\n\nbody", limit: 4096, status: 404, length: -1, rest: "body"},
		{name: "chunked wins", in: "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n", limit: 4096, status: 200, length: -1, chunked: true},
		{name: "no reason", in: "HTTP/1.1 204\r\n\r\n", limit: 4096, status: 204, length: -1},
		{name: "http/0.9", in: "hello world", limit: 4096, status: 200, length: -1, http09: true, rest: "hello world"},
		{name: "too big", in: "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("x", 100) + "\r\n\r\n", limit: 64, err: ErrTooBig},
		{name: "bad status", in: "HTTP/1.1 2x0 OK\r\n\r\n", limit: 4096, err: ErrNoValidHeader},
		{name: "bad header", in: "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", limit: 4096, err: ErrInvalidHeader},
		{name: "two lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", limit: 4096, err: ErrDuplicateLen},
		{name: "bad length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", limit: 4096, err: ErrBadLength},
		{name: "closed in head", in: "HTTP/1.1 200 OK\r\nX-A: b\r\n", limit: 4096, err: ErrClosed},
		{name: "closed at once", in: "", limit: 4096, err: ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// at once, and a byte at a time (Rest then holds what came
			// with the last byte of the head: nothing)
			for i, rd := range []io.Reader{strings.NewReader(tt.in), &oneByte{s: tt.in}} {
				res, err := ReadResponse(rd, tt.limit)
				if tt.err != nil || err != nil {
					if !errors.Is(err, tt.err) {
						t.Fatalf("reader %d: err %v, want %v", i, err, tt.err)
					}
					continue
				}
				rest := tt.rest
				if i == 1 && !tt.http09 {
					rest = ""
				} else if i == 1 {
					rest = tt.rest[:1]
				}
				if res.Status != tt.status || res.ContentLength != tt.length || res.Chunked != tt.chunked ||
					res.HTTP09 != tt.http09 || string(res.Rest) != rest {
					t.Errorf("reader %d: got %+v, rest %q", i, res, res.Rest)
				}
			}
		})
	}
}

// oneByte reads its string a byte at a time, as a slow backend sends it.
type oneByte struct{ s string }

func (r *oneByte) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	p[0] = r.s[0]
	r.s = r.s[1:]
	return 1, nil
}

func TestWriteRequest(t *testing.T) {
	got := string(WriteRequest(nil, "GET", "/x?y", "1.0", []Field{{Name: "Host", Value: "b"}, {Name: "Connection", Value: "close"}}))
	want := "GET /x?y HTTP/1.0\r\nHost: b\r\nConnection: close\r\n\r\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestResponseNotes checks what the head's parse notes for the proxy: a
// Connection field that says close (in any case, among other tokens), and
// whether any field is an X-Accel-* one.
func TestResponseNotes(t *testing.T) {
	tests := []struct {
		fields        string
		close, xaccel bool
	}{
		{"Content-Length: 0\r\n", false, false},
		{"Connection: keep-alive\r\n", false, false},
		{"connection: Keep-Alive, CLOSE\r\n", true, false},
		{"Connection: keep-alive\r\nConnection: close\r\n", true, false},
		{"X-Close: close\r\n", false, false},
		{"x-accel-redirect: /x\r\n", false, true},
		{"X-Accel-: 1\r\nX-Accel: 1\r\n", false, false},
		{"X-Accel-Limit-Rate: 10\r\nConnection: Close\r\n", true, true},
	}
	for _, tt := range tests {
		res, err := ReadResponse(strings.NewReader("HTTP/1.1 200 OK\r\n"+tt.fields+"\r\n"), 4096)
		if err != nil {
			t.Fatalf("%q: %v", tt.fields, err)
		}
		if res.Close != tt.close || res.XAccel != tt.xaccel {
			t.Errorf("%q: close %v, x-accel %v; want %v, %v", tt.fields, res.Close, res.XAccel, tt.close, tt.xaccel)
		}
	}
}

// TestFieldKey: parseField notes the names that are their own canonical
// key; the others get theirs from textproto.
func TestFieldKey(t *testing.T) {
	for _, tc := range []struct {
		name  string
		canon bool
	}{
		{"Content-Type", true}, {"Date", true}, {"X-Accel-Redirect", true}, {"WWW-Authenticate", false},
		{"content-type", false}, {"Content-type", false}, {"X-1a", true}, {"X-1A", false}, {"X-1-A", true},
		{"Etag", true}, {"ETag", false}, {"-A", true}, {"A-", true}, {"A_b", false}, {"Ä", false},
	} {
		f, ok := parseField(tc.name + ": v")
		if !ok || f.Canon != tc.canon {
			t.Errorf("%q: ok %v, Canon %v; want %v", tc.name, ok, f.Canon, tc.canon)
		}
		if k := textproto.CanonicalMIMEHeaderKey(tc.name); f.Key() != k {
			t.Errorf("%q: Key %q, want %q", tc.name, f.Key(), k)
		}
	}
}
