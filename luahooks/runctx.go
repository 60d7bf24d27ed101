package luahooks

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// runContext is the context a state runs under. One lives in each state
// and is re-armed for every run, so a run allocates nothing for it (a
// context.WithTimeout costs a timer, a cancel context and a channel). gopher-lua
// polls Done before every instruction; the run ends when the deadline
// passes (timer), when ngx.exit is called, or when the run returns.
//
// The request context is not watched continuously (that would cost a
// goroutine or registration per run): Run checks it first and ngx.sleep
// waits on it; a running loop is bounded by the deadline anyway.
type runContext struct {
	parent   context.Context
	deadline time.Time
	timer    *time.Timer

	mu sync.Mutex
	// left is the time the run had left when pause stopped the clock.
	left time.Duration
	// done is read before every Lua instruction and by goroutines that
	// context.WithCancel starts for coroutines: an atomic pointer keeps
	// that cheap and race-free. A run starts on the shared openChan and
	// ends on closedChan; only a run that creates coroutines gets its own
	// channel (their watcher goroutines must see it closed to end).
	done atomic.Pointer[chan struct{}]
	own  bool // done points to a channel of this run
	err  error
	// std is a plain cancel context that ends with the run, created with
	// the run's own channel: the Lua state runs under it from then on, so
	// that the contexts gopher-lua derives for coroutines and light
	// threads are children of a *cancelCtx (no watcher goroutine that
	// could read Err of a later run of this reused context).
	std       context.Context
	stdCancel context.CancelFunc
}

var (
	openChan   = make(chan struct{}) // never closed
	closedChan = func() chan struct{} {
		c := make(chan struct{})
		close(c)
		return c
	}()
)

var _ context.Context = (*runContext)(nil)

func newRunContext() *runContext {
	c := &runContext{parent: context.Background()}
	c.done.Store(&closedChan)
	c.err = context.Canceled
	c.timer = time.AfterFunc(time.Hour, c.onTimer)
	c.timer.Stop()
	return c
}

// arm prepares the context for a new run started at now (no allocation;
// the timer is reused).
func (c *runContext) arm(parent context.Context, now time.Time, timeout time.Duration) {
	c.mu.Lock()
	c.parent = parent
	c.deadline = now.Add(timeout)
	c.done.Store(&openChan)
	c.own = false
	c.err = nil
	c.std, c.stdCancel = nil, nil
	c.mu.Unlock()
	c.timer.Reset(timeout)
}

// ownChannel gives the running run a channel of its own; called before a
// coroutine is created (gopher-lua derives a cancel context from ours).
func (c *runContext) ownChannel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && !c.own {
		ch := make(chan struct{})
		c.done.Store(&ch)
		c.own = true
	}
}

// luaContext is the context the Lua state runs under once coroutines or
// light threads derive theirs from it: std, made on first use (after
// ownChannel) and cancelled when the run ends.
func (c *runContext) luaContext() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.std == nil {
		c.std, c.stdCancel = context.WithCancel(context.Background())
		if c.err != nil {
			c.stdCancel()
		}
	}
	return c.std
}

// finish ends the run with err; c.mu is held.
func (c *runContext) finish(err error) {
	c.err = err
	if c.own {
		close(*c.done.Load())
	} else {
		c.done.Store(&closedChan)
	}
	if c.stdCancel != nil {
		c.stdCancel()
	}
}

// onTimer expires the run whose deadline has passed. A late call left from
// an earlier run sees a deadline in the future and does nothing.
func (c *runContext) onTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && !time.Now().Before(c.deadline) {
		c.finish(context.DeadlineExceeded)
	}
}

// cancel ends the current run with err (first cause wins).
func (c *runContext) cancel(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.finish(err)
	}
}

// pause stops the run's clock while it waits on the network or sleeps:
// the time limit bounds running Lua, not waiting.
func (c *runContext) pause() {
	c.timer.Stop()
	c.mu.Lock()
	c.left = time.Until(c.deadline)
	c.mu.Unlock()
}

// resume starts the clock again with the time that was left.
func (c *runContext) resume() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	left := max(c.left, 0)
	c.deadline = time.Now().Add(left)
	c.mu.Unlock()
	c.timer.Reset(left)
}

// disarm ends the run: stops the timer and closes Done (coroutine
// watchers created by gopher-lua end with it).
func (c *runContext) disarm() {
	c.timer.Stop()
	c.cancel(context.Canceled)
}

func (c *runContext) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline, true
}
func (c *runContext) Done() <-chan struct{} { return *c.done.Load() }
func (c *runContext) Value(key any) any {
	c.mu.Lock()
	parent := c.parent
	c.mu.Unlock()
	return parent.Value(key)
}

func (c *runContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
