package luahooks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"ngxsockify/ngxlog"
)

// ngx.timer.at and ngx.timer.every. A callback is a Lua function of the
// state that created the timer: it may hold that state's upvalues and
// globals, and a state is not safe for two goroutines. So a timer runs on
// a coroutine of that state (its own Lua thread, as nginx gives each
// timer a coroutine of the worker's VM), with its own run context, when
// the state's baton (state.busy) is free: when no run uses the state, or
// when the runs that do all wait (a cosocket, ngx.sleep, a semaphore).
// So a timer that a request creates runs while that request sleeps or
// waits on the network, and the request goes on when the timer waits or
// ends, as in nginx. A state with pending timers is never closed: the
// pool sets it aside until they end.
//
// Callbacks run under the same time limit as hooks (counting running Lua
// only: cosockets and ngx.sleep pause it); an error or a timeout is
// logged with ", context: ngx.timer" and ends that run; every-timers go on.
// When the runtime closes (reload, stop), pending timers run at once with
// premature = true, as nginx's exiting workers run them.

// limits returns lua_max_pending_timers and lua_max_running_timers.
func (rt *Runtime) timerLimits() (pending, running int) {
	pending, running = rt.opts.MaxPendingTimers, rt.opts.MaxRunningTimers
	if pending <= 0 {
		pending = 1024
	}
	if running <= 0 {
		running = 256
	}
	return pending, running
}

// timerSet is the runtime's timers. mu also guards every state's timers
// count and parked flag.
type timerSet struct {
	mu      sync.Mutex
	pending map[*luaTimer]struct{}
	running int
	closed  bool
	wg      sync.WaitGroup
	seq     uint64 // timers created so far
}

type luaTimer struct {
	st    *state
	fn    *lua.LFunction
	args  []lua.LValue
	every time.Duration // 0: a one-shot timer (ngx.timer.at)
	t     *time.Timer
	// when is the expiry as nginx keys it: the creating run's cached
	// time in milliseconds plus the delay, so that timers a run creates
	// with one delay expire together; seq orders those (creation order).
	when time.Time
	seq  uint64
	// log writes the timer's lines with the context of the request
	// that created it (Request.TimerLog), nil: the runtime's log.
	log func(level ngxlog.Level, msg string)
	// conf holds the creating run's location settings (resolver,
	// lua_socket_*, lua_ssl_*): nginx's timer runs with the creating
	// request's configuration. Nil: none.
	conf *Request
}

// timerConf copies the settings of r a timer it creates runs with.
func timerConf(r *Request) *Request {
	if r == nil {
		return nil
	}
	return &Request{Resolve: r.Resolve, TrustedCAs: r.TrustedCAs, SSLProtocols: r.SSLProtocols,
		SSLCiphers: r.SSLCiphers, SSLChain: r.SSLChain, Socket: r.Socket}
}

// logf writes a line of tm's.
func (tm *luaTimer) logf(rt *Runtime, level ngxlog.Level, format string, args ...any) {
	if tm.log == nil {
		rt.logf(level, format, args...)
		return
	}
	tm.log(level, sprintf(format, args...))
}

func (st *state) openTimer() *lua.LTable {
	return st.funcTable(map[string]lua.LGFunction{
		"at":    func(L *lua.LState) int { return st.timerAdd(L, "at", false) },
		"every": func(L *lua.LState) int { return st.timerAdd(L, "every", true) },
		"running_count": func(L *lua.LState) int {
			ts := &st.rt.timers
			ts.mu.Lock()
			defer ts.mu.Unlock()
			L.Push(lua.LNumber(ts.running))
			return 1
		},
		"pending_count": func(L *lua.LState) int {
			ts := &st.rt.timers
			ts.mu.Lock()
			defer ts.mu.Unlock()
			L.Push(lua.LNumber(len(ts.pending)))
			return 1
		},
	})
}

func (st *state) timerAdd(L *lua.LState, name string, every bool) int {
	if st.inInit && st.r.phase == PhaseInit {
		cError(L, "API disabled in the context of init_by_lua*")
	}
	if st.r.phase == PhaseExitWorker {
		cError(L, "API disabled in the context of exit_worker_by_lua*")
	}
	delay := float64(L.CheckNumber(1))
	if delay < 0 {
		cArgError(L, 1, name, "delay must not be negative")
	}
	if every && delay == 0 {
		cArgError(L, 1, name, "delay cannot be zero")
	}
	fn := L.CheckFunction(2)
	if st.replaying {
		// init_worker_by_lua replayed in a new pooled state: its timers
		// exist once, from the first run.
		L.Push(lua.LNumber(1))
		return 1
	}
	args := make([]lua.LValue, 0, L.GetTop()-2)
	for i := 3; i <= L.GetTop(); i++ {
		args = append(args, L.Get(i))
	}
	d := time.Duration(delay * float64(time.Second))
	tm := &luaTimer{st: st, fn: fn, args: args, conf: timerConf(st.r.req)}
	switch req := st.r.req; {
	case req == nil:
	case st.r.phase == PhaseTimer:
		tm.log = req.Log // a timer's timer: the same context
	case req.TimerLog != nil:
		tm.log = req.TimerLog()
	}
	if every {
		tm.every = d
	}
	maxPending, _ := st.rt.timerLimits()
	ts := &st.rt.timers
	ts.mu.Lock()
	defer ts.mu.Unlock()
	switch {
	case ts.closed:
		return fail(L, "process exiting")
	case len(ts.pending) >= maxPending:
		return fail(L, "too many pending timers")
	}
	if ts.pending == nil {
		ts.pending = map[*luaTimer]struct{}{}
	}
	ts.pending[tm] = struct{}{}
	st.timers++
	ts.seq++
	tm.seq = ts.seq
	now := st.r.now
	if now.IsZero() {
		now = time.Now()
	}
	st.rt.armTimer(tm, now, d)
	L.Push(lua.LNumber(1))
	return 1
}

// armTimer sets tm to expire d after now (nginx's cached time, in
// milliseconds); ts.mu is held.
func (rt *Runtime) armTimer(tm *luaTimer, now time.Time, d time.Duration) {
	tm.when = now.Truncate(time.Millisecond).Add(d)
	tm.t = time.AfterFunc(max(time.Until(tm.when), 0), func() { rt.fireTimer(tm) })
}

// fireTimer is tm's expiry: it starts every timer due by now, tm among
// them, in nginx's order (expiry, then creation), each as a run of its
// own that takes its state in that order.
func (rt *Runtime) fireTimer(tm *luaTimer) {
	ts := &rt.timers
	ts.mu.Lock()
	if _, ok := ts.pending[tm]; !ok {
		ts.mu.Unlock()
		return
	}
	now := time.Now()
	due := []*luaTimer{tm}
	for p := range ts.pending {
		if p != tm && !p.when.After(now) {
			due = append(due, p)
		}
	}
	slices.SortFunc(due, func(a, b *luaTimer) int {
		if c := a.when.Compare(b.when); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	premature := ts.closed
	var start, refused []*luaTimer
	_, maxRunning := rt.timerLimits()
	for _, p := range due {
		delete(ts.pending, p)
		p.t.Stop() // its own expiry finds it gone
		if p.every > 0 && !premature {
			// lua-nginx-module creates an every-timer's next timer when
			// this one expires, before it runs (and even when it cannot
			// run): a callback that takes longer than the interval
			// overlaps the next one.
			rt.nextTimer(p, now)
		}
		if ts.running >= maxRunning {
			refused = append(refused, p)
			continue
		}
		ts.running++
		ts.wg.Add(1)
		start = append(start, p)
	}
	ts.mu.Unlock()
	for _, p := range refused {
		p.logf(rt, ngxlog.Alert, "lua failed to run timer with function defined at %s: %d lua_max_running_timers are not enough",
			funcDefined(p.fn), maxRunning)
		rt.timerDone(p.st)
	}
	for _, p := range start {
		began := make(chan struct{})
		go rt.runTimerRun(p, premature, began)
		<-began // the next one queues for its state after this one
	}
}

// runTimerRun runs started timer tm's callback once it has its state
// (began is closed then), then lets the state go (an every-timer's next
// run was armed when this one expired).
func (rt *Runtime) runTimerRun(tm *luaTimer, premature bool, began chan<- struct{}) {
	ts := &rt.timers
	st := tm.st
	req := timerConf(tm.conf)
	if req == nil {
		req = &Request{}
	}
	req.Log = tm.log
	r := &runCtx{req: req, phase: PhaseTimer}
	st.busy.Lock()
	close(began)
	st.r = r
	tm.logf(rt, ngxlog.Debug, "lua ngx.timer expired")
	err := st.runTimer(tm, premature)
	st.busy.Unlock()
	if err != nil {
		tm.logf(rt, ngxlog.Err, "%v, context: ngx.timer", err)
	}
	tm.logf(rt, ngxlog.Debug, "http lua close fake http connection")

	ts.mu.Lock()
	ts.running--
	ts.wg.Done()
	ts.mu.Unlock()
	rt.timerDone(st)
}

// nextTimer arms the next run of every-timer tm, from now: a pending timer
// of its own (the same state, callback and arguments), as
// ngx_http_lua_timer_copy makes one; ts.mu is held.
func (rt *Runtime) nextTimer(tm *luaTimer, now time.Time) {
	ts := &rt.timers
	next := &luaTimer{st: tm.st, fn: tm.fn, args: tm.args, every: tm.every, log: tm.log, conf: tm.conf}
	ts.seq++
	next.seq = ts.seq
	ts.pending[next] = struct{}{}
	tm.st.timers++
	rt.armTimer(next, now, tm.every)
}

// funcDefined is where fn was defined as LuaJIT names it in logs:
// "=content_by_lua(nginx.conf:40):2" for inline code, "@/path/m.lua:3"
// for a file.
func funcDefined(fn *lua.LFunction) string {
	if fn.IsG || fn.Proto == nil {
		return "=[C]:-1"
	}
	src := fn.Proto.SourceName
	if strings.Contains(src, "_by_lua(") {
		src = "=" + src
	} else {
		src = "@" + src
	}
	return fmt.Sprintf("%s:%d", src, fn.Proto.LineDefined)
}

// timerDone drops one timer of st, closing st if it was set aside and has
// no timer left.
func (rt *Runtime) timerDone(st *state) {
	ts := &rt.timers
	ts.mu.Lock()
	st.timers--
	closeIt := st.parked && st.timers == 0
	ts.mu.Unlock()
	if closeIt {
		st.L.Close()
	}
}

// retire closes a state leaving the pool, unless timers still need it.
func (rt *Runtime) retire(st *state) {
	ts := &rt.timers
	ts.mu.Lock()
	if st.timers > 0 {
		st.parked = true
		ts.mu.Unlock()
		return
	}
	ts.mu.Unlock()
	st.L.Close()
}

// closeTimers runs every pending timer now with premature = true, and
// waits up to wait for the running ones.
func (rt *Runtime) closeTimers(wait time.Duration) {
	ts := &rt.timers
	ts.mu.Lock()
	ts.closed = true
	var now []*luaTimer
	for tm := range ts.pending {
		if tm.t.Stop() {
			now = append(now, tm)
		}
	}
	ts.mu.Unlock()
	for _, tm := range now {
		go rt.fireTimer(tm) // premature: ts.closed
	}
	done := make(chan struct{})
	go func() {
		time.Sleep(10 * time.Millisecond) // let the premature runs start
		ts.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(wait):
	}
}

// runTimer calls tm's callback (premature, args...) as one run, st.r,
// on a coroutine of the state; the caller holds the state.
func (st *state) runTimer(tm *luaTimer, premature bool) error {
	L := st.timerThread()
	r := st.r
	r.now = time.Now()
	r.L, r.cur = L, L
	st.L.G.CurrentThread = L
	ctx := newRunContext()
	ctx.arm(context.Background(), r.now, st.rt.timeout)
	st.rt.guard.enter(ctx)
	defer st.rt.guard.leave(ctx)
	r.ctx = ctx
	L.SetContext(ctx)
	L.Push(tm.fn)
	L.Push(lua.LBool(premature))
	for _, a := range tm.args {
		L.Push(a)
	}
	err := L.PCall(1+len(tm.args), 0, nil)
	ctxErr := ctx.Err()
	st.endThreads(err != nil || r.exited || ctxErr != nil)
	if ctxErr == nil {
		ctxErr = ctx.Err()
	}
	ctx.disarm()
	st.closeSockets()
	L.RemoveContext()
	L.SetTop(0)
	if r.req.luaCtx != nil {
		st.logf(ngxlog.Debug, "lua release ngx.ctx at ref 1")
	}
	r.ctx, r.req = nil, nil
	if err == nil {
		st.idleCos = append(st.idleCos, L)
	}
	switch {
	case err == nil || r.exited:
		return nil
	case errors.Is(ctxErr, context.DeadlineExceeded):
		return &runError{msg: "lua entry thread aborted: runtime error: " + ErrTimeout.Error(), err: ErrTimeout}
	case errors.Is(ctxErr, ErrMemory):
		return &runError{msg: "lua entry thread aborted: runtime error: " + ErrMemory.Error(), err: ErrMemory}
	}
	return &runError{msg: "lua entry thread aborted: runtime error: " + errorText(err)}
}

// timerThread returns a coroutine of the state for a timer callback: an
// idle one, or a new one made without the context of a run that waits
// meanwhile (it gets the timer's own).
func (st *state) timerThread() *lua.LState {
	if n := len(st.idleCos); n > 0 {
		L := st.idleCos[n-1]
		st.idleCos = st.idleCos[:n-1]
		return L
	}
	parked := st.L.RemoveContext()
	L, _ := st.L.NewThread()
	if parked != nil {
		st.L.SetContext(parked)
	}
	return L
}

// noRequestInTimer raises resty.core's error for request APIs used in a
// timer callback, which has no request.
func (st *state) noRequestInTimer(L *lua.LState) {
	if st.r.phase == PhaseTimer || st.r.phase == PhaseExitWorker { // neither has a request
		cError(L, "API disabled in the current context")
	}
}

// timerGuard wraps the ngx.req functions that raise that error in timers.
func (st *state) timerGuard(fns map[string]lua.LGFunction, except ...string) {
	for name, fn := range fns {
		if slices.Contains(except, name) {
			continue
		}
		fns[name] = func(L *lua.LState) int {
			st.noRequestInTimer(L)
			return fn(L)
		}
	}
}

func (rt *Runtime) logf(level ngxlog.Level, format string, args ...any) {
	if rt.opts.Log != nil {
		rt.opts.Log(level, sprintf(format, args...))
	}
}
