package luahooks

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// runContext is the context a state runs under. One lives in each state
// and is re-armed for every run, so a run costs one channel instead of a
// context.WithTimeout (timer, cancel context, children map). gopher-lua
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
	// done is read before every Lua instruction and by goroutines that
	// context.WithCancel starts for coroutines: an atomic pointer keeps
	// that cheap and race-free while arm replaces it.
	done atomic.Pointer[chan struct{}]
	err  error
}

var _ context.Context = (*runContext)(nil)

func newRunContext() *runContext {
	c := &runContext{parent: context.Background()}
	ch := make(chan struct{})
	close(ch)
	c.done.Store(&ch)
	c.err = context.Canceled
	c.timer = time.AfterFunc(time.Hour, c.onTimer)
	c.timer.Stop()
	return c
}

// arm prepares the context for a new run (one channel allocation; the
// timer is reused).
func (c *runContext) arm(parent context.Context, timeout time.Duration) {
	c.mu.Lock()
	c.parent = parent
	c.deadline = time.Now().Add(timeout)
	ch := make(chan struct{})
	c.done.Store(&ch)
	c.err = nil
	c.mu.Unlock()
	c.timer.Reset(timeout)
}

// onTimer expires the run whose deadline has passed. A late call left from
// an earlier run sees a deadline in the future and does nothing.
func (c *runContext) onTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && !time.Now().Before(c.deadline) {
		c.err = context.DeadlineExceeded
		close(*c.done.Load())
	}
}

// cancel ends the current run with err (first cause wins).
func (c *runContext) cancel(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
		close(*c.done.Load())
	}
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
