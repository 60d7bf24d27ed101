package luahooks

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Waiting for a child process does not count against the run's time
// limit (nginx has none), and children get nginx's environment: the names
// listed with env only.
func TestIOChildWaitAndEnv(t *testing.T) {
	t.Setenv("LUAIO_HIDDEN", "x")
	rt, _ := newTestRuntime(t, Options{Timeout: 300 * time.Millisecond, Env: map[string]string{"LUAIO_SHOWN": "y"}})
	src := `
		local st = os.execute("sleep 0.5")
		local p = io.popen("sleep 0.5; env")
		local env = p:read("*a")
		p:close()
		ngx.say(st, " ", env:find("LUAIO_SHOWN=y", 1, true) ~= nil, " ", env:find("LUAIO_HIDDEN", 1, true) == nil)`
	out := runCode(t, rt, PhaseContent, src, newReq("/t", "foo", "empty"))
	if out.Err != nil {
		t.Fatal(out.Err)
	}
	if got := string(out.Body); got != "0 true true\n" {
		t.Fatalf("body %q", got)
	}
	// Lua that runs past the limit is still stopped.
	out = runCode(t, rt, PhaseContent, `os.execute("true") while true do end`, newReq("/t", "foo", "empty"))
	if out.Err == nil || out.Status != 500 {
		t.Fatalf("outcome %+v", out)
	}
}

func TestIOReadNumber(t *testing.T) {
	for in, want := range map[string]string{
		"12.5 x":  "12.5",
		"  -3e2,": "-300",
		"0x10 ":   "16",
		"0x1.8p1": "3",
		"inf":     "inf",
		"abc":     "nil",
		"":        "nil",
		"+.5":     "0.5",
	} {
		v, _ := readNumber(bufio.NewReader(strings.NewReader(in)))
		got := "nil"
		if n, ok := v.(lua.LNumber); ok {
			got = formatNumber(float64(n))
		}
		if got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

func TestIOOpenMode(t *testing.T) {
	for _, m := range []string{"r", "w", "a", "r+", "rb", "wb+", "a+b", "rw"} {
		if _, ok := openMode(m); !ok {
			t.Errorf("%q refused", m)
		}
	}
	for _, m := range []string{"", "z", "+r", "b"} {
		if _, ok := openMode(m); ok {
			t.Errorf("%q accepted", m)
		}
	}
}

func TestIOWorkerThread(t *testing.T) {
	dir := t.TempDir()
	mod := `local M = {} function M.sh(cmd) local st = os.execute(cmd) local p = io.popen("echo out") return st, p:read("*l") end return M`
	if err := os.WriteFile(filepath.Join(dir, "wio.lua"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, _ := newTestRuntime(t, Options{PackagePath: dir + "/?.lua;", Timeout: 300 * time.Millisecond,
		ThreadPools: map[string]ThreadPool{"p": {Threads: 2, MaxQueue: 10}}})
	out := runCode(t, rt, PhaseContent, `ngx.say(ngx.run_worker_thread("p", "wio", "sh", "sleep 0.5; exit 4"))`, newReq("/"))
	if got := string(out.Body); got != "true1024out\n" {
		t.Fatalf("body %q (%v)", got, out.Err)
	}
}
