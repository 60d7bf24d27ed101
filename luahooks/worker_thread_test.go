package luahooks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWorkerThreadPool: the worker states are bounded by
// lua_worker_thread_vm_pool_size (a call finding none answers "no available
// Lua vm"), kept between calls with their globals, and a call whose caller
// was killed gives its state back when the function ends.
func TestWorkerThreadPool(t *testing.T) {
	dir := t.TempDir()
	mod := `local M = {}
function M.spin(key)
    ngx.shared.dogs:set(key .. "_started", true)
    while not ngx.shared.dogs:get(key) do end
    return "done " .. key
end
function M.keep() n = (n or 0) + 1 return n end
function M.forever() while true do end end
return M`
	if err := os.WriteFile(filepath.Join(dir, "wt.lua"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, _ := newTestRuntime(t, Options{PackagePath: dir + "/?.lua;", WorkerThreadVMs: 1, Timeout: 2 * time.Second,
		ThreadPools: map[string]ThreadPool{"p": {Threads: 2, MaxQueue: 10}}})
	var wg sync.WaitGroup
	var first Outcome
	wg.Add(1)
	go func() {
		defer wg.Done()
		first = runCode(t, rt, PhaseContent, `ngx.say(ngx.run_worker_thread("p", "wt", "spin", "a"))`, newReq("/"))
	}()
	started := func(key string) {
		deadline := time.Now().Add(2 * time.Second)
		for string(runCode(t, rt, PhaseContent, `ngx.say(ngx.shared.dogs:get("`+key+`_started"))`, newReq("/")).Body) != "true\n" {
			if time.Now().After(deadline) {
				t.Fatalf("the call spinning on %q did not start", key)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	started("a")
	if out := runCode(t, rt, PhaseContent, `ngx.say(ngx.run_worker_thread("p", "wt", "keep"))`, newReq("/")); string(out.Body) != "falseno available Lua vm\n" {
		t.Fatalf("second call while the only state is busy: %q", out.Body)
	}
	runCode(t, rt, PhaseContent, `ngx.shared.dogs:set("a", 1)`, newReq("/"))
	wg.Wait()
	if got := string(first.Body); got != "truedone a\n" {
		t.Fatalf("first call: %q", got)
	}
	keep := func() string {
		return string(runCode(t, rt, PhaseContent, `ngx.say(ngx.run_worker_thread("p", "wt", "keep"))`, newReq("/")).Body)
	}
	var n int
	if _, err := fmt.Sscanf(keep(), "true%d\n", &n); err != nil {
		t.Fatal(err)
	}
	if got, want := keep(), fmt.Sprintf("true%d\n", n+1); got != want {
		t.Fatalf("next call: %q, want %q (globals kept in the state)", got, want)
	}
	// killed while the function runs: the state comes back after it ends
	out := runCode(t, rt, PhaseContent, `
		local th = ngx.thread.spawn(function() return ngx.run_worker_thread("p", "wt", "spin", "b") end)
		ngx.thread.kill(th)
		ngx.say(ngx.run_worker_thread("p", "wt", "keep"))`, newReq("/"))
	if got := string(out.Body); got != "falseno available Lua vm\n" {
		t.Fatalf("while the killed call runs: %q", got)
	}
	runCode(t, rt, PhaseContent, `ngx.shared.dogs:set("b", 1)`, newReq("/"))
	deadline := time.Now().Add(2 * time.Second)
	for {
		out := runCode(t, rt, PhaseContent, `ngx.say(ngx.run_worker_thread("p", "wt", "keep"))`, newReq("/"))
		if string(out.Body) == fmt.Sprintf("true%d\n", n+2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the killed call ended: %q", out.Body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// a function that does not end is stopped at the time limit
	out = runCode(t, rt, PhaseContent, `ngx.say(ngx.run_worker_thread("p", "wt", "forever"))`, newReq("/"))
	if got := string(out.Body); !strings.HasPrefix(got, "false") || !strings.Contains(got, "timed out") {
		t.Fatalf("endless function: %q", got)
	}
}

// TestWorkerThreadContexts: phases that cannot wait refuse the call.
func TestWorkerThreadContexts(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{ThreadPools: map[string]ThreadPool{"p": {Threads: 1, MaxQueue: 1}}})
	out := runCode(t, rt, PhaseLog, `ngx.run_worker_thread("p", "wt", "keep")`, newReq("/"))
	if out.Err == nil || !strings.Contains(out.Err.Error(), "API disabled in the context of log_by_lua*") {
		t.Fatalf("log_by_lua: %v", out.Err)
	}
}
