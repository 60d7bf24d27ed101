package luahooks

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogPrefixBaseName: ngx.log and print name a file chunk by its base
// name, as lua-nginx-module does ("[lua] test.lua:1: ...").
func TestLogPrefixBaseName(t *testing.T) {
	rt, sink := newTestRuntime(t, Options{})
	path := filepath.Join(t.TempDir(), "test.lua")
	if err := os.WriteFile(path, []byte(`ngx.log(ngx.ERR, "hello")`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := rt.CompileFile(PhaseContent, path)
	if err != nil {
		t.Fatal(err)
	}
	rt.Run(context.Background(), c, newReq("/"))
	if log := sink.text(); !strings.Contains(log, "[lua] test.lua:1: hello") {
		t.Errorf("log:\n%s", log)
	}
}

// TestLogPrefixTailCall: a function reached by a tail call has no name in
// the prefix (LuaJIT's namewhat is ""), a named local function has one.
func TestLogPrefixTailCall(t *testing.T) {
	rt, sink := newTestRuntime(t, Options{})
	src := `local bar
local function foo() return bar(1) end
function bar(n)
  if n < 1 then ngx.log(ngx.ERR, "deep") return n end
  return bar(n - 1)
end
foo()
local function baz() ngx.log(ngx.ERR, "in baz") end
baz()`
	runCode(t, rt, PhaseContent, src, newReq("/"))
	log := sink.text()
	for _, want := range []string{"[lua] content_by_lua(nginx.conf:10):4: deep", "[lua] content_by_lua(nginx.conf:10):8: baz(): in baz"} {
		if !strings.Contains(log, want) {
			t.Errorf("no %q in log:\n%s", want, log)
		}
	}
}

// TestGlobalWriteGuardTraceback: the "_G write guard" warning ends with the
// traceback from the code that wrote the global, as OpenResty's guard
// (debug.traceback from level 2) logs it; Go callers show as LuaJIT's C
// functions.
func TestGlobalWriteGuardTraceback(t *testing.T) {
	rt, sink := newTestRuntime(t, Options{})
	src := `local function f() bar = 2 end
foo = 1
f()
pcall(function() baz = 3 end)`
	runCode(t, rt, PhaseContent, src, newReq("/"))
	log := sink.text()
	for _, want := range []string{
		"('foo') which may lead to race conditions between concurrent requests, so prefer the use of 'local' variables\nstack traceback:\n\tcontent_by_lua(nginx.conf:10):2: in main chunk\n",
		"('bar') which may lead to race conditions between concurrent requests, so prefer the use of 'local' variables\nstack traceback:\n\tcontent_by_lua(nginx.conf:10):1: in function 'f'\n\tcontent_by_lua(nginx.conf:10):3: in main chunk\n",
		"stack traceback:\n\tcontent_by_lua(nginx.conf:10):4: in function <content_by_lua(nginx.conf:10):4>\n\t[C]: in function 'pcall'\n\tcontent_by_lua(nginx.conf:10):4: in main chunk\n",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("no %q in log:\n%s", want, log)
		}
	}
}
