package websockify

import (
	"testing"
	"time"
)

// TestTrimAfterBurst: once a burst of handshakes has been quiet for
// trimQuiet, the Tunnels return its memory, once per burst.
func TestTrimAfterBurst(t *testing.T) {
	checkNoLeak(t)
	tg := newTarget(t, echo)
	rl := newRelay(t, tg.dialer(), Options{})
	// The burst's handshakes come 60 ms apart plus their own time, which
	// took over 100 ms on a loaded 2-core machine: the quiet time is well
	// above that.
	rl.tunnels.trimAfter, rl.tunnels.trimQuiet = 3, 400*time.Millisecond
	for range 2 {
		dial(t, rl.url(), "binary")
	}
	time.Sleep(300 * time.Millisecond)
	if n := rl.tunnels.trims.Load(); n != 0 {
		t.Fatalf("%d trims after 2 tunnels, want none before trimAfter", n)
	}
	// A burst spread over more than trimQuiet: one trim, after its end.
	for range 4 {
		dial(t, rl.url(), "binary")
		time.Sleep(60 * time.Millisecond)
	}
	if n := rl.tunnels.trims.Load(); n != 0 {
		t.Errorf("trimmed during the burst (%d)", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for rl.tunnels.trims.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(600 * time.Millisecond) // no second trim
	if n := rl.tunnels.trims.Load(); n != 1 {
		t.Errorf("%d trims after one burst, want 1", n)
	}
}
