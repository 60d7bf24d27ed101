package websockify

import "testing"

func BenchmarkUnmask64K(b *testing.B) {
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	for i := 0; i < b.N; i++ {
		unmask(buf, buf, [4]byte{1, 2, 3, 4}, 1)
	}
}

func TestUnmaskMatchesBytewise(t *testing.T) {
	src := randBytes(1000)
	key := [4]byte{0xde, 0xad, 0xbe, 0xef}
	for pos := 0; pos < 4; pos++ {
		for _, n := range []int{0, 1, 7, 8, 31, 32, 33, 100, 1000} {
			got := make([]byte, n)
			unmask(got, src[:n], key, pos)
			for i := 0; i < n; i++ {
				if want := src[i] ^ key[(pos+i)&3]; got[i] != want {
					t.Fatalf("pos %d n %d byte %d: %x want %x", pos, n, i, got[i], want)
				}
			}
		}
	}
	// In place with the destination before the source, as the parser uses it.
	buf := append(make([]byte, 16), src...)
	unmask(buf[3:3+len(src)], buf[16:], key, 2)
	for i := range src {
		if want := src[i] ^ key[(2+i)&3]; buf[3+i] != want {
			t.Fatalf("overlapping byte %d", i)
		}
	}
}
