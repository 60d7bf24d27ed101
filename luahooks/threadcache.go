package luahooks

import (
	"fmt"
	"sync"

	"ngxsockify/ngxlog"
)

// lua-nginx-module keeps the Lua threads (coroutines) of finished entry
// threads, up to lua_thread_cache_max_entries (1024 by default), and hands them to the next entry thread: the
// rewrite, access, content and server_rewrite handlers' and the timers'
// (created when the timer is). Only its debug lines show it here, "lua
// reusing cached lua thread" and "lua caching unused lua thread", per
// runtime as nginx's per worker.

const threadCacheMax = 1024

type threadCache struct {
	mu     sync.Mutex
	cached []int // the refs of the cached threads, the head last
	refs   int   // refs handed out
}

// threadNew is an entry thread created: it takes a cached thread if there
// is one. log writes a debug line in the run's context.
func (rt *Runtime) threadNew(log func(ngxlog.Level, string)) int {
	tc := &rt.threads
	tc.mu.Lock()
	var ref int
	reused := false
	if n := len(tc.cached); n > 0 {
		ref, reused = tc.cached[n-1], true
		tc.cached = tc.cached[:n-1]
	} else {
		tc.refs++
		ref = tc.refs
	}
	tc.mu.Unlock()
	if reused && log != nil {
		log(ngxlog.Debug, fmt.Sprintf("lua reusing cached lua thread 0000000000000000 (ref %d)", ref))
	}
	return ref
}

// threadFree is an entry thread finished: cached while there is room.
func (rt *Runtime) threadFree(ref int, log func(ngxlog.Level, string)) {
	tc := &rt.threads
	tc.mu.Lock()
	limit := threadCacheMax
	if rt.opts.ThreadCacheSet {
		limit = rt.opts.ThreadCacheMax
	}
	cached := len(tc.cached) < limit
	if cached {
		tc.cached = append(tc.cached, ref)
	}
	tc.mu.Unlock()
	if cached && log != nil {
		log(ngxlog.Debug, fmt.Sprintf("lua caching unused lua thread 0000000000000000 (ref %d)", ref))
	}
}

// entryPhase: the phase's handler runs as an entry thread.
func entryPhase(p Phase) bool {
	return p == PhaseRewrite || p == PhaseAccess || p == PhaseContent || p == PhaseServerRewrite
}
