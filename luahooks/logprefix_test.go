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
