package luahooks

import (
	"fmt"
	"os"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// ngx.semaphore (lua-resty-core): new(n), sema:post(n), sema:wait(timeout)
// and sema:count(). A wait is a light thread's wait (block): other threads
// and requests run meanwhile, and the time limit pauses.
//
// In OpenResty a semaphore lives in the worker: one created when a module
// loads is shared by every request. Here modules load once per pooled Lua
// state, so a semaphore created while a module's body runs (require) or in
// init_by_lua is shared by the runtime, keyed by where it was created: the
// same module line gives every state the same semaphore. One created while
// a request runs belongs to that Lua object only, as in OpenResty.

// semaphore is the Go side of one ngx.semaphore object.
type semaphore struct {
	mu      sync.Mutex
	count   int
	waiters []*semWaiter
}

type semWaiter struct {
	ch      chan struct{} // closed when granted
	granted bool
	// th is the waiting light thread and sc its scheduler, when the
	// run has light threads: a post from the same run queues it at once.
	th *lthread
	sc *sched
}

// semaphores are the runtime's shared semaphores (created by modules).
type semaphores struct {
	mu sync.Mutex
	m  map[string]*semaphore
}

// post adds n resources and grants them to waiters in order; sc is the
// poster's scheduler (nil without light threads): its waiting threads go
// in its ready queue now, in the order they get the resources.
func (s *semaphore) post(n int, sc *sched) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count += n
	for s.count > 0 && len(s.waiters) > 0 {
		w := s.waiters[0]
		s.waiters = s.waiters[1:]
		s.count--
		w.granted = true
		if sc != nil && w.sc == sc {
			sc.enqueue(w.th)
		}
		close(w.ch)
	}
}

// tryWait takes a resource, or queues a waiter when wait is set.
func (s *semaphore) tryWait(wait bool, sc *sched) (bool, *semWaiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count > 0 && len(s.waiters) == 0 {
		s.count--
		return true, nil
	}
	if !wait {
		return false, nil
	}
	w := &semWaiter{ch: make(chan struct{}), sc: sc}
	if sc != nil {
		w.th = sc.current()
	}
	s.waiters = append(s.waiters, w)
	return false, w
}

// cancel takes w out of the queue; it reports whether w was granted
// meanwhile: then the caller holds the resource (only the first caller
// learns it).
func (s *semaphore) cancel(w *semWaiter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.granted {
		w.granted = false
		return true
	}
	for i, x := range s.waiters {
		if x == w {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			break
		}
	}
	return false
}

func (s *semaphore) value() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count - len(s.waiters)
}

func (st *state) openSemaphore() *lua.LTable {
	L := st.L
	methods := st.funcTable(map[string]lua.LGFunction{
		"post":  st.semPost,
		"wait":  st.semWait,
		"count": st.semCount,
	})
	meta := L.NewTable()
	meta.RawSetString("__index", methods)
	mod := st.funcTable(map[string]lua.LGFunction{
		"new": func(L *lua.LState) int {
			n := 0
			if v, ok := L.Get(1).(lua.LNumber); ok {
				n = int(v)
			}
			if n < 0 {
				return fail(L, "no memory") // lua-resty-core refuses a negative count
			}
			ud := L.NewUserData()
			ud.Value = st.newSemaphore(L, n)
			L.SetMetatable(ud, meta)
			L.Push(ud)
			return 1
		},
	})
	mod.RawSetString("version", lua.LNumber(0))
	return mod
}

// newSemaphore makes the semaphore of a new(n) call: shared by position
// when a module's body or init_by_lua runs (see above).
func (st *state) newSemaphore(L *lua.LState, n int) *semaphore {
	if st.requiring == 0 && !st.inInit {
		return &semaphore{count: n}
	}
	where := L.Where(1)
	if st.semSeen == nil {
		st.semSeen = map[string]int{}
	}
	st.semSeen[where]++
	key := fmt.Sprintf("%s#%d", where, st.semSeen[where])
	r := &st.rt.sems
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]*semaphore{}
	}
	s := r.m[key]
	if s == nil {
		s = &semaphore{count: n}
		r.m[key] = s
	}
	return s
}

func checkSem(L *lua.LState) *semaphore {
	ud, ok := L.Get(1).(*lua.LUserData)
	if ok {
		if s, ok := ud.Value.(*semaphore); ok {
			return s
		}
	}
	cError(L, "not a semaphore instance")
	return nil
}

func (st *state) semPost(L *lua.LState) int {
	s := checkSem(L)
	n := 1
	if v, ok := L.Get(2).(lua.LNumber); ok {
		n = int(v)
	}
	s.post(n, st.r.sched)
	L.Push(lua.LTrue)
	return 1
}

func (st *state) semCount(L *lua.LState) int {
	L.Push(lua.LNumber(checkSem(L).value()))
	return 1
}

// semWait is sema:wait(timeout): true, or nil and "timeout" when no
// resource came within timeout seconds (0: do not wait).
func (st *state) semWait(L *lua.LState) int {
	s := checkSem(L)
	v, ok := L.Get(2).(lua.LNumber)
	if !ok {
		cError(L, "bad argument #1 to 'wait' (number expected, got %s)", typeName(L.Get(2)))
	}
	timeout := float64(v)
	if timeout < 0 {
		timeout = 0
	}
	got, w := s.tryWait(timeout > 0, st.r.sched)
	if got {
		L.Push(lua.LTrue)
		return 1
	}
	if w == nil {
		return fail(L, "timeout")
	}
	switch st.r.phase {
	case PhaseServerRewrite, PhaseRewrite, PhaseAccess, PhaseContent, PhaseTimer:
	default:
		s.cancel(w)
		st.phaseCheck("semaphore")
	}
	if w.th != nil {
		w.th.onKill = func() {
			if s.cancel(w) {
				s.post(1, nil) // granted meanwhile: give it back
			}
		}
	}
	granted := false
	_, aborted := st.blockFor(func(done <-chan struct{}) error {
		t := time.NewTimer(time.Duration(timeout * float64(time.Second)))
		defer t.Stop()
		select {
		case <-w.ch:
		case <-t.C:
		case <-done:
		}
		// out of the queue at once (a killed thread's wait counts no more)
		granted = s.cancel(w)
		return nil
	})
	if w.th != nil {
		w.th.onKill = nil
	}
	if aborted {
		if granted {
			s.post(1, nil)
		}
		st.abortThread()
	}
	if !granted {
		L.Push(lua.LFalse)
		L.Push(lua.LString("timeout"))
		return 2
	}
	L.Push(lua.LTrue)
	return 1
}

// openProcess is require "ngx.process" as far as one process allows:
// ngxsockify's one process is its own master and its worker ("single",
// as nginx with master_process off).
func (st *state) openProcess() *lua.LTable {
	return st.funcTable(map[string]lua.LGFunction{
		"type": func(L *lua.LState) int {
			L.Push(lua.LString("single")) // master and worker at once, as nginx's master_process off
			return 1
		},
		"get_master_pid": func(L *lua.LState) int {
			L.Push(lua.LNumber(os.Getpid()))
			return 1
		},
		"enable_privileged_agent": func(L *lua.LState) int {
			if !st.inInit {
				cError(L, "API disabled in the context of %s*", st.r.phase)
			}
			return fail(L, "the privileged agent process is not supported by ngxsockify")
		},
		"signal_graceful_exit": func(L *lua.LState) int {
			cError(L, "ngx.process.signal_graceful_exit is not supported by ngxsockify")
			return 0
		},
	})
}
