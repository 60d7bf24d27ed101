package heapfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{0, 16 * mib, 400},       // before the first collection: the minimum goal's scale
		{mib, 16 * mib, 400},     // goal max(1*5, 4*4) = 16 MiB
		{5 * mib, 16 * mib, 220}, // goal max(5*3.2, 4*2.2) = 16 MiB
		{8 * mib, 16 * mib, 100},
		{100 * mib, 16 * mib, 100},
		{mib, 4 * mib, 100}, // the default's own goal already
	} {
		if got := percentFor(c.live, c.floor); got != c.want {
			t.Errorf("percentFor(%d MiB, %d MiB) = %d, want %d", c.live/mib, c.floor/mib, got, c.want)
		}
	}
}

// goal is the heap goal once a collection and its finalizers have run:
// it waits (up to a second) for the goal to satisfy ok.
func goal(ok func(uint64) bool) uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	for range 100 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the finalizer goroutine's turn
		metrics.Read(s)
		if ok(s[0].Value.Uint64()) {
			break
		}
	}
	return s[0].Value.Uint64()
}

func TestStartRaisesGoal(t *testing.T) {
	t.Setenv("GOGC", "") // restored after the test
	os.Unsetenv("GOGC")  // Start needs it unset
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	const floor = 32 << 20
	small := func(g uint64) bool { return g < 8<<20 }
	if g := goal(small); !small(g) {
		t.Fatalf("heap goal %d before Start: the test's heap is not small", g)
	}
	stop := Start(floor)
	raised := func(g uint64) bool { return g >= floor*9/10 }
	if g := goal(raised); !raised(g) {
		t.Errorf("heap goal %d with a %d floor", g, floor)
	}
	stop()
	if g := goal(small); !small(g) {
		t.Errorf("heap goal %d after stop", g)
	}
}

func TestStartLeavesExplicitGOGC(t *testing.T) {
	t.Setenv("GOGC", "100")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	stop := Start(32 << 20)
	defer stop()
	if g := goal(func(uint64) bool { return false }); g >= 8<<20 {
		t.Errorf("heap goal %d with GOGC set: the floor was applied", g)
	}
}

// sink keeps the test's garbage from being optimized away.
var sink []byte

func TestWatchIdleReleases(t *testing.T) {
	s := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
	metrics.Read(s)
	forced := s[0].Value.Uint64()
	done := make(chan struct{})
	defer close(done)
	go watchIdle(allocated(), 1<<20, done)
	for range 64 { // a burst: 4 MiB of garbage
		sink = make([]byte, 64<<10)
	}
	sink = nil
	deadline := time.Now().Add(10 * idleCheck)
	for time.Now().Before(deadline) {
		time.Sleep(idleCheck / 5)
		if metrics.Read(s); s[0].Value.Uint64() > forced {
			return
		}
	}
	t.Errorf("no collection after the burst (forced cycles still %d)", forced)
}
