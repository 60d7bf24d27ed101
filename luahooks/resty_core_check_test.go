package luahooks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRestyCoreMissing(t *testing.T) {
	dir := t.TempDir()
	if got := RestyCoreMissing(Options{}); got != "" {
		t.Errorf("default paths: %q", got)
	}
	if got := RestyCoreMissing(Options{PackagePath: dir + "/?.lua;;"}); got != "" {
		t.Errorf("with ;;: %q", got)
	}
	got := RestyCoreMissing(Options{PackagePath: dir + "/?.lua;", PackageCPath: dir + "/?.so"})
	want := "module 'resty.core' not found:\n\tno field package.preload['resty.core']\n\tno file '" + dir +
		"/resty/core.lua'\n\tno file '" + dir + "/resty/core.so'\n\tno file '" + dir + "/resty.so'"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if err := os.MkdirAll(filepath.Join(dir, "resty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "resty", "core.lua"), []byte("return {}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := RestyCoreMissing(Options{PackagePath: dir + "/?.lua;"}); got != "" {
		t.Errorf("file present: %q", got)
	}
	if got := RestyCoreMissing(Options{PackagePath: "/usr/share/lua/5.1/?.lua", PackageCPath: dir + "/x/?.so"}); got != "" {
		t.Errorf("Debian's place named: %q", got)
	}
	if got := RestyCoreMissing(Options{PackagePath: "$prefix/?.lua", Prefix: dir}); got != "" || !strings.HasPrefix(dir, "/") {
		t.Errorf("$prefix: %q", got)
	}
}
