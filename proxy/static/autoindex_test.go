package static

import "testing"

// TestApproxSize: autoindex_exact_size off, as nginx's listing rounds
// (half up) from 10000 bytes on; the routing case covers small sizes only.
func TestApproxSize(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "      0"}, {9999, "   9999"}, {10000, "    10K"}, {10751, "    10K"}, {10752, "    11K"},
		{1<<20 - 1, "  1024K"}, {1 << 20, "     1M"}, {3<<20 + 1<<19, "     4M"}, {5 << 30, "     5G"},
	} {
		if got := approxSize(c.n); got != c.want {
			t.Errorf("approxSize(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

// TestDecodeUTF8 follows ngx_utf8_decode, not Go's decoder.
func TestDecodeUTF8(t *testing.T) {
	for _, c := range []struct {
		in   string
		r    uint32
		size int
	}{
		{"\xd1\x84", 0x444, 2},
		{"\xe9-Y", utf8Invalid, 2},   // the ASCII byte goes with the invalid sequence
		{"\xd0", UTF8Incomplete, 0},  // cut short
		{"\xc0\x80", utf8Invalid, 1}, // overlong lead
		{"\xe0\x80\x80", utf8Invalid, 3},
		{"\xed\xa0\x80", 0xd800, 3}, // surrogates pass
		{"\xf0\x9f\x98\x80", 0x1f600, 4},
	} {
		r, size := DecodeUTF8([]byte(c.in))
		if r != c.r || size != c.size {
			t.Errorf("DecodeUTF8(%q) = %#x, %d; want %#x, %d", c.in, r, size, c.r, c.size)
		}
	}
}
