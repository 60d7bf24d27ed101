package websockify

import "testing"

// TestTunnelList: the registry's list takes tunnels in and out in any
// order, and leaves alone a tunnel it does not hold (the end of one whose
// start Shutdown refused).
func TestTunnelList(t *testing.T) {
	var ts Tunnels
	a, b, c, stranger := &tunnel{}, &tunnel{}, &tunnel{}, &tunnel{}
	for _, tn := range []*tunnel{a, b, c} {
		if !ts.add(tn, nil) {
			t.Fatal("add refused")
		}
	}
	ts.remove(stranger)
	ts.remove(b)
	if n := ts.Len(); n != 2 {
		t.Fatalf("Len %d, want 2", n)
	}
	got := map[*tunnel]bool{}
	for _, tn := range ts.snapshot() {
		got[tn] = true
	}
	if len(got) != 2 || !got[a] || !got[c] {
		t.Fatalf("snapshot %v, want a and c", got)
	}
	ts.remove(b) // again
	ts.remove(c)
	ts.remove(a)
	if n := ts.Len(); n != 0 || ts.live.first != nil {
		t.Fatalf("Len %d, first %p after removing all", n, ts.live.first)
	}
}
