package static

import (
	"io"
	"strings"
	"testing"
)

func TestPrefixedReadAt(t *testing.T) {
	p := prefixed{[]byte("HEAD"), strings.NewReader("0123456789"), 6}
	all, err := io.ReadAll(io.NewSectionReader(p, 0, 8))
	if err != nil || string(all) != "HEAD6789" {
		t.Fatalf("whole: %q %v", all, err)
	}
	for _, c := range []struct {
		off  int64
		n    int
		want string
	}{{0, 2, "HE"}, {2, 4, "AD67"}, {4, 3, "678"}, {7, 1, "9"}} {
		b := make([]byte, c.n)
		if n, err := p.ReadAt(b, c.off); n != c.n || string(b) != c.want {
			t.Errorf("ReadAt(%d, %d) = %q, %v; want %q", c.off, c.n, b[:n], err, c.want)
		}
	}
}
