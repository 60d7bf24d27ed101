package websockify

import (
	"cmp"
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Tunnels is the registry of live tunnels, so that a server shutdown can
// close them (hijacked connections escape http.Server.Shutdown). The zero
// value is ready to use; one Tunnels is shared by every location.
type Tunnels struct {
	mu      sync.Mutex
	live    tunnelList
	closing atomic.Bool
	empty   chan struct{} // closed when m empties during Shutdown
	// starting counts handshakes past the closing check and not yet
	// registered, so that Drain does not miss one (drain.go).
	starting atomic.Int64

	loopMu   sync.Mutex
	loops    []*loop
	useLoops int // how many of loops take new tunnels; 0 means 1
	next     int // round robin over loops[:useLoops]
	noLoops  bool
	linger   time.Duration // how long an idle loop lives on; 0 means defaultLinger

	// Returning a handshake burst's memory (trim): tunnels started since
	// the last trim and its timer (under mu), when the last one started,
	// how many trims ran; trimAfter and trimQuiet (0: the defaults) are
	// for tests.
	started   int
	trimTimer *time.Timer
	lastStart atomic.Int64
	trims     atomic.Int64
	trimAfter int
	trimQuiet time.Duration
}

// tunnelList is the live tunnels of a Tunnels, linked through them:
// adding and removing one hashes nothing. Tunnels.mu guards it.
type tunnelList struct {
	first *tunnel
	n     int
}

func (l *tunnelList) add(t *tunnel) {
	t.prev, t.next = nil, l.first
	if l.first != nil {
		l.first.prev = t
	}
	l.first = t
	l.n++
}

// remove takes t out of l; a tunnel that is not in l is left alone.
func (l *tunnelList) remove(t *tunnel) {
	switch {
	case t.prev != nil:
		t.prev.next = t.next
	case l.first == t:
		l.first = t.next
	default:
		return
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.prev, t.next = nil, nil
	l.n--
}

// After a burst of handshakes the heap holds their garbage (request
// headers, the bufio buffers net/http hands over at the hijack, TLS
// handshake state) until the next collection, which an idle server may not
// run for two minutes, and the runtime gives freed pages back to the
// system only slowly: an idle tunnel then costs what its handshake cost.
// So once defaultTrimAfter tunnels have started since the last trim and
// none has for defaultTrimQuiet, a timer returns that memory at once
// (debug.FreeOSMemory: one collection, a few milliseconds for a heap of
// tens of MiB, off the relay's goroutines). Measured with
// `ngxsockify-bench -tests fresh` (see README).
const (
	defaultTrimAfter = 256
	defaultTrimQuiet = time.Second
)

// defaultLinger is how long a loop goroutine waits for a new tunnel after
// its last one ended, so that a server with short-lived tunnels does not
// start a loop (epoll and eventfd descriptors, a goroutine) for each.
const defaultLinger = time.Second

func (ts *Tunnels) newLoop() *loop {
	l := &loop{linger: ts.linger}
	if l.linger == 0 {
		l.linger = defaultLinger
	}
	return l
}

// SetLoops sets how many event loops relay new tunnels (nginx's
// worker_processes); n <= 0 means 1. Tunnels already running stay on their
// loop.
func (ts *Tunnels) SetLoops(n int) {
	ts.loopMu.Lock()
	defer ts.loopMu.Unlock()
	ts.useLoops = max(1, n)
	for len(ts.loops) < ts.useLoops {
		ts.loops = append(ts.loops, ts.newLoop())
	}
}

// pick returns the event loop for a new tunnel (round robin), or nil when
// tunnels run on goroutines (no Tunnels, WEBSOCKIFY_RELAY=goroutines in
// tests).
func (ts *Tunnels) pick() *loop {
	if ts == nil || ts.noLoops {
		return nil
	}
	ts.loopMu.Lock()
	defer ts.loopMu.Unlock()
	if len(ts.loops) == 0 {
		ts.useLoops = 1
		ts.loops = []*loop{ts.newLoop()}
	}
	l := ts.loops[ts.next%ts.useLoops]
	ts.next++
	return l
}

// prepare readies t for an event loop (see loop.prepare): the loop that
// dialled its target, or the next one. When the sockets cannot be relayed
// by one (TLS, no Tunnels, no loop on this system), t.ev is nil on return
// and t needs its goroutines; an error means a loop's target socket could
// not be handed to them.
func (ts *Tunnels) prepare(t *tunnel) error {
	if t.ev != nil {
		if t.ev.l.prepare(t) {
			return nil
		}
		return t.leaveLoop()
	}
	if l := ts.pick(); l != nil {
		l.prepare(t)
	}
	return nil
}

// add registers t and runs then (if not nil) under the lock; it fails
// once Shutdown has begun.
func (ts *Tunnels) add(t *tunnel, then func()) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closing.Load() {
		return false
	}
	ts.live.add(t)
	ts.lastStart.Store(nanotime())
	ts.started++
	if ts.started >= cmp.Or(ts.trimAfter, defaultTrimAfter) && ts.trimTimer == nil {
		ts.trimTimer = time.AfterFunc(cmp.Or(ts.trimQuiet, defaultTrimQuiet), ts.trim)
	}
	if then != nil {
		then()
	}
	return true
}

// trim returns the memory of a handshake burst to the system once the
// burst has been quiet for trimQuiet.
func (ts *Tunnels) trim() {
	quiet := cmp.Or(ts.trimQuiet, defaultTrimQuiet)
	ts.mu.Lock()
	if wait := time.Duration(ts.lastStart.Load() + int64(quiet) - nanotime()); wait > 0 {
		ts.trimTimer.Reset(wait)
		ts.mu.Unlock()
		return
	}
	ts.started, ts.trimTimer = 0, nil
	ts.mu.Unlock()
	debug.FreeOSMemory()
	ts.trims.Add(1)
}

func (ts *Tunnels) remove(t *tunnel) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.live.remove(t)
	if ts.live.n == 0 && ts.empty != nil {
		close(ts.empty)
		ts.empty = nil
	}
}

// Len returns the number of live tunnels.
func (ts *Tunnels) Len() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.live.n
}

func (ts *Tunnels) snapshot() []*tunnel {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	list := make([]*tunnel, 0, ts.live.n)
	for t := ts.live.first; t != nil; t = t.next {
		list = append(list, t)
	}
	return list
}

// generation returns the live tunnels of generation gen.
func (ts *Tunnels) generation(gen uint64) []*tunnel {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var list []*tunnel
	for t := ts.live.first; t != nil; t = t.next {
		if t.o.Generation == gen {
			list = append(list, t)
		}
	}
	return list
}

// Retire ends the tunnels of generation gen (Options.Generation), as an
// old nginx worker ends its connections when worker_shutdown_timeout has
// passed after a reload: each gets a close frame with CloseGoingAway and
// grace to answer it (an upgraded connection from Relay is closed at
// once), and those still open after grace are closed. The tunnels of
// other generations and new tunnels go on. It returns how many tunnels it
// began to close.
func (ts *Tunnels) Retire(gen uint64, grace time.Duration) int {
	list := ts.generation(gen)
	for _, t := range list {
		t.closeAsync(closeCode(ErrShutdown), ErrShutdown, true)
	}
	if len(list) > 0 {
		time.AfterFunc(grace, func() {
			for _, t := range ts.generation(gen) {
				t.kill(ErrShutdown)
			}
		})
	}
	return len(list)
}

// Shutdown refuses new tunnels (Serve then answers 503), sends every live
// tunnel a close frame with status CloseGoingAway, closes its target, and
// waits for the clients to answer (each gets closeGrace) until all tunnels
// are gone or ctx ends; then it closes the remaining connections, waits for
// their goroutines and returns ctx.Err().
func (ts *Tunnels) Shutdown(ctx context.Context) error {
	ts.mu.Lock()
	ts.closing.Store(true)
	var empty chan struct{}
	if ts.live.n > 0 {
		if ts.empty == nil {
			ts.empty = make(chan struct{})
		}
		empty = ts.empty
	}
	ts.mu.Unlock()
	if empty == nil {
		return nil
	}
	for _, t := range ts.snapshot() {
		t.closeAsync(closeCode(ErrShutdown), ErrShutdown, true)
	}
	select {
	case <-empty:
		return nil
	case <-ctx.Done():
	}
	for _, t := range ts.snapshot() {
		t.kill(ErrShutdown)
	}
	<-empty
	return ctx.Err()
}
