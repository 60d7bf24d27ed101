package luahooks

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"ngxsockify/ngxlog"
)

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestTimers(t *testing.T) {
	rt, sink := newTestRuntime(t, Options{Timeout: 200 * time.Millisecond})
	get := func(key string) string {
		return string(runCode(t, rt, PhaseContent, `ngx.print(tostring(ngx.shared.dogs:get("`+key+`")))`, newReq("/")).Body)
	}
	run := func(src string) string {
		out := runCode(t, rt, PhaseContent, src, newReq("/"))
		if out.Err != nil {
			t.Fatalf("%s: %v", src, out.Err)
		}
		return string(out.Body)
	}
	// A one-shot timer with arguments, its phase, and an upvalue of the
	// state that made it; the request does not wait for it.
	got := run(`local n = 41
		local ok = ngx.timer.at(0.01, function(premature, a, b)
			n = n + 1
			ngx.shared.dogs:set("at", tostring(premature) .. " " .. a .. b .. " " .. n .. " " .. ngx.get_phase())
		end, "x", 7)
		ngx.print(ok, " ", ngx.timer.pending_count())`)
	if got != "1 1" {
		t.Errorf("timer.at answered %q", got)
	}
	waitUntil(t, "the timer", func() bool { return get("at") != "nil" })
	if v := get("at"); v != "false x7 42 timer" {
		t.Errorf("timer saw %v", v)
	}
	// every runs again until the runtime closes; errors are logged with
	// the timer's context and do not stop it; a looping callback is cut
	// by the time limit.
	run(`ngx.timer.every(0.01, function() ngx.shared.dogs:incr("n", 1, 0) end)
		ngx.timer.at(0, function() error("boom") end)
		ngx.timer.at(0, function() while true do end end)
		ngx.timer.at(0, function() ngx.say("x") end)`)
	waitUntil(t, "three runs of every", func() bool { n, _ := strconv.Atoi(get("n")); return n >= 3 })
	waitUntil(t, "the error line", func() bool { return strings.Contains(sink.text(), "boom, context: ngx.timer") })
	waitUntil(t, "the timeout line", func() bool { return strings.Contains(sink.text(), "lua execution timed out, context: ngx.timer") })
	waitUntil(t, "the disabled API line", func() bool { return strings.Contains(sink.text(), "API disabled in the context of ngx.timer") })
	// A callback may sleep; its log lines carry the timer's context.
	run(`ngx.timer.at(0, function() ngx.sleep(0.01) ngx.log(ngx.ERR, "woke") ngx.shared.dogs:set("slept", true) end)`)
	waitUntil(t, "the sleeping timer", func() bool { return get("slept") == "true" })
	if !strings.Contains(sink.text(), "woke, context: ngx.timer") {
		t.Errorf("no timer context in the log line: %s", sink.text())
	}
	// Argument checks.
	for src, want := range map[string]string{
		`ngx.timer.at(-1, function() end)`:   "delay must not be negative",
		`ngx.timer.every(0, function() end)`: "delay cannot be zero",
		`ngx.timer.at(1, "f")`:               "function expected, got string",
	} {
		out := runCode(t, rt, PhaseContent, src, newReq("/"))
		if out.Err == nil || !strings.Contains(out.Err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, out.Err, want)
		}
	}
	// Closing the runtime runs pending timers at once, premature.
	run(`ngx.timer.at(3600, function(premature) ngx.shared.dogs:set("late", premature) end)`)
	rt.Close()
	if v := get("late"); v != "true" {
		t.Errorf("premature run: %v", v)
	}
	out := runCode(t, rt, PhaseContent, `ngx.print(ngx.timer.at(0, function() end))`, newReq("/"))
	if string(out.Body) != "nilprocess exiting" {
		t.Errorf("after close: %q %v", out.Body, out.Err)
	}
}

func TestTimerLimits(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{MaxPendingTimers: 2})
	out := runCode(t, rt, PhaseContent, `local f = function() end
		for i = 1, 3 do ngx.say(ngx.timer.at(60, f)) end
		ngx.say(ngx.timer.pending_count())`, newReq("/"))
	if got := string(out.Body); got != "1\n1\nniltoo many pending timers\n2\n" {
		t.Errorf("got %q (err %v)", got, out.Err)
	}
}

// What a timer has no request for raises lua-nginx-module's errors.
func TestTimerDisabledAPIs(t *testing.T) {
	rt, sink := newTestRuntime(t, Options{})
	runCode(t, rt, PhaseContent, `
		for _, f in ipairs({
			function() return ngx.var.uri end,
			function() return ngx.status end,
			function() ngx.status = 200 end,
			function() return ngx.req.get_headers() end,
			function() return ngx.header.foo end,
			function() ngx.say("x") end,
			function() ngx.req.read_body() end,
			function() ngx.req.socket() end,
			function() ngx.flush() end,
			function() ngx.eof() end,
		}) do
			ngx.timer.at(0, function() local ok, err = pcall(f) ngx.log(ngx.ERR, "timer api: ", err) end)
		end`, newReq("/"))
	waitUntil(t, "ten timers", func() bool { return strings.Count(sink.text(), "timer api: ") == 10 })
	text := sink.text()
	if n := strings.Count(text, "API disabled in the current context"); n != 5 {
		t.Errorf("%d 'current context' errors, want 5:\n%s", n, text)
	}
	if n := strings.Count(text, "API disabled in the context of ngx.timer"); n != 5 {
		t.Errorf("%d 'context of ngx.timer' errors, want 5:\n%s", n, text)
	}
}

// A timer runs while the request that made it waits, on the same Lua
// state (it sees the request's upvalues), and the request goes on while
// the timer waits in turn: nginx's interleaving of the two coroutines.
func TestTimerRunsWhileItsRequestWaits(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{Timeout: time.Second})
	src := `local steps = {}
		local shared = {n = 0}
		ngx.timer.at(0, function()
			table.insert(steps, "timer " .. shared.n)
			shared.n = shared.n + 1
			ngx.sleep(0.05)
			table.insert(steps, "timer again " .. shared.n)
			shared.n = shared.n + 1
		end)
		table.insert(steps, "request")
		ngx.sleep(0.02)
		table.insert(steps, "request again " .. shared.n)
		shared.n = shared.n + 1
		ngx.sleep(0.06)
		ngx.say(table.concat(steps, ", "), "; ", coroutine.running() ~= nil, " ", ngx.get_phase())`
	out := runCode(t, rt, PhaseContent, src, newReq("/"))
	if out.Err != nil {
		t.Fatal(out.Err)
	}
	want := "request, timer 0, request again 1, timer again 2; true content\n"
	if got := string(out.Body); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestTimerOrder: timers a run creates with one delay expire together and
// start in creation order (nginx keys them by its cached time in ms), so
// with lua_max_running_timers 1 the later one is refused, named by where
// its function was defined.
func TestTimerOrder(t *testing.T) {
	for i := 0; i < 5; i++ {
		rt, sink := newTestRuntime(t, Options{MaxRunningTimers: 1})
		runCode(t, rt, PhaseContent, `local s = ""
			local function g() s = s .. "[g]" ngx.log(ngx.ERR, "trace: ", s) end
			local function f() s = s .. "[f]" ngx.sleep(0.02) end
			ngx.timer.at(0.01, f)
			ngx.timer.at(0.01, g)
			s = "[m]"`, newReq("/"))
		waitUntil(t, "the refusal", func() bool { return strings.Contains(sink.text(), "lua_max_running_timers") })
		if want := "lua failed to run timer with function defined at =content_by_lua(nginx.conf:10):2: 1 lua_max_running_timers are not enough"; !strings.Contains(sink.text(), want) {
			t.Fatalf("want %q in:\n%s", want, sink.text())
		}
		rt.Close()
	}
	rt, sink := newTestRuntime(t, Options{})
	runCode(t, rt, PhaseContent, `local s = ""
		local function g() s = s .. "[g]" ngx.log(ngx.ERR, "trace: ", s) end
		local function f() s = s .. "[f]" end
		ngx.timer.at(0.01, f)
		ngx.timer.at(0.01, g)
		s = "[m]"`, newReq("/"))
	waitUntil(t, "the trace", func() bool { return strings.Contains(sink.text(), "trace: ") })
	if !strings.Contains(sink.text(), "trace: [m][f][g]") {
		t.Errorf("order: %s", sink.text())
	}
}

// TestCtxRelease: a request (at its End) or a timer that used ngx.ctx
// logs its release, as lua-nginx-module (debug).
func TestCtxRelease(t *testing.T) {
	rt, sink := newTestRuntime(t, Options{})
	req := newReq("/")
	var reqLog strings.Builder
	req.Log = func(_ ngxlog.Level, msg string) { reqLog.WriteString(msg + "\n") }
	runCode(t, rt, PhaseContent, `ngx.ctx.n = 1 ngx.timer.at(0, function() ngx.ctx.x = 1 end)`, req)
	waitUntil(t, "the timer's release", func() bool {
		return strings.Contains(sink.text(), "lua release ngx.ctx at ref 1, context: ngx.timer")
	})
	if strings.Contains(reqLog.String(), "release") {
		t.Errorf("released before End: %s", reqLog.String())
	}
	req.End()
	if !strings.Contains(reqLog.String(), "lua release ngx.ctx at ref 1") {
		t.Errorf("End: %q", reqLog.String())
	}
}
