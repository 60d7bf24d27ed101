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
