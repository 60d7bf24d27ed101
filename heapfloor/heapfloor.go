// Package heapfloor keeps Go's garbage collector from running at the
// runtime's minimum heap goal while the live heap is small.
//
// With GOGC=100 the collector runs each time the heap doubles, and never
// lets the goal fall below 4 MiB. A relay's live heap is about 1 MiB, so
// under a stream of handshakes or requests the collector runs every 3 MiB
// allocated: some 25 collections a second, each a few milliseconds of CPU
// and a wake-up of every idle thread. Start raises GOGC after each
// collection so that the next goal is at least the floor, and puts it back
// to 100 once the live heap is half the floor or more: a small server
// trades a few MiB of memory for fewer collections, a large one runs as
// with the default.
//
// The garbage a burst leaves (up to the floor) stays in the heap until the
// next collection, which an idle server does not make for minutes: when
// the allocations stop after a burst, Start's watcher collects and gives
// the free memory back to the operating system at once (debug.FreeOSMemory),
// so that an idle server holds its live heap, not the floor. An explicit
// GOGC in the environment wins: Start then does nothing.
package heapfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// defaultPercent is GOGC's default, used once the live heap reaches half
// the floor.
const defaultPercent = 100

// Start keeps the heap goal at floor bytes or more (see the package
// comment) until the returned function is called.
func Start(floor uint64) (stop func()) {
	if _, set := os.LookupEnv("GOGC"); set || floor == 0 {
		return func() {}
	}
	t := &tuner{floor: floor, percent: defaultPercent}
	t.sample[0].Name = "/gc/heap/live:bytes"
	t.tune()
	t.arm()
	done := make(chan struct{})
	go watchIdle(allocated(), floor/4, done)
	return func() {
		close(done)
		t.mu.Lock()
		defer t.mu.Unlock()
		t.stopped = true
		debug.SetGCPercent(defaultPercent)
	}
}

// idleCheck is how often watchIdle looks at the allocations, and idleAlloc
// what it may see allocated in that time and still call the heap idle.
const (
	idleCheck = 500 * time.Millisecond
	idleAlloc = 256 << 10
)

// watchIdle gives the garbage back to the operating system once the
// allocations stop (less than idleAlloc bytes in idleCheck) after at
// least burst bytes were allocated since it last did (or since last, the
// bytes allocated when it was started), until done closes.
func watchIdle(last, burst uint64, done <-chan struct{}) {
	since := uint64(0)
	tick := time.NewTicker(idleCheck)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		n := allocated() - last
		last += n
		since += n
		if n < idleAlloc && since >= burst {
			debug.FreeOSMemory()
			since = 0
		}
	}
}

// allocated is the bytes allocated in the heap so far.
func allocated() uint64 {
	s := [1]metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s[:])
	return s[0].Value.Uint64()
}

type tuner struct {
	mu      sync.Mutex // a finalizer's tune against stop
	floor   uint64
	percent int // what was set last
	sample  [1]metrics.Sample
	stopped bool
}

// sentinel is garbage made on purpose: its finalizer runs once a
// collection has found it unreachable, that is after every cycle, and
// makes the next one. It holds a pointer, so that it is not a tiny
// allocation (those share a block, which may outlive it).
type sentinel struct{ t *tuner }

func (t *tuner) arm() {
	runtime.SetFinalizer(&sentinel{t: t}, func(s *sentinel) {
		if s.t.tune() {
			s.t.arm()
		}
	})
}

// tune sets the percentage for the live heap the last collection found;
// false once stopped.
func (t *tuner) tune() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.sample[:])
	p := percentFor(t.sample[0].Value.Uint64(), t.floor)
	if p != t.percent {
		t.percent = p
		debug.SetGCPercent(p)
	}
	return true
}

// minimumGoal is the runtime's least heap goal at GOGC=100; it scales
// with GOGC.
const minimumGoal = 4 << 20

// percentFor is the GOGC that makes the goal of a heap with live bytes
// live about floor: the goal is the larger of live*(1+GOGC/100) and
// minimumGoal*GOGC/100, so the second caps it for small heaps (and before
// the first collection, when live is 0). Never below the default.
func percentFor(live, floor uint64) int {
	if live >= floor/2 {
		return defaultPercent
	}
	p := floor * 100 / minimumGoal
	if live > 0 && floor*100/live-100 < p {
		p = floor*100/live - 100
	}
	return max(int(p), defaultPercent)
}
