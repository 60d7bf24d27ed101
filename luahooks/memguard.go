package luahooks

import (
	"errors"
	"runtime/metrics"
	"sync"
	"time"
)

// ErrMemory is wrapped by Outcome.Err when runs were stopped because the
// process's heap passed Options.MemoryLimit.
var ErrMemory = errors.New("not enough memory")

// DefaultMemoryLimit is the heap size at which running hooks are stopped.
const DefaultMemoryLimit = 2 << 30

// memGuard stops runaway hooks before they take the process down: gopher-lua
// has no allocation limit (LuaJIT's GC64 build effectively has none either,
// but there an OOM kills one nginx worker, here the whole relay). While
// hooks run, a watcher samples the heap every few milliseconds; past the
// limit it cancels every running hook, which then fails with "not enough
// memory" (LuaJIT's words) and leaves its state out of the pool.
type memGuard struct {
	limit uint64

	mu       sync.Mutex
	running  map[*runContext]struct{}
	watching bool
}

// memCheckEvery is how often the heap is sampled while hooks run.
const memCheckEvery = 5 * time.Millisecond

func (g *memGuard) enter(c *runContext) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running == nil {
		g.running = map[*runContext]struct{}{}
	}
	g.running[c] = struct{}{}
	if !g.watching {
		g.watching = true
		go g.watch()
	}
}

func (g *memGuard) leave(c *runContext) {
	g.mu.Lock()
	delete(g.running, c)
	g.mu.Unlock()
}

// watch runs while hooks run; it returns once none does.
func (g *memGuard) watch() {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	for {
		time.Sleep(memCheckEvery)
		metrics.Read(sample)
		g.mu.Lock()
		if len(g.running) == 0 {
			g.watching = false
			g.mu.Unlock()
			return
		}
		if sample[0].Value.Uint64() > g.limit {
			for c := range g.running {
				c.cancel(ErrMemory)
			}
		}
		g.mu.Unlock()
	}
}
