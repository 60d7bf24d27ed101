package luahooks

import (
	"context"
	"errors"
	"sync"
	"time"

	"ngxsockify/ngxlog"

	lua "github.com/yuin/gopher-lua"
)

// ngx.run_worker_thread(pool, module, func, args...) as lua-nginx-module
// 0.10.23 runs it: module.func(args...) runs in a Lua state of its own,
// taken from a pool of such states (lua_worker_thread_vm_pool_size, 100
// by default, never more), on one of the named thread_pool's threads; the
// caller waits as for a cosocket and gets true and the function's results,
// or false and an error. Arguments and results are copied between the
// states: booleans, numbers, strings, nil (at the top level only), ngx.null
// and tables of those, at most 100 tables deep.
//
// The worker state has the libraries of a request's state (io and os
// included, iolib.go) and a reduced ngx table, as
// lua-nginx-module gives its thread VMs: the string functions
// (encode_base64, decode_base64, md5, md5_bin, sha1_bin, hmac_sha1,
// crc32_short, crc32_long, encode_args, decode_args, quote_sql_str),
// ngx.re (match, find, gmatch, sub, gsub), ngx.config and ngx.shared. Its
// globals and modules (package.loaded) last from call to call. A call is
// bounded by Options.Timeout like a run.

// ThreadPool is a thread_pool directive: how many functions run at once,
// how many more may wait for a thread.
type ThreadPool struct {
	Threads, MaxQueue int
}

// defaultWorkerThreadVMs is lua_worker_thread_vm_pool_size's default.
const defaultWorkerThreadVMs = 100

// maxCopyDepth is how deep tables are copied (LUA_COPY_MAX_DEPTH).
const maxCopyDepth = 100

// workerThreads is a runtime's pools and worker states.
type workerThreads struct {
	mu     sync.Mutex
	pools  map[string]*threadPool
	idle   []*state // worker states waiting for a call, the last used last
	count  int      // worker states made (idle or in a call)
	closed bool
}

type threadPool struct {
	slots  chan struct{} // a thread: held while a function runs
	mu     sync.Mutex
	queued int // calls waiting for a thread
	max    int
}

// threadPool returns the pool called name, or nil.
func (rt *Runtime) threadPool(name string) *threadPool {
	w := &rt.wthreads
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pools == nil {
		w.pools = map[string]*threadPool{}
		for n, p := range rt.opts.ThreadPools {
			q := p.MaxQueue
			if q <= 0 {
				q = 65536 // nginx's default; max_queue=0 limits nothing there either (measured)
			}
			w.pools[n] = &threadPool{slots: make(chan struct{}, max(p.Threads, 1)), max: q}
		}
	}
	return w.pools[name]
}

// getWorkerState takes an idle worker state, or makes one while the pool
// size allows; nil when neither.
func (rt *Runtime) getWorkerState(path, cpath lua.LValue) *state {
	w := &rt.wthreads
	w.mu.Lock()
	if n := len(w.idle); n > 0 {
		st := w.idle[n-1]
		w.idle = w.idle[:n-1]
		w.mu.Unlock()
		return st
	}
	limit := rt.opts.WorkerThreadVMs
	switch {
	case limit == 0:
		limit = defaultWorkerThreadVMs
	case limit < 0:
		limit = 0
	}
	if w.closed || w.count >= limit {
		w.mu.Unlock()
		return nil
	}
	w.count++
	w.mu.Unlock()
	st := rt.newWorkerState(path, cpath)
	return st
}

// putWorkerState gives a worker state back after a call.
func (rt *Runtime) putWorkerState(st *state) {
	st.L.SetTop(0)
	w := &rt.wthreads
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		st.L.Close()
		return
	}
	w.idle = append(w.idle, st)
	w.mu.Unlock()
}

// closeWorkerThreads closes the idle worker states; those in a call are
// closed when it ends (Close).
func (rt *Runtime) closeWorkerThreads() {
	w := &rt.wthreads
	w.mu.Lock()
	idle := w.idle
	w.idle, w.closed = nil, true
	w.mu.Unlock()
	for _, st := range idle {
		st.L.Close()
	}
}

// newWorkerState builds a worker state: the libraries of a request's
// state, the caller's package.path and cpath, and the reduced ngx table.
// init_by_lua is not replayed in it (lua-nginx-module does not either).
func (rt *Runtime) newWorkerState(path, cpath lua.LValue) *state {
	L := lua.NewState(lua.Options{SkipOpenLibs: true, CallStackSize: 200, RegistrySize: 1024 * 4, RegistryMaxSize: 1024 * 256})
	st := &state{rt: rt, L: L, ctx: newRunContext(), fns: map[*lua.FunctionProto]*lua.LFunction{}}
	st.r = &st.reqRun
	st.reqRun.L = L
	st.reqRun.phase = PhaseContent
	st.openLibs()
	g := L.G.Global
	pkg := g.RawGetString("package").(*lua.LTable)
	if s, ok := path.(lua.LString); ok {
		pkg.RawSetString("path", s)
	}
	if s, ok := cpath.(lua.LString); ok {
		pkg.RawSetString("cpath", s)
	}
	full := st.ngx
	ngx := L.NewTable()
	for _, k := range []string{"encode_base64", "decode_base64", "md5", "md5_bin", "sha1_bin", "hmac_sha1",
		"crc32_short", "crc32_long", "encode_args", "decode_args", "quote_sql_str", "config", "shared", "re"} {
		ngx.RawSetString(k, full.RawGetString(k))
	}
	g.RawSetString("ngx", ngx)
	pkg.RawGetString("loaded").(*lua.LTable).RawSetString("ngx", lua.LNil)
	return st
}

// errCopy is a value copyValue cannot copy; its text is
// lua-nginx-module's.
type errCopy string

func (e errCopy) Error() string { return string(e) }

// copyValue copies v for another Lua state (ngx_http_lua_xcopy): nil only
// at the top level, tables at most maxCopyDepth deep.
func copyValue(v lua.LValue, top bool, depth int) (lua.LValue, error) {
	switch v := v.(type) {
	case lua.LBool, lua.LNumber, lua.LString:
		return v, nil
	case *lua.LNilType:
		if top {
			return lua.LNil, nil
		}
		return nil, errCopy("unsupported Lua type: LUA_TNIL")
	case *lua.LTable:
		if depth >= maxCopyDepth {
			return nil, errCopy("suspicious circular references, table depth exceed max depth: 100")
		}
		t := &lua.LTable{}
		var err error
		v.ForEach(func(k, val lua.LValue) {
			if err != nil {
				return
			}
			var ck, cv lua.LValue
			if ck, err = copyValue(k, false, depth+1); err != nil {
				return
			}
			if cv, err = copyValue(val, false, depth+1); err != nil {
				return
			}
			t.RawSet(ck, cv)
		})
		if err != nil {
			return nil, err
		}
		return t, nil
	case *lua.LFunction:
		return nil, errCopy("unsupported Lua type: LUA_TFUNCTION")
	case *lua.LUserData:
		if v == luaNull {
			return v, nil // a light userdata in lua-nginx-module
		}
		return nil, errCopy("unsupported Lua type: LUA_TUSERDATA")
	case *lua.LState:
		return nil, errCopy("unsupported Lua type: LUA_TTHREAD")
	default:
		return nil, errCopy("unsupported Lua type")
	}
}

// workerCall is one call running on a worker state.
type workerCall struct {
	st       *state
	nargs    int
	err      error
	finished chan struct{}
}

// run calls the function on the worker state (its goroutine), the pool's
// thread held meanwhile.
func (c *workerCall) run(pool *threadPool) {
	defer close(c.finished)
	pool.slots <- struct{}{}
	pool.mu.Lock()
	pool.queued--
	pool.mu.Unlock()
	defer func() { <-pool.slots }()
	st := c.st
	ctx := st.ctx
	ctx.arm(context.Background(), time.Now(), st.rt.timeout)
	st.rt.guard.enter(ctx)
	st.r.ctx = ctx
	st.r.now = time.Now()
	st.L.SetContext(ctx)
	c.err = st.L.PCall(c.nargs, lua.MultRet, nil)
	if c.err != nil && ctx.Err() != nil {
		c.err = ctx.Err()
		if errors.Is(c.err, context.DeadlineExceeded) {
			c.err = ErrTimeout
		}
	}
	ctx.disarm()
	st.rt.guard.leave(ctx)
	st.L.RemoveContext()
	st.r.ctx = nil
}

// runWorkerThread is ngx.run_worker_thread.
func (st *state) runWorkerThread(L *lua.LState) int {
	if st.inInit && st.r.phase == PhaseInit {
		cError(L, "no request found")
	}
	switch st.r.phase {
	case PhaseServerRewrite, PhaseRewrite, PhaseAccess, PhaseContent, PhaseTimer, PhaseSSLCert:
		if st.inInit {
			st.phaseCheck("run_worker_thread")
		}
	default:
		st.phaseCheck("run_worker_thread")
	}
	failed := func(msg string) int {
		L.Push(lua.LFalse)
		L.Push(lua.LString(msg))
		return 2
	}
	nargs := L.GetTop()
	if nargs < 3 {
		return failed("expecting at least 3 arguments")
	}
	name, ok := luaToString(L.Get(1))
	if !ok {
		return failed("threadpool should be a string")
	}
	pool := st.rt.threadPool(name)
	if pool == nil {
		return failed("thread pool " + name + " not found")
	}
	mod, ok := luaToString(L.Get(2))
	if !ok {
		return failed("module name should be a string")
	}
	fname, ok := luaToString(L.Get(3))
	if !ok {
		return failed("function name should be a string")
	}
	var path, cpath lua.LValue = lua.LNil, lua.LNil
	if pkg, ok := L.G.Global.RawGetString("package").(*lua.LTable); ok {
		path, cpath = pkg.RawGetString("path"), pkg.RawGetString("cpath")
	}
	ws := st.rt.getWorkerState(path, cpath)
	if ws == nil {
		return failed("no available Lua vm")
	}
	W := ws.L
	// module.func, required in the worker state (its own time limit)
	ctx := ws.ctx
	ctx.arm(context.Background(), time.Now(), st.rt.timeout)
	ws.r.ctx = ctx
	W.SetContext(ctx)
	W.Push(W.G.Global.RawGetString("require"))
	W.Push(lua.LString(mod))
	err := W.PCall(1, 1, nil)
	ctx.disarm()
	W.RemoveContext()
	ws.r.ctx = nil
	if err != nil {
		st.rt.putWorkerState(ws)
		return failed(workerError(err))
	}
	t, ok := W.Get(-1).(*lua.LTable)
	if !ok {
		st.rt.putWorkerState(ws)
		return failed("invalid lua module")
	}
	fn, ok := W.GetField(t, fname).(*lua.LFunction)
	if !ok {
		st.rt.putWorkerState(ws)
		return failed("invalid function")
	}
	W.SetTop(0)
	W.Push(fn)
	for i := 4; i <= nargs; i++ {
		v, err := copyValue(L.Get(i), true, 1)
		if err != nil {
			st.rt.putWorkerState(ws)
			return failed(err.Error() + " in the argument")
		}
		W.Push(v)
	}
	pool.mu.Lock()
	if pool.queued >= pool.max {
		waiting := pool.queued
		pool.mu.Unlock()
		st.logf(ngxlog.Err, "thread pool \"%s\" queue overflow: %d tasks waiting", name, waiting)
		st.rt.putWorkerState(ws)
		return failed("ngx_thread_task_post failed")
	}
	pool.queued++
	pool.mu.Unlock()

	call := &workerCall{st: ws, nargs: nargs - 3, finished: make(chan struct{})}
	go call.run(pool)
	done := false
	_, aborted := st.blockFor(func(abort <-chan struct{}) error {
		select {
		case <-call.finished:
			done = true
		case <-abort:
		}
		return nil
	})
	if !done {
		// the caller went away (killed, the request ended): the state
		// goes back to the pool when the function ends
		go func() {
			<-call.finished
			st.rt.putWorkerState(ws)
		}()
		if aborted {
			st.abortThread()
		}
		return 0
	}
	defer st.rt.putWorkerState(ws)
	if call.err != nil {
		return failed(workerError(call.err))
	}
	top := W.GetTop()
	L.Push(lua.LTrue)
	for i := 1; i <= top; i++ {
		v, err := copyValue(W.Get(i), true, 1)
		if err != nil {
			L.Pop(i)
			return failed(err.Error() + " in the return value")
		}
		L.Push(v)
	}
	return top + 1
}

// luaToString is lua_tolstring: strings, and numbers as Lua prints them.
func luaToString(v lua.LValue) (string, bool) {
	switch v := v.(type) {
	case lua.LString:
		return string(v), true
	case lua.LNumber:
		return formatNumber(float64(v)), true
	}
	return "", false
}

// workerError is the error a worker state's call raised, as
// lua-nginx-module passes it on (lua_tolstring of the error value).
func workerError(err error) string {
	var ae *lua.ApiError
	if errors.As(err, &ae) {
		switch v := ae.Object.(type) {
		case lua.LString:
			return luajitMessage(string(v))
		case lua.LNumber:
			return formatNumber(float64(v))
		}
		return ""
	}
	return err.Error()
}
