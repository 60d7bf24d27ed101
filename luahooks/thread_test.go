package luahooks

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowServer answers each line "d name" after d milliseconds with "name".
func slowServer(t *testing.T) string {
	t.Helper()
	return serveLines(t, func(c net.Conn, line string) {
		var ms int
		var name string
		fmt.Sscan(line, &ms, &name)
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintf(c, "%s\n", name)
	})
}

// serveLines listens on loopback until the test ends and calls answer
// with each line (its "\n" kept) a connection sends; it returns the address.
func serveLines(tb testing.TB, answer func(c net.Conn, line string)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					answer(c, line)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestThreads(t *testing.T) {
	addr := slowServer(t)
	host, port, _ := net.SplitHostPort(addr)
	ask := fmt.Sprintf(`local function ask(ms, name)
		local s = ngx.socket.tcp()
		s:settimeout(2000)
		assert(s:connect(%q, %s))
		s:send(ms .. " " .. name .. "\n")
		local line, err = s:receive()
		s:close()
		return line or err
	end
	`, host, port)
	cases := []struct {
		name, src, want string
		status          int
		maxTime         time.Duration
	}{
		{name: "spawn runs first", src: `
			ngx.say("before")
			local t = ngx.thread.spawn(function(a) ngx.say("in ", a) ngx.sleep(0.01) ngx.say("after sleep") return "r" end, "x")
			ngx.say("after spawn ", coroutine.status(t))
			ngx.say(ngx.thread.wait(t))
			ngx.say(coroutine.status(t))`,
			want: "before\nin x\nafter spawn running\nafter sleep\ntruer\ndead\n"},
		// two sockets waiting at once: the run takes the longer wait, not the sum
		{name: "concurrent cosockets", src: ask + `
			local a = ngx.thread.spawn(ask, 200, "a")
			local b = ngx.thread.spawn(ask, 200, "b")
			local c = ngx.thread.spawn(ask, 50, "c")
			ngx.say(select(2, ngx.thread.wait(a, b, c)))
			ngx.say(select(2, ngx.thread.wait(a)), select(2, ngx.thread.wait(b)))`,
			want: "c\nab\n", maxTime: 350 * time.Millisecond},
		{name: "wait inside pcall", src: ask + `
			local t = ngx.thread.spawn(function() return pcall(ask, 20, "p") end)
			ngx.say("main")
			ngx.say(ngx.thread.wait(t))`,
			want: "main\ntruetruep\n"},
		{name: "entry waits for threads", src: `
			ngx.thread.spawn(function() ngx.sleep(0.02) ngx.say("late") end)
			ngx.say("entry done")`,
			want: "entry done\nlate\n"},
		{name: "kill pending socket", src: ask + `
			local t = ngx.thread.spawn(ask, 3000, "k")
			ngx.say(ngx.thread.kill(t))
			ngx.say(ngx.thread.wait(t))`,
			want: "1\nnilalready waited or killed\n", maxTime: time.Second},
		{name: "exit in a thread", src: `
			ngx.thread.spawn(function() ngx.sleep(0.02) ngx.say("bye") ngx.exit(200) end)
			ngx.thread.spawn(function() ngx.sleep(3) ngx.say("no") end)
			ngx.sleep(3)
			ngx.say("no")`,
			want: "bye\n", maxTime: time.Second},
		{name: "error in entry kills threads", src: `
			ngx.thread.spawn(function() ngx.sleep(3) ngx.say("no") end)
			error("boom")`,
			status: 500, maxTime: time.Second},
		{name: "thread error", src: `
			local t = ngx.thread.spawn(function() error("bad") end)
			local ok, a, b = ngx.thread.wait(t)
			ngx.say(ok, " ", a, " ", b)`,
			want: "false bad content_by_lua(nginx.conf:10):2: bad\n"},
	}
	rt, sink := newTestRuntime(t, Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			out := runCode(t, rt, PhaseContent, tc.src, newReq("/t"))
			took := time.Since(start)
			if tc.status != 0 {
				if out.Status != tc.status {
					t.Fatalf("status %d, want %d (%v)", out.Status, tc.status, out.Err)
				}
			} else if out.Err != nil || string(out.Body) != tc.want {
				t.Fatalf("got %q, %v; want %q", out.Body, out.Err, tc.want)
			}
			if tc.maxTime > 0 && took > tc.maxTime {
				t.Errorf("took %v, want at most %v", took, tc.maxTime)
			}
		})
	}
	if !strings.Contains(sink.text(), "lua user thread aborted: runtime error: content_by_lua(nginx.conf:10):2: bad") {
		t.Errorf("log:\n%s", sink.text())
	}
}

// TestThreadsRace runs requests with light threads side by side (for
// -race): each run's threads share its state through the baton only.
func TestThreadsRace(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	src := `
		local n = 0
		local ts = {}
		for i = 1, 5 do
			ts[i] = ngx.thread.spawn(function()
				for j = 1, 3 do n = n + 1 ngx.sleep(0.001) end
				return i
			end)
		end
		local sum = 0
		for i = 1, 5 do local _, v = ngx.thread.wait(ts[i]) sum = sum + v end
		ngx.say(n, " ", sum)`
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				out := runCode(t, rt, PhaseContent, src, newReq("/t"))
				if string(out.Body) != "15 15\n" {
					t.Errorf("got %q %v", out.Body, out.Err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestThreadTimeLimit: the run's time limit counts running Lua in any
// thread, and a thread that loops is stopped with the run.
func TestThreadTimeLimit(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{Timeout: 200 * time.Millisecond})
	out := runCode(t, rt, PhaseContent, `
		ngx.thread.spawn(function() ngx.sleep(0.01) while true do end end)
		ngx.sleep(0.5)`, newReq("/t"))
	if out.Status != 500 {
		t.Fatalf("got %v %v", out.Status, out.Err)
	}
	// waiting does not count
	out = runCode(t, rt, PhaseContent, `
		local t = ngx.thread.spawn(function() ngx.sleep(0.3) return "ok" end)
		ngx.say(select(2, ngx.thread.wait(t)))`, newReq("/t"))
	if string(out.Body) != "ok\n" {
		t.Fatalf("got %q %v", out.Body, out.Err)
	}
}

// TestSemaphoreShared: a semaphore a module creates is the runtime's, as a
// worker's is in OpenResty: runs on two Lua states see one count.
func TestSemaphoreShared(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "semmod.lua"), []byte(`return {sem = require("ngx.semaphore").new(1)}`), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, _ := newTestRuntime(t, Options{PackagePath: dir + "/?.lua;;"})
	first := make(chan Outcome)
	go func() {
		first <- runCode(t, rt, PhaseContent, `
			local sem = require("semmod").sem
			ngx.say(sem:wait(0))
			ngx.sleep(0.3)
			sem:post()`, newReq("/t"))
	}()
	time.Sleep(100 * time.Millisecond)
	// a second run while the first holds the state and the resource
	start := time.Now()
	out := runCode(t, rt, PhaseContent, `
		local sem = require("semmod").sem
		ngx.say(sem:wait(0))
		ngx.say(sem:wait(2), " ", sem:count())
		sem:post()
		local mine = require("ngx.semaphore").new(0)
		ngx.say(mine:wait(0))`, newReq("/t"))
	if string(out.Body) != "niltimeout\ntrue 0\nniltimeout\n" || out.Err != nil {
		t.Errorf("second run: %q %v", out.Body, out.Err)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("the wait took %v: it did not wait for the other run's post", took)
	}
	if o := <-first; string(o.Body) != "true\n" {
		t.Errorf("first run: %q %v", o.Body, o.Err)
	}
}

// watchChan is a Request.WatchClient for tests: the client goes away when
// abort closes.
func watchChan(abort <-chan struct{}) func(gone func()) func() {
	return func(gone func()) func() {
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			select {
			case <-abort:
				gone()
			case <-stop:
			}
		}()
		return func() { close(stop); <-done }
	}
}

// TestOnAbort: with lua_check_client_abort on (Request.WatchClient), the
// ngx.on_abort handler runs as a user thread when the client goes away.
func TestOnAbort(t *testing.T) {
	rt, sink := newTestRuntime(t, Options{})
	out := runCode(t, rt, PhaseContent, `ngx.say(ngx.on_abort(function() end))`, newReq("/t"))
	if string(out.Body) != "nillua_check_client_abort is off\n" {
		t.Errorf("off: %q %v", out.Body, out.Err)
	}
	abort := make(chan struct{})
	req := newReq("/t")
	req.WatchClient = watchChan(abort)
	time.AfterFunc(50*time.Millisecond, func() { close(abort) })
	start := time.Now()
	out = runCode(t, rt, PhaseContent, `
		ngx.on_abort(function() ngx.log(ngx.NOTICE, "client went away") ngx.exit(499) end)
		ngx.log(ngx.NOTICE, "second: ", select(2, ngx.on_abort(function() end)))
		ngx.sleep(3)
		ngx.say("not reached")`, req)
	if out.Action != Close || out.Status != 499 || time.Since(start) > time.Second {
		t.Errorf("abort: %v %d %q after %v", out.Action, out.Status, out.Body, time.Since(start))
	}
	if !strings.Contains(sink.text(), "client went away") || !strings.Contains(sink.text(), "second: duplicate call") {
		t.Errorf("log: %s", sink.text())
	}
	// no abort: the handler never runs, and the run does not wait for it
	req = newReq("/t")
	req.WatchClient = watchChan(make(chan struct{}))
	out = runCode(t, rt, PhaseContent, `ngx.on_abort(function() ngx.say("no") end) ngx.sleep(0.01) ngx.say("done")`, req)
	if string(out.Body) != "done\n" {
		t.Errorf("no abort: %q %v", out.Body, out.Err)
	}
	// no handler: the run ends with 499 at once, with nginx's info line
	gone := make(chan struct{})
	req = newReq("/t")
	req.WatchClient = watchChan(gone)
	time.AfterFunc(30*time.Millisecond, func() { close(gone) })
	start = time.Now()
	out = runCode(t, rt, PhaseContent, `ngx.sleep(3) ngx.say("not reached")`, req)
	if out.Action != Close || out.Status != 499 || out.Err != nil || time.Since(start) > time.Second {
		t.Errorf("abort without handler: %v %d %v after %v", out.Action, out.Status, out.Err, time.Since(start))
	}
	if !strings.Contains(sink.text(), "client prematurely closed connection") {
		t.Errorf("log: %s", sink.text())
	}
	// the entry thread ended, a user thread still sleeps: the handler
	// runs still, and its ngx.exit ends the sleeper
	gone = make(chan struct{})
	req = newReq("/t")
	req.WatchClient = watchChan(gone)
	time.AfterFunc(30*time.Millisecond, func() { close(gone) })
	start = time.Now()
	out = runCode(t, rt, PhaseContent, `
		ngx.on_abort(function() ngx.log(ngx.NOTICE, "late handler") ngx.exit(444) end)
		ngx.thread.spawn(function() ngx.sleep(3) ngx.log(ngx.NOTICE, "sleeper done") end)`, req)
	if out.Action != Close || out.Status != 444 || time.Since(start) > time.Second {
		t.Errorf("after the entry thread: %v %d %v after %v", out.Action, out.Status, out.Err, time.Since(start))
	}
	if !strings.Contains(sink.text(), "late handler") || strings.Contains(sink.text(), "sleeper done") {
		t.Errorf("log: %s", sink.text())
	}
}

// TestThreadsInTimer: a timer callback's light threads run and end with it.
func TestThreadsInTimer(t *testing.T) {
	rt, sink := newTestRuntime(t, Options{})
	out := runCode(t, rt, PhaseContent, `
		ngx.timer.at(0, function()
			local a = ngx.thread.spawn(function() ngx.sleep(0.02) return "a" end)
			local b = ngx.thread.spawn(function() ngx.sleep(0.01) return "b" end)
			local _, x = ngx.thread.wait(a, b)
			local _, y = ngx.thread.wait(a, b)
			ngx.log(ngx.NOTICE, "timer threads: ", x, y)
		end)`, newReq("/t"))
	if out.Err != nil {
		t.Fatal(out.Err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(sink.text(), "timer threads: ba") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(sink.text(), "timer threads: ba") {
		t.Errorf("log: %s", sink.text())
	}
}

// TestNoYieldInRequireOrXpcallHandler: as in LuaJIT, a wait (ngx.sleep,
// a cosocket) cannot yield in a module's body nor in xpcall's handler:
// it raises "attempt to yield across C-call boundary".
func TestNoYieldInRequireOrXpcallHandler(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sleepy.lua"), []byte("ngx.sleep(0.001)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, sink := newTestRuntime(t, Options{PackagePath: dir + "/?.lua"})
	out := runCode(t, rt, PhaseContent, `require "sleepy"`, newReq("/t"))
	if out.Status != 500 || out.Err == nil || !strings.Contains(out.Err.Error(), "runtime error: attempt to yield across C-call boundary") {
		t.Errorf("require: %d %v", out.Status, out.Err)
	}
	out = runCode(t, rt, PhaseContent, `
		local ok, err = xpcall(function() error(1) end, function() ngx.sleep(0.001) end)
		ngx.sleep(0.001) -- the entry thread itself may wait
		ngx.say(ok, " ", err)`, newReq("/t"))
	if string(out.Body) != "false attempt to yield across C-call boundary\n" || out.Err != nil {
		t.Errorf("xpcall: %q %v", out.Body, out.Err)
	}
	if !strings.Contains(sink.text(), "lua clean up the timer for pending ngx.sleep") {
		t.Errorf("log: %s", sink.text())
	}
}
