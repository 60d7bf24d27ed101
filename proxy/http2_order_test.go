package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2Tap feeds the tap a connection's bytes one at a time: a padded
// HEADERS with priority cut into a CONTINUATION, DATA, trailers, and a
// second stream whose fields come from the dynamic table.
func TestH2Tap(t *testing.T) {
	var wire, hb bytes.Buffer
	wire.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&wire, nil)
	fr.WriteSettings()
	enc := hpack.NewEncoder(&hb)
	block := func(fields ...string) []byte {
		hb.Reset()
		for i := 0; i < len(fields); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return append([]byte(nil), hb.Bytes()...)
	}
	req := []string{":method", "POST", ":scheme", "http", ":path", "/a?b", ":authority", "h.test",
		"x-b", "1", "cookie", "c=1", "accept", "*/*", "cookie", "d=2", "x-b", "2"}
	b := block(req...)
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:5], PadLength: 3,
		Priority: http2.PriorityParam{StreamDep: 0, Weight: 15}})
	fr.WriteContinuation(1, true, b[5:])
	fr.WriteData(1, false, []byte("body"))
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block("x-trailer", "t"), EndStream: true, EndHeaders: true})
	req[1] = "GET"
	b3 := block(req...)
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: b3, EndStream: true, EndHeaders: true})

	tap, _ := newH2Tap(nil)
	for _, c := range wire.Bytes() {
		tap.feed([]byte{c})
	}
	if tap.broken {
		t.Fatal("the tap lost the frames")
	}
	r := &http.Request{Method: "GET", RequestURI: "/a?b", Header: http.Header{"X-B": {"1", "2"}, "Accept": {"*/*"}, "Cookie": {"c=1; d=2"}}}
	want := &h2Head{method: "GET", path: "/a?b", names: []string{"host", "x-b", "accept", "x-b", "cookie"}, n: 3, cookie: true,
		hosts: []string{"h.test"}, size: len(b3)}
	for _, f := range req {
		want.list += len(f)
	}
	want.field = longestString(b3) // TestLongestString
	if d := cmp.Diff(want, tap.claim(r), cmp.AllowUnexported(h2Head{})); d != "" {
		t.Errorf("stream 3 (-want +got):\n%s", d)
	}
	r.Method = "POST"
	if h := tap.claim(r); h == nil || h.method != "POST" || h.size != len(b) {
		t.Errorf("stream 1: %+v (size %d: padding and priority apart)", h, len(b))
	}
	if h := tap.claim(r); h != nil {
		t.Errorf("claimed twice: %+v", h)
	}
}

// byteConn is a connection whose reads come from r, a byte or two at a
// time.
type byteConn struct {
	net.Conn
	r *bytes.Reader
}

func (c byteConn) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), 2)]) }

// TestH2TapFirstFrame: an empty SETTINGS goes before a first frame of
// another type (nginx takes such a connection, x/net/http2 would end it);
// a connection that opens with SETTINGS, or that is not HTTP/2, passes
// as it is.
func TestH2TapFirstFrame(t *testing.T) {
	var wu, st bytes.Buffer
	http2.NewFramer(&wu, nil).WriteWindowUpdate(0, 1)
	http2.NewFramer(&st, nil).WriteSettings()
	empty := []byte{0, 0, 0, 4, 0, 0, 0, 0, 0}
	for _, c := range []struct{ in, want string }{
		{http2.ClientPreface + wu.String(), http2.ClientPreface + string(empty) + wu.String()},
		{http2.ClientPreface + st.String() + wu.String(), http2.ClientPreface + st.String() + wu.String()},
		{"GET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\n\r\n"},
		{http2.ClientPreface + "\x00\x00", http2.ClientPreface + "\x00\x00"},
	} {
		_, tc := newH2Tap(byteConn{r: bytes.NewReader([]byte(c.in))})
		got, err := io.ReadAll(tc)
		if err != nil || string(got) != c.want {
			t.Errorf("%q: read %q (%v), want %q", c.in, got, err, c.want)
		}
	}
}

// TestLongestString: the longest string literal of a block as coded.
func TestLongestString(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 200)
	var huff bytes.Buffer
	hpack.NewEncoder(&huff).WriteField(hpack.HeaderField{Name: "x-long", Value: string(long)})
	for _, c := range []struct {
		b    []byte
		want int
	}{
		{nil, 0},
		{[]byte{0x82, 0x86}, 0}, // indexed
		{append([]byte{0x00, 0x03, 'a', 'b', 'c', 0x05}, "hello"...), 5},          // raw, new name
		{append(append([]byte{0x0f, 0x2b, 0x7f, 200 - 127}, long...), 0x82), 200}, // raw, indexed name 58, multi-byte length
		{append([]byte{0x3f, 0xe1, 0x1f, 0x44, 0x03}, "abc"...), 3},               // size update, then :path
		{huff.Bytes(), int(hpack.HuffmanEncodeLength(string(long)))},              // Huffman-coded
		{[]byte{0x00, 0x7f}, 0}, // cut short
	} {
		if got := longestString(c.b); got != c.want {
			t.Errorf("longestString(% x) = %d, want %d", c.b, got, c.want)
		}
	}
}

// TestSizeUpdates: the dynamic table size updates that open a block are
// not part of $request_length.
func TestSizeUpdates(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want int
	}{
		{nil, 0}, {[]byte{0x82}, 0}, {[]byte{0x20, 0x82}, 1}, {[]byte{0x3f, 0xe1, 0x1f, 0xc1, 0x82}, 3},
		{[]byte{0x3f, 0xe1, 0x1f, 0x20, 0x82}, 4}, {[]byte{0x3f, 0xe1}, 2},
	} {
		if got := sizeUpdates(c.b); got != c.want {
			t.Errorf("sizeUpdates(% x) = %d, want %d", c.b, got, c.want)
		}
	}
}
