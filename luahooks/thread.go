package luahooks

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"ngxsockify/ngxlog"
)

// Light threads (ngx.thread.spawn, wait, kill) and the per-run scheduler
// they run under.
//
// OpenResty suspends a Lua coroutine when it waits (a cosocket, ngx.sleep,
// ngx.thread.wait) and resumes it from nginx's event loop. gopher-lua
// cannot yield across a Go call (pcall, a metamethod, an iterator, one of
// our ngx.* functions), and OpenResty code does wait inside pcall. So here
// each light thread runs on a goroutine of its own, and the goroutines of
// one run pass a baton: only the holder runs Lua or touches the state.
// A thread that waits hands the baton on (to the next thread that is ready
// to go on, or leaves it free) and blocks its goroutine on the I/O; when
// the I/O is done it queues for the baton again. That gives OpenResty's
// interleaving: a spawned thread runs at once until it first waits, then
// its parent goes on; threads whose waits end go on in that order; and a
// run ends when its entry thread and all its user threads have ended.
//
// A run that spawns no thread has no scheduler: waits block the request's
// goroutine as before. The run's time limit counts while some thread holds
// the baton (running Lua), and pauses while all wait.

// sched is the scheduler of one run's light threads.
type sched struct {
	st *state
	r  *runCtx // the run whose threads these are

	mu     sync.Mutex
	holder *lthread // runs now; nil: all threads wait
	// posted are threads that go on before any other: the parent of a
	// thread just spawned, and threads that yielded by hand (nginx's
	// posted threads run before the next event); ready are threads whose
	// wait ended, in that order.
	posted []*lthread
	ready  []*lthread
	// threads are the user threads by their coroutine.
	threads map[*lua.LState]*lthread
	live    sync.WaitGroup // user threads whose goroutine has not ended
	entry   *lthread
	// ending: the entry thread ended and waits for the user threads.
	// users counts the user threads that have not ended (an on_abort
	// handler once it starts); when the entry thread and they all have
	// ended, stop is closed (stopped) and an on_abort handler does not
	// start any more.
	ending  bool
	users   int
	stop    chan struct{}
	stopped bool
	ended   int // user threads ended so far
}

// lthread is one light thread: the entry thread (the chunk) or a user
// thread (ngx.thread.spawn).
type lthread struct {
	co     *lua.LState // the thread's coroutine (the state itself for the entry thread)
	parent *lua.LState // the coroutine that spawned it: only it waits or kills
	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{} // the baton is handed to this thread
	// cur is the coroutine that runs on this thread (gopher-lua's
	// G.CurrentThread) when it hands the baton on.
	cur *lua.LState
	// queued: another thread put this one in the ready queue while it
	// still waited (a semaphore post wakes waiters in its order); its
	// acquire then only waits for the baton.
	queued bool
	// onKill, set during a wait, undoes it at once when the thread is
	// killed (a semaphore waiter leaves the queue).
	onKill func()

	// Set by the thread's end, read by waiters (under the baton).
	done    bool
	ended   chan struct{}
	ok      bool
	results []lua.LValue // what wait gives after true or false
	// reaped: waited for or killed (coroutine.status "dead").
	reaped bool
	endSeq int // order of ending among the run's threads
	killed bool
}

// threadSched returns the run's scheduler, starting it (the caller is the
// entry thread, which holds the baton) at the first spawn.
func (st *state) threadSched() *sched {
	if st.r.sched == nil {
		st.ownContext() // the threads' contexts derive from the run's
		entry := &lthread{co: st.r.L, ctx: st.r.ctx, wake: make(chan struct{}, 1)}
		st.r.sched = &sched{st: st, r: st.r, threads: map[*lua.LState]*lthread{}, entry: entry, stop: make(chan struct{})}
		st.r.sched.holder = entry
	}
	return st.r.sched
}

// ownContext gives the run a context of its own, which coroutines and
// light threads derive theirs from (runContext.std).
func (st *state) ownContext() {
	if st.r.ctx == nil {
		return
	}
	st.r.ctx.ownChannel()
	if ctx := st.r.ctx.luaContext(); st.r.L.Context() != ctx {
		st.r.L.SetContext(ctx)
	}
}

// current is the light thread that holds the baton (the caller).
func (s *sched) current() *lthread {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holder
}

// release hands the baton on from t: to the first ready thread, or leaves
// it free (and pauses the run's clock: nothing runs Lua).
func (s *sched) release(t *lthread) {
	t.cur = s.st.L.G.CurrentThread
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handNext()
}

// stopIfDone closes stop once the entry thread and every user thread
// have ended; s.mu is held.
func (s *sched) stopIfDone() {
	if s.ending && s.users == 0 && !s.stopped {
		s.stopped = true
		close(s.stop)
	}
}

// handNext gives the baton to the first posted thread, else the first
// ready one, or frees it (and the state, for other runs: timers); s.mu
// is held.
func (s *sched) handNext() {
	for _, q := range []*[]*lthread{&s.posted, &s.ready} {
		if len(*q) > 0 {
			next := (*q)[0]
			*q = (*q)[1:]
			s.holder = next
			next.wake <- struct{}{}
			return
		}
	}
	s.holder = nil
	s.r.ctx.pause()
	s.st.leave()
}

// acquire waits until t holds the baton again.
func (s *sched) acquire(t *lthread) {
	s.mu.Lock()
	switch {
	case t.queued:
		t.queued = false
		s.mu.Unlock()
		<-t.wake
	case s.holder == nil:
		s.holder = t
		s.mu.Unlock()
		// the state may run another run meanwhile (a timer): take it
		// back outside s.mu, which that run may need (a semaphore post)
		s.st.enter(s.r)
		s.r.ctx.resume()
	default:
		s.ready = append(s.ready, t)
		s.mu.Unlock()
		<-t.wake
	}
	s.st.L.G.CurrentThread = t.cur
}

// enqueue puts t, which still waits, in the ready queue now (the caller
// holds the baton), so that threads woken together go on in that order.
func (s *sched) enqueue(t *lthread) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t.queued = true
	s.ready = append(s.ready, t)
}

// block runs f, which waits (on the network, a timer, another thread),
// without the baton: other threads run meanwhile. f gets the waiting
// thread's Done channel (closed when the thread is killed or the run
// ends); a wait cut short that way raises, so that the thread unwinds
// without acting on it. Without light threads f just runs with the run's
// clock paused.
func (st *state) block(f func(done <-chan struct{}) error) error {
	err, aborted := st.blockFor(f)
	if aborted {
		st.abortThread()
	}
	return err
}

// blockFor is block that reports a wait cut short instead of raising.
func (st *state) blockFor(f func(done <-chan struct{}) error) (err error, aborted bool) {
	if st.requiring > 0 || st.noYield > 0 {
		// LuaJIT cannot yield in a module's body (require) or in
		// xpcall's handler: the wait fails (abortThread raises)
		st.cannotYield = true
		return nil, true
	}
	if int64(st.r.body.Len()) >= st.postpone() {
		st.flushOutput()
	}
	if req := st.r.req; req != nil && req.OnWait != nil {
		req.OnWait()
	}
	s := st.r.sched
	if s == nil {
		r := st.r
		if r.ctx == nil {
			return f(nil), false
		}
		r.ctx.pause()
		st.leave()
		err = f(r.ctx.Done())
		st.enter(r)
		r.ctx.resume()
		r.now = time.Now() // nginx's cached time moves on with its event loop
		return err, false
	}
	t := s.current()
	s.release(t)
	err = f(t.ctx.Done())
	s.acquire(t)
	st.r.now = time.Now()
	return err, t.ctx.Err() != nil
}

// leave hands the state on while its run waits: a timer callback may
// run on it meanwhile (st.busy is the state's baton). The run keeps
// which coroutine ran. With lua_check_client_abort on, the run watches
// the client meanwhile.
func (st *state) leave() {
	r := st.r
	r.cur = st.L.G.CurrentThread
	if req := r.req; req != nil && req.WatchClient != nil && r.ctx != nil && !req.goneSeen.Load() {
		switch r.phase {
		case PhaseServerRewrite, PhaseRewrite, PhaseAccess, PhaseContent:
			r.ctx.ownChannel() // a channel that cancelling closes
			r.unwatch = req.WatchClient(func() { st.clientGone(r) })
		}
	}
	st.busy.Unlock()
}

// enter takes the state back for run r after a wait (leave).
func (st *state) enter(r *runCtx) {
	if r.unwatch != nil {
		r.unwatch()
		r.unwatch = nil
	}
	st.busy.Lock()
	st.r = r
	st.L.G.CurrentThread = r.cur
}

// errClientGone ends a run whose client went away (lua_check_client_abort).
var errClientGone = errors.New("client prematurely closed connection")

// clientGone is run r's client going away while all its threads wait
// (leave's watch, on the watcher's goroutine: it must not block, nor
// touch the state): the on_abort handler starts, or the run ends.
func (st *state) clientGone(r *runCtx) {
	req := r.req
	req.goneSeen.Store(true)
	log := req.Log
	if log == nil {
		log = st.rt.opts.Log
	}
	if log != nil {
		log(ngxlog.Info, errClientGone.Error())
	}
	if req.clientGone != nil {
		close(req.clientGone) // ngx.on_abort's handler goes
		return
	}
	r.ctx.cancel(errClientGone)
}

// abortThread unwinds the running light thread: it was killed, or the
// request ended (ngx.exit in another thread, an error in the entry thread,
// the time limit).
func (st *state) abortThread() {
	if st.cannotYield {
		st.cannotYield = false
		st.curL().Error(lua.LString("attempt to yield across C-call boundary"), 0)
	}
	st.curL().RaiseError("%v", context.Canceled)
}

// curL is the coroutine that runs now (it holds the baton).
func (st *state) curL() *lua.LState {
	if cur := st.L.G.CurrentThread; cur != nil {
		return cur
	}
	return st.r.L
}

// yieldThread is coroutine.yield() at the top of a light thread: with
// other threads posted, the thread is posted after them; else it goes on
// at once (ngx_http_lua_run_thread).
func (st *state) yieldThread() {
	s := st.r.sched
	if s == nil {
		return
	}
	s.mu.Lock()
	if len(s.posted) == 0 {
		s.mu.Unlock()
		return
	}
	t := s.holder
	t.cur = st.L.G.CurrentThread
	s.posted = append(s.posted, t)
	s.handNext()
	s.mu.Unlock()
	<-t.wake
	st.L.G.CurrentThread = t.cur
	if t.ctx.Err() != nil {
		st.abortThread()
	}
}

// endThreads is the entry thread's end: it waits for the user threads
// (which go on) unless the run was aborted (ngx.exit anywhere, an error in
// the entry thread, the time limit), which kills them.
func (st *state) endThreads(abort bool) {
	s := st.r.sched
	if s == nil {
		return
	}
	if abort {
		s.mu.Lock()
		for _, t := range s.threads {
			t.cancel()
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.ending = true
	s.stopIfDone()
	s.mu.Unlock()
	t := s.entry
	s.release(t)
	s.live.Wait()
	s.acquire(t)
	s.mu.Lock()
	for _, t := range s.threads {
		t.cancel()
	}
	s.mu.Unlock()
	st.r.sched = nil
	st.L.G.CurrentThread = st.r.L
}

func (st *state) openThread() *lua.LTable {
	return st.funcTable(map[string]lua.LGFunction{
		"spawn": st.threadSpawn,
		"wait":  st.threadWait,
		"kill":  st.threadKill,
	})
}

// threadSpawn is ngx.thread.spawn(f, ...): the thread runs at once until
// it ends or first waits; then the caller goes on.
func (st *state) threadSpawn(L *lua.LState) int {
	if !st.yieldable() { // lua-nginx-module's yieldable contexts, ssl_certificate_by_lua* among them
		st.phaseCheck("ngx.thread.spawn")
	}
	fn := L.CheckFunction(1)
	args := make([]lua.LValue, 0, L.GetTop()-1)
	for i := 2; i <= L.GetTop(); i++ {
		args = append(args, L.Get(i))
	}
	s := st.threadSched()
	parent := s.current()
	co, cancel := st.r.L.NewThread()
	t := &lthread{co: co, parent: L, ctx: co.Context(), cancel: cancel,
		wake: make(chan struct{}, 1), ended: make(chan struct{}), cur: co}
	parent.cur = st.L.G.CurrentThread
	s.mu.Lock()
	s.threads[co] = t
	s.users++
	// The parent is posted: it goes on when the child hands the baton on,
	// after the threads posted before it.
	s.posted = append(s.posted, parent)
	s.holder = t
	s.mu.Unlock()
	s.live.Add(1)
	go st.runThread(t, fn, args)
	<-parent.wake
	st.L.G.CurrentThread = parent.cur
	L.Push(co)
	return 1
}

// onAbort is ngx.on_abort(f): f runs as a user thread when the client
// goes away (lua_check_client_abort on) while the request's Lua runs.
func (st *state) onAbort(L *lua.LState) int {
	switch st.r.phase {
	case PhaseServerRewrite, PhaseRewrite, PhaseAccess, PhaseContent:
	default:
		st.phaseCheck("ngx.on_abort")
	}
	fn := L.CheckFunction(1)
	req := st.r.req
	switch {
	case req == nil || req.WatchClient == nil:
		return fail(L, "lua_check_client_abort is off")
	case req.onAbort:
		return fail(L, "duplicate call")
	}
	req.onAbort = true
	req.clientGone = make(chan struct{})
	s := st.threadSched()
	t := &lthread{parent: L, wake: make(chan struct{}, 1), ended: make(chan struct{})}
	s.live.Add(1) // the handler's goroutine, which may never run it
	go func() {
		select {
		case <-req.clientGone:
		case <-s.stop:
			s.live.Done()
			return
		}
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			s.live.Done()
			return
		}
		s.users++
		s.mu.Unlock()
		s.acquire(t)
		co, cancel := st.r.L.NewThread()
		t.co, t.ctx, t.cancel, t.cur = co, co.Context(), cancel, co
		s.mu.Lock()
		s.threads[co] = t
		s.mu.Unlock()
		st.runThread(t, fn, nil)
	}()
	return okTrue(L)
}

// runThread is a user thread's goroutine; it starts holding the baton.
func (st *state) runThread(t *lthread, fn *lua.LFunction, args []lua.LValue) {
	s := st.r.sched
	defer s.live.Done()
	co := t.co
	st.L.G.CurrentThread = co
	co.Push(fn)
	for _, a := range args {
		co.Push(a)
	}
	err := co.PCall(len(args), lua.MultRet, nil)
	t.done = true
	s.ended++
	t.endSeq = s.ended
	switch {
	case err == nil:
		t.ok = true
		for i := 1; i <= co.GetTop(); i++ {
			t.results = append(t.results, co.Get(i))
		}
	case t.killed || t.ctx.Err() != nil || st.r.exited:
		// killed, or the request ended: nothing to report
	default:
		st.logf(ngxlog.Err, "lua user thread aborted: runtime error: %s", errorText(err))
		// ngx.thread.wait gives what LuaJIT left on the thread's stack:
		// error()'s argument, then the error value (with the position).
		var v lua.LValue = lua.LString(errorText(err))
		if ae, ok := err.(*lua.ApiError); ok {
			v = ae.Object
			if s, ok := v.(lua.LString); ok {
				v = lua.LString(luajitMessage(namedMessage(string(s), ae.StackTrace)))
			}
		}
		arg := v
		if s, ok := v.(lua.LString); ok {
			arg = lua.LString(stripPosition(string(s)))
		}
		t.results = []lua.LValue{arg, v}
	}
	co.SetTop(0)
	close(t.ended)
	s.mu.Lock()
	s.users--
	s.stopIfDone()
	s.handNext()
	s.mu.Unlock()
}

// stripPosition drops the "chunk:line: " that error() put in front of a
// message: ngx.thread.wait gives the message without it.
func stripPosition(msg string) string {
	if i := strings.Index(msg, ": "); i > 0 {
		head := msg[:i]
		if j := strings.LastIndexByte(head, ':'); j > 0 && isDigits(head[j+1:]) {
			return msg[i+2:]
		}
	}
	return msg
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// userThread returns the user thread that v is, raising as OpenResty does
// when v is not one or the caller did not spawn it.
func (st *state) userThread(L *lua.LState, v lua.LValue) *lthread {
	co, ok := v.(*lua.LState)
	if !ok {
		L.ArgError(1, "coroutine expected")
	}
	var t *lthread
	if st.r.sched != nil {
		t = st.r.sched.threads[co]
	}
	if t == nil {
		cError(L, "attempt to wait on a coroutine that is not a user thread")
	}
	if t.parent != L {
		cError(L, "only the parent coroutine can wait on the thread")
	}
	return t
}

// threadWait is ngx.thread.wait(t1, t2, ...): the results of the first of
// them to end (true, ... or false, err), waiting for one if none has.
func (st *state) threadWait(L *lua.LState) int {
	n := L.GetTop()
	if n == 0 {
		cError(L, "at least one coroutine should be specified")
	}
	ts := make([]*lthread, n)
	for i := range ts {
		ts[i] = st.userThread(L, L.Get(i+1))
	}
	for {
		for _, t := range ts {
			if t.reaped {
				return fail(L, "already waited or killed")
			}
		}
		var t *lthread // the first of them to have ended
		for _, x := range ts {
			if x.done && (t == nil || x.endSeq < t.endSeq) {
				t = x
			}
		}
		if t != nil {
			t.reaped = true
			if t.ok {
				L.Push(lua.LTrue)
			} else {
				L.Push(lua.LFalse)
			}
			for _, v := range t.results {
				L.Push(v)
			}
			return 1 + len(t.results)
		}
		cases := make([]<-chan struct{}, len(ts))
		for i, t := range ts {
			cases[i] = t.ended
		}
		st.block(func(done <-chan struct{}) error {
			waitAny(cases, done)
			return nil
		})
	}
}

// waitAny returns when one of chs or done is closed.
func waitAny(chs []<-chan struct{}, done <-chan struct{}) {
	if len(chs) == 1 {
		select {
		case <-chs[0]:
		case <-done:
		}
		return
	}
	stop := make(chan struct{})
	var once sync.Once
	for _, ch := range chs {
		go func() {
			select {
			case <-ch:
				once.Do(func() { close(stop) })
			case <-stop:
			}
		}()
	}
	select {
	case <-stop:
	case <-done:
		once.Do(func() { close(stop) })
	}
}

// threadKill is ngx.thread.kill(t): ends a user thread the caller spawned
// that has not ended (its pending wait is dropped).
func (st *state) threadKill(L *lua.LState) int {
	co, ok := L.Get(1).(*lua.LState)
	if !ok {
		L.ArgError(1, "coroutine expected")
	}
	var t *lthread
	if st.r.sched != nil {
		t = st.r.sched.threads[co]
	}
	switch {
	case t == nil:
		return fail(L, "not user thread")
	case t.parent != L:
		return fail(L, "killer not parent")
	case t.reaped:
		return fail(L, "already waited or killed")
	case t.done:
		return fail(L, "already terminated")
	}
	t.killed, t.reaped = true, true
	if t.onKill != nil {
		t.onKill()
		t.onKill = nil
	}
	t.cancel()
	return okTrue(L)
}

func okTrue(L *lua.LState) int {
	L.Push(lua.LNumber(1))
	return 1
}

// threadStatus is coroutine.status for light threads: "running" until it
// ends ("normal" while a coroutine it resumed runs or waits), "zombie"
// until it is waited for, then "dead"; nil for other coroutines.
func (st *state) threadStatus(co *lua.LState) lua.LValue {
	if st.r.sched == nil {
		return nil
	}
	t := st.r.sched.threads[co]
	switch {
	case t == nil:
		return nil
	case t.reaped:
		return lua.LString("dead")
	case t.done:
		return lua.LString("zombie")
	}
	cur := t.cur
	if st.r.sched.holder == t {
		cur = st.L.G.CurrentThread
	}
	if cur != nil && cur != co {
		return lua.LString("normal") // it resumed a coroutine, which runs or waits
	}
	return lua.LString("running")
}

// sleepFor waits d (ngx.sleep) or until the thread is killed or the run
// ends.
func sleepFor(d time.Duration, done <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// openCoroutineThreads makes the coroutine library see light threads as
// OpenResty's does: coroutine.running() in the entry thread is the entry
// thread (not nil); coroutine.status of a user thread is "running",
// "zombie" or "dead"; coroutine.yield() at the top of a light thread
// (where gopher-lua has no parent to yield to) lets the other threads run
// and goes on with no values.
func (st *state) openCoroutineThreads(co *lua.LTable) {
	L := st.L
	yield := co.RawGetString("yield").(*lua.LFunction)
	co.RawSetString("yield", L.NewFunction(func(L *lua.LState) int {
		if L.Parent == nil && st.r.ctx != nil && (L == st.r.L || st.r.sched != nil && st.r.sched.threads[L] != nil) {
			L.SetTop(0)
			st.yieldThread()
			L.Push(lua.LNil) // measured: one nil
			return 1
		}
		return yield.GFunction(L)
	}))
	co.RawSetString("running", L.NewFunction(func(L *lua.LState) int {
		L.Push(st.curL())
		return 1
	}))
	resume := co.RawGetString("resume").(*lua.LFunction)
	var resumeFn *lua.LFunction
	resumeFn = L.NewFunction(func(L *lua.LState) int {
		if th, ok := L.Get(1).(*lua.LState); ok && th != L && resumedBy(L, th) {
			// th waits in its own resume of L (or of a coroutine that
			// resumed L): gopher-lua would resume it anyway and recurse
			// until the Go stack overflows, which kills the process.
			L.Push(lua.LFalse)
			L.Push(lua.LString("cannot resume normal coroutine"))
			return 2
		}
		n := resume.GFunction(L)
		// LuaJIT's words for what gopher-lua refuses
		if n == 2 && L.Get(-2) == lua.LFalse {
			switch L.Get(-1) {
			case lua.LString("can not resume a running thread"):
				L.Replace(-1, lua.LString("cannot resume running coroutine"))
			case lua.LString("can not resume a dead thread"):
				L.Replace(-1, lua.LString("cannot resume dead coroutine"))
			}
		}
		return n
	})
	co.RawSetString("resume", resumeFn)
	co.RawSetString("wrap", L.NewFunction(st.coroutineWrap(co.RawGetString("create").(*lua.LFunction), resumeFn)))
	status := co.RawGetString("status").(*lua.LFunction)
	co.RawSetString("status", L.NewFunction(func(L *lua.LState) int {
		if th, ok := L.Get(1).(*lua.LState); ok {
			if s := st.threadStatus(th); s != nil {
				L.Push(s)
				return 1
			}
		}
		return status.GFunction(L)
	}))
}

// coroutineWrap is coroutine.wrap as OpenResty's (in a phase that cannot
// yield, LuaJIT's: any failure raises): the function it returns
// resumes the coroutine and returns what it yields or returns; a refused
// resume (a dead, running or normal coroutine) returns false and the
// reason, as coroutine.resume; an error in the coroutine is raised again
// in the caller, its value unchanged, and counted in r.wrapChain for the
// "coroutine N:" lines of the traceback (errorTraceback).
func (st *state) coroutineWrap(create, resume *lua.LFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		L.Push(create)
		L.Push(L.CheckFunction(1))
		L.Call(1, 1)
		th := L.Get(-1).(*lua.LState)
		L.Push(L.NewFunction(func(L *lua.LState) int {
			refused := th.Dead || th == L || L.G.CurrentThread == th || resumedBy(L, th)
			errsBefore := st.r.wrapErrs
			top := L.GetTop()
			L.Push(resume)
			L.Push(th)
			for i := 1; i <= top; i++ {
				L.Push(L.Get(i))
			}
			L.Call(top+1, lua.MultRet)
			n := L.GetTop() - top
			plain := !st.yieldable()
			if n == 0 || refused && !plain {
				return n
			}
			if plain && L.Get(top+1) == lua.LFalse {
				// where nothing yields OpenResty keeps LuaJIT's
				// coroutine.wrap: it raises, naming the caller's line
				if s, ok := L.Get(-1).(lua.LString); ok {
					L.Error(s, 1)
				}
				L.Error(L.Get(-1), 0)
			}
			if L.Get(top+1) == lua.LFalse {
				if st.r.wrapErrs > errsBefore {
					st.r.wrapChain++ // raised again by a coroutine.wrap inside
				} else {
					st.r.wrapChain = 1
				}
				st.r.wrapErrs++
				L.Error(L.Get(-1), 0)
			}
			L.Remove(top + 1)
			return n - 1
		}))
		return 1
	}
}

// yieldable reports whether the run's phase may yield (OpenResty's
// yieldable contexts), where its own coroutine API replaces LuaJIT's.
func (st *state) yieldable() bool {
	switch st.r.phase {
	case PhaseServerRewrite, PhaseRewrite, PhaseAccess, PhaseContent, PhaseTimer, PhaseSSLCert:
		return !st.inInit
	}
	return false
}

// resumedBy reports whether co is one of the coroutines whose resume L
// runs in: L's parent, its parent's parent, and so on ("normal").
func resumedBy(L, co *lua.LState) bool {
	for p := L.Parent; p != nil; p = p.Parent {
		if p == co {
			return true
		}
	}
	return false
}

// postponeOutput is nginx's postpone_output: its write filter holds less
// output than that until a flush (ngx.flush) or the end.
const postponeOutput = 1460

// postpone is the request's postpone_output (postponeOutput by default).
func (st *state) postpone() int64 {
	if req := st.r.req; req != nil && req.PostponeSet {
		return req.PostponeOutput
	}
	return postponeOutput
}

// writeNow is nginx's write filter after ngx.say and ngx.print: headers of
// postpone_output bytes or more go to the client by themselves, and so
// does pending output of that size. It reports false when writing to the
// client failed, now or before.
func (st *state) writeNow() bool {
	req := st.r.req
	if req == nil || req.Flush == nil || !req.headersOut {
		return true
	}
	switch st.r.phase {
	case PhaseServerRewrite, PhaseRewrite, PhaseAccess, PhaseContent:
	default:
		return true
	}
	limit := st.postpone()
	if limit >= postponeOutput {
		// the default: output waits for a flush, a wait or the end
		// (fewer, larger writes; the bytes sent are the same)
		return !st.writeFailed()
	}
	if !req.headPushed && st.headerSize() >= limit {
		req.headPushed = true
		req.Flush(nil)
	}
	if st.r.body.Len() > 0 && int64(st.r.body.Len()) >= limit {
		st.flushOutput()
	}
	return !st.writeFailed()
}

func (st *state) writeFailed() bool {
	req := st.r.req
	return req != nil && req.WriteFailed != nil && (req.headPushed || req.Streamed > 0) && req.WriteFailed()
}

// headerSize is about the size of the response header nginx would write:
// its status line, Server and Date, and the header fields set.
func (st *state) headerSize() int64 {
	n := int64(len("HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sun, 06 Dec 2026 00:00:00 GMT\r\n\r\n"))
	for k, vs := range st.r.req.RespHeader {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 4)
		}
	}
	return n
}

// flushOutput hands the output produced so far to Request.Flush, once the
// headers are out (not on HTTP/1.0, where lua_http10_buffering keeps it
// all to the end). ngx.flush calls it; a wait calls it when nginx's write
// filter would have sent the output (postponeOutput).
func (st *state) flushOutput() {
	req := st.r.req
	if req == nil || req.Flush == nil || !req.headersOut || st.r.body.Len() == 0 {
		return
	}
	switch st.r.phase {
	case PhaseServerRewrite, PhaseRewrite, PhaseAccess, PhaseContent:
	default:
		return
	}
	// Writing to the client is waiting (a slow client, limit_rate), not
	// running Lua: the run's clock stops meanwhile.
	if ctx := st.r.ctx; ctx != nil {
		ctx.pause()
		defer ctx.resume()
	}
	req.Flush(st.r.body.Bytes())
	req.Streamed += int64(st.r.body.Len())
	st.r.body.Reset()
}
