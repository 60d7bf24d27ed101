package proxy

import (
	"crypto/tls"
	"encoding/binary"
	"net"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"ngxsockify/proxy/http1"
)

// h2Tap reads an HTTP/2 connection's header blocks beside x/net/http2,
// which keeps a request's headers in a map, to know the order nginx's
// header list has them in: the fields in the order the client sent them,
// under their names as sent (lower case), "host" for :authority first,
// and the cookie fields joined into one "cookie" at the end
// (ngx_http_v2_construct_cookie_header). proxy_pass sends that list.
//
// Its own HPACK decoder follows the client's dynamic table: every header
// block (trailers too) goes through it, in the order of the connection.
// The handler of a stream claims the head that matches its request; a
// block x/net/http2 refuses is never claimed and is dropped after
// h2TapPending others.
type h2Tap struct {
	net.Conn

	mu      sync.Mutex
	skip    int    // bytes of the preface or of a frame's payload to pass over
	hdr     []byte // a frame header being gathered (9 bytes)
	payload []byte // a HEADERS or CONTINUATION payload being gathered
	ftype   http2.FrameType
	flags   http2.Flags
	plen    int
	block   []byte // the header block being gathered (across CONTINUATIONs)
	first   bool   // the block opens its stream (not trailers)
	dec     *hpack.Decoder
	cur     h2Head
	pending []h2Head
	last    uint32 // the highest stream opened (a client opens them in order)
	broken  bool   // a frame the tap cannot follow: it stops

	// The first frame: nginx takes a connection whose preface a frame
	// other than SETTINGS follows (RFC 9113 asks for SETTINGS; nginx does
	// not check), x/net/http2 ends it with PROTOCOL_ERROR. Until that
	// frame's type is known (settled), Read holds its bytes in head; an
	// empty SETTINGS goes before a frame of another type, so that
	// x/net/http2 serves the connection on, with the defaults nginx
	// assumes. out is what Read hands out before reading on.
	settled bool
	head    []byte
	out     []byte
}

// h2TLSTap is h2Tap over TLS: x/net/http2 asks it for the TLS state.
type h2TLSTap struct{ *h2Tap }

func (t h2TLSTap) ConnectionState() tls.ConnectionState {
	return t.Conn.(*tls.Conn).ConnectionState()
}

// h2TapPending bounds the heads no handler claimed.
const h2TapPending = 64

// h2Head is one request's head as the tap decoded it.
type h2Head struct {
	method, path string
	names        []string // the header list's names, in order
	n            int      // regular fields, cookies apart
	cookie       bool     // cookie fields came: one "cookie" ends the list
	hosts        []string // the values of :authority and of host fields
	field        int      // the longest name or value as sent (HPACK strings: Huffman-coded or not)
	list         int      // the names and values, pseudo-header fields too
	size         int      // the header block's bytes as sent, HPACK-coded ($request_length)
}

func newH2Tap(c net.Conn) (*h2Tap, net.Conn) {
	t := &h2Tap{Conn: c, skip: len(http2.ClientPreface)}
	t.dec = hpack.NewDecoder(4096, t.field)
	if _, ok := c.(*tls.Conn); ok {
		return t, h2TLSTap{t}
	}
	return t, t
}

func (t *h2Tap) Read(p []byte) (int, error) {
	if !t.settled && len(t.out) == 0 {
		if err := t.firstFrame(); err != nil && len(t.out) == 0 {
			return 0, err
		}
	}
	if len(t.out) > 0 {
		n := copy(p, t.out)
		t.out = t.out[n:]
		t.mu.Lock()
		t.feed(p[:n])
		t.mu.Unlock()
		return n, nil
	}
	n, err := t.Conn.Read(p)
	if n > 0 {
		t.mu.Lock()
		t.feed(p[:n])
		t.mu.Unlock()
	}
	return n, err
}

// firstFrame reads the rest of the preface, then the first frame's length
// and type: the preface goes out as it comes (x/net/http2 reads it
// before anything else, with a deadline), the frame's bytes are held in
// head until its type is known (settled). It leaves what to hand out in
// out: an empty SETTINGS before a frame of another type.
func (t *h2Tap) firstFrame() error {
	preface := len(http2.ClientPreface)
	var buf [256]byte
	for len(t.out) == 0 {
		if len(t.head) < preface {
			n, err := t.Conn.Read(buf[:preface-len(t.head)])
			t.head = append(t.head, buf[:n]...)
			t.out = append(t.out, buf[:n]...)
			if string(t.head) != http2.ClientPreface[:len(t.head)] {
				t.settled = true // not HTTP/2: x/net/http2 says so
			}
			if err != nil || t.settled {
				t.settled = true
				return err
			}
			continue
		}
		n, err := t.Conn.Read(buf[:])
		t.head = append(t.head, buf[:n]...)
		rest := t.head[preface:]
		if err != nil || len(rest) < 4 {
			if err != nil {
				t.settled, t.out, t.head = true, rest, nil
				return err
			}
			continue
		}
		t.settled = true
		if http2.FrameType(rest[3]) != http2.FrameSettings {
			t.out = append(t.out, 0, 0, 0, byte(http2.FrameSettings), 0, 0, 0, 0, 0)
		}
		t.out = append(t.out, rest...)
		t.head = nil
	}
	return nil
}

// feed follows the frames in b.
func (t *h2Tap) feed(b []byte) {
	for len(b) > 0 && !t.broken {
		switch {
		case t.skip > 0:
			n := min(t.skip, len(b))
			t.skip -= n
			b = b[n:]
		case t.payload != nil:
			n := min(t.plen-len(t.payload), len(b))
			t.payload = append(t.payload, b[:n]...)
			b = b[n:]
			if len(t.payload) == t.plen {
				t.frame(t.payload)
				t.payload = nil
			}
		default:
			n := min(9-len(t.hdr), len(b))
			t.hdr = append(t.hdr, b[:n]...)
			b = b[n:]
			if len(t.hdr) < 9 {
				break
			}
			t.plen = int(t.hdr[0])<<16 | int(t.hdr[1])<<8 | int(t.hdr[2])
			t.ftype, t.flags = http2.FrameType(t.hdr[3]), http2.Flags(t.hdr[4])
			stream := binary.BigEndian.Uint32(t.hdr[5:]) & (1<<31 - 1)
			t.hdr = t.hdr[:0]
			switch t.ftype {
			case http2.FrameHeaders:
				t.first = stream > t.last
				t.last = max(t.last, stream)
				t.block = t.block[:0]
			case http2.FrameContinuation:
			default:
				t.skip = t.plen
				continue
			}
			t.payload = make([]byte, 0, t.plen)
			if t.plen == 0 {
				t.frame(nil)
				t.payload = nil
			}
		}
	}
}

// frame takes a HEADERS or CONTINUATION payload.
func (t *h2Tap) frame(p []byte) {
	if t.ftype == http2.FrameHeaders {
		pad := 0
		if t.flags.Has(http2.FlagHeadersPadded) {
			if len(p) < 1 {
				t.broken = true
				return
			}
			pad, p = int(p[0]), p[1:]
		}
		if t.flags.Has(http2.FlagHeadersPriority) {
			if len(p) < 5 {
				t.broken = true
				return
			}
			p = p[5:]
		}
		if pad > len(p) {
			t.broken = true
			return
		}
		p = p[:len(p)-pad]
	}
	t.block = append(t.block, p...)
	if !t.flags.Has(http2.FlagHeadersEndHeaders) {
		return
	}
	t.cur = h2Head{}
	if _, err := t.dec.Write(t.block); err != nil || t.dec.Close() != nil {
		t.broken = true
		return
	}
	if !t.first {
		return // trailers: decoded for the dynamic table only
	}
	h := t.cur
	h.size = len(t.block) - sizeUpdates(t.block)
	h.field = longestString(t.block)
	if h.cookie {
		h.names = append(h.names, "cookie")
	}
	if len(t.pending) == h2TapPending {
		t.pending = t.pending[1:]
	}
	t.pending = append(t.pending, h)
}

// sizeUpdates is the bytes of the dynamic table size updates that open an
// HPACK block (001xxxxx, a 5-bit prefix integer): nginx's $request_length
// leaves them out.
func sizeUpdates(b []byte) int {
	n := 0
	for n < len(b) && b[n]&0xe0 == 0x20 {
		i := n + 1
		if b[n]&0x1f == 0x1f {
			for i < len(b) && b[i]&0x80 != 0 {
				i++
			}
			i++
		}
		n = min(i, len(b))
	}
	return n
}

// longestString is the length of the longest string literal of an HPACK
// block as coded (Huffman-coded or not), which nginx holds against a
// large header buffer. The block is one the decoder took.
func longestString(b []byte) int {
	// integer reads a prefix integer of n bits from b[i:]: its value and
	// the index past it (-1: malformed)
	integer := func(i, n int) (int, int) {
		mask := 1<<n - 1
		v := int(b[i]) & mask
		i++
		if v < mask {
			return v, i
		}
		for m := 0; i < len(b) && m <= 21; m += 7 {
			c := b[i]
			i++
			v += int(c&0x7f) << m
			if c&0x80 == 0 {
				return v, i
			}
		}
		return 0, -1
	}
	longest := 0
	str := func(i int) int { // a string literal at b[i:]: the index past it
		if i < 0 || i >= len(b) {
			return -1
		}
		n, j := integer(i, 7)
		if j < 0 || j+n > len(b) {
			return -1
		}
		longest = max(longest, n)
		return j + n
	}
	for i := 0; i >= 0 && i < len(b); {
		c := b[i]
		switch {
		case c&0x80 != 0: // indexed field
			_, i = integer(i, 7)
		case c&0xe0 == 0x20: // dynamic table size update
			_, i = integer(i, 5)
		default: // a literal: 6-bit index with indexing, else 4-bit
			n := 4
			if c&0x40 != 0 {
				n = 6
			}
			var idx int
			idx, i = integer(i, n)
			if i >= 0 && idx == 0 {
				i = str(i) // the name
			}
			i = str(i) // the value
		}
	}
	return longest
}

// field is the decoder's emit function.
func (t *h2Tap) field(f hpack.HeaderField) {
	h := &t.cur
	h.list += len(f.Name) + len(f.Value)
	switch f.Name {
	case ":method":
		h.method = f.Value
	case ":path":
		h.path = f.Value
	case ":authority": // before the regular fields
		h.names = append(h.names, "host")
		h.hosts = append(h.hosts, f.Value)
	case "cookie":
		h.cookie = true
	case "host": // apart from n, as claim counts
		h.names = append(h.names, "host")
		h.hosts = append(h.hosts, f.Value)
	default:
		if !strings.HasPrefix(f.Name, ":") {
			h.names = append(h.names, f.Name)
			h.n++
		}
	}
}

// claim takes the head the tap decoded for r (nil when it has none).
func (t *h2Tap) claim(r *http.Request) *h2Head {
	n := 0
	for k, vs := range r.Header {
		if k != "Cookie" && k != "Host" {
			n += len(vs)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, h := range t.pending {
		if h.method == r.Method && h.path == r.RequestURI && h.n == n {
			t.pending = append(t.pending[:i], t.pending[i+1:]...)
			return &h
		}
	}
	return nil
}

// rawHead is the request's head as received (http1.RawHeader), where
// proxy_pass finds the order and spelling of its header list: for an
// HTTP/2 request, a request line and a line per name of its list, with
// no values (h2Tap).
func (rq *request) rawHead() string {
	if raw := http1.RawHeader(rq.r); raw != nil {
		return rawString(raw)
	}
	hw, ok := rq.mainRequest().wire.(*h2Writer)
	if !ok || hw.head == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString("HTTP/2.0\n")
	for _, name := range hw.head.names {
		b.WriteString(name + ":\n")
	}
	return b.String()
}
