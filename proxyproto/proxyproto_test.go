package proxyproto

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func v2(verCmd, famTrans byte, body string) string {
	n := len(body)
	return v2Signature + string([]byte{verCmd, famTrans, byte(n >> 8), byte(n)}) + body
}

func TestRead(t *testing.T) {
	inet4 := "\xc0\x00\x02\x01\xc0\x00\x02\x02\x00\x7b\x16\x2e"
	inet6 := "\x20\x01\x0d\xb8" + "\x00\x00\x00\x00\x00\x00\x00\x00" + "\x00\x00\x00\x01" +
		"\x20\x01\x0d\xb8" + "\x00\x00\x00\x00\x00\x00\x00\x00" + "\x00\x00\x00\x02" + "\x00\x7b\x16\x2e"
	tests := []struct {
		name, in string
		want     *Header
		n        int    // the header's length
		err      string // nginx's message; "-": refused without one
	}{
		{name: "tcp4", in: "PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\nGET",
			want: &Header{"192.0.2.1", "192.0.2.2", 123, 5678}, n: 41},
		{name: "tcp6 as sent", in: "PROXY TCP6 2001:Db8::1 2001:Db8::2 123 5678\r\n",
			want: &Header{"2001:Db8::1", "2001:Db8::2", 123, 5678}, n: 45},
		{name: "port 0", in: "PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n", want: &Header{"1.2.3.4", "5.6.7.8", 0, 65535}, n: 36},
		{name: "family not checked", in: "PROXY TCP6 1.2.3.4 abc 1 2\r\n", want: &Header{"1.2.3.4", "abc", 1, 2}, n: 28},
		{name: "unknown", in: "PROXY UNKNOWN\r\nGET", n: 15},
		{name: "unknown with addresses", in: "PROXY UNKNOWN 1 2 3 4 5 6\r\n", n: 27},
		{name: "unknown without end", in: "PROXY UNKNOWN 1 2", err: `broken header: "PROXY UNKNOWN 1 2"`},
		{name: "no header", in: "GET / HTTP/1.0\r\n\r\n", err: "broken header: \"GET / HTTP/1.0\r\n\r\n\""},
		{name: "short", in: "PROXY ", err: `broken header: "PROXY "`},
		{name: "split", in: "PROXY TCP4 1.2.3.4 5.6", err: `broken header: "PROXY TCP4 1.2.3.4 5.6"`},
		{name: "bad address", in: "PROXY TCP4 1.2.3.x 5.6.7.8 1 2\r\n", err: "broken header: \"PROXY TCP4 1.2.3.x 5.6.7.8 1 2\r\n\""},
		{name: "udp", in: "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", err: "broken header: \"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n\""},
		{name: "port too big", in: "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", err: "-"},
		{name: "empty port", in: "PROXY TCP4 1.2.3.4 5.6.7.8  2\r\n", err: "-"},
		{name: "signed port", in: "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", err: "-"},
		{name: "no LF", in: "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", err: "-"},
		{name: "CR CR", in: "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", err: "-"},

		{name: "v2 tcp4", in: v2(0x21, 0x11, inet4) + "GET", want: &Header{"192.0.2.1", "192.0.2.2", 123, 5678}, n: 28},
		{name: "v2 tcp6", in: v2(0x21, 0x21, inet6), want: &Header{"2001:db8::1", "2001:db8::2", 123, 5678}, n: 52},
		{name: "v2 tlv skipped", in: v2(0x21, 0x11, inet4+"\x04\x00\x01x") + "GET", want: &Header{"192.0.2.1", "192.0.2.2", 123, 5678}, n: 32},
		{name: "v2 local", in: v2(0x20, 0x00, "") + "GET", n: 16},
		{name: "v2 local with addresses", in: v2(0x20, 0x11, inet4), n: 28},
		{name: "v2 udp", in: v2(0x21, 0x12, inet4), n: 28},
		{name: "v2 unix", in: v2(0x21, 0x31, "\x01\x02\x03\x04"), n: 20},
		{name: "v2 unspec", in: v2(0x21, 0x01, ""), n: 16},
		{name: "v2 short inet", in: v2(0x21, 0x11, "\x01\x02\x03\x04"), err: "-"},
		{name: "v2 version 1", in: v2(0x11, 0x11, inet4), err: "unknown PROXY protocol version: 1"},
		{name: "v2 longer than read", in: v2(0x21, 0x11, inet4)[:20], err: "header is too large"},
		{name: "v2 fixed part short", in: v2Signature + "\x21\x11", err: "broken header: \"" + v2Signature + "\x21\x11\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := Read([]byte(tt.in))
			if tt.err != "" {
				var pe *Error
				if !errors.As(err, &pe) {
					t.Fatalf("Read = %+v, %d, %v; want an *Error", h, n, err)
				}
				if tt.err != "-" && pe.Msg != tt.err {
					t.Errorf("message %q, want %q", pe.Msg, tt.err)
				}
				if tt.err == "-" && tt.name[:2] == "v2" && pe.Msg != "" {
					t.Errorf("message %q, want none", pe.Msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if n != tt.n {
				t.Errorf("length %d, want %d", n, tt.n)
			}
			if diff := cmp.Diff(tt.want, h); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInet6Ntop(t *testing.T) {
	for _, tt := range []struct {
		in   [16]byte
		want string
	}{
		{[16]byte{}, "::"},
		{[16]byte{15: 1}, "::1"},
		{[16]byte{10: 0xff, 11: 0xff, 12: 1, 13: 2, 14: 3, 15: 4}, "::ffff:1.2.3.4"},
		{[16]byte{12: 1, 13: 2, 14: 3, 15: 4}, "::1.2.3.4"},
		{[16]byte{14: 1, 15: 2}, "::0.0.1.2"},
		{[16]byte{14: 0, 15: 2}, "::2"},
		{[16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}, "2001:db8::1"},
		{[16]byte{1: 1, 5: 1, 7: 1, 9: 1, 11: 1, 13: 1, 15: 1}, "1:0:1:1:1:1:1:1"},
		{[16]byte{1: 1, 7: 1, 15: 1}, "1:0:0:1::1"},
		{[16]byte{1: 1}, "1::"},
		{[16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, "1:203:405:607:809:a0b:c0d:e0f"},
	} {
		if got := Inet6Ntop(tt.in[:]); got != tt.want {
			t.Errorf("Inet6Ntop(% x) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestContext(t *testing.T) {
	if h := FromContext(context.Background()); h != nil {
		t.Errorf("FromContext(Background) = %+v", h)
	}
	h := &Header{SrcAddr: "1.2.3.4"}
	if got := FromContext(NewContext(context.Background(), h)); got != h {
		t.Errorf("FromContext = %+v, want %+v", got, h)
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\nGET"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte(v2(0x21, 0x21, string(make([]byte, 36)))))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Read(b)
		if err == nil && (n <= 0 || n > len(b)) {
			t.Fatalf("length %d of %d bytes (%+v)", n, len(b), h)
		}
	})
}
