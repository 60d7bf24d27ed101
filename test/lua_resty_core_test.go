package test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestLuaRestyCoreNotFound: lua-nginx-module loads resty.core from
// lua_package_path when it creates its VM; a path without the default
// entries (no ";;") and without resty/core.lua stops nginx at startup
// with an alert that lists every place tried, in the http block's closing
// line; nginx -t does not create the VM and passes (lua-nginx-module's
// 161-load-resty-core.t TEST 5). With a resty/core.lua in the path, or
// ";;", both start.
func TestLuaRestyCoreNotFound(t *testing.T) {
	nginx := requireNginx(t)
	ngx := requireNgxsockify(t)
	stamp := regexp.MustCompile(`(?m)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: `)
	for _, tc := range []struct {
		path  string
		start bool
	}{{"{{DIR}}/html/?.lua;", false}, {"{{DIR}}/html/?.lua;;", true}, {"{{DIR}}/lib/?.lua;", true}} {
		run := func(kind, bin string, args ...string) (string, int) {
			dir := t.TempDir()
			for _, d := range []string{"html", "lib/resty"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, "lib/resty/core.lua"), []byte("return {}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			conf := "pid " + dir + "/nginx.pid;\n" + luaModules + "events {}\nhttp {\n" +
				"    lua_package_path '" + strings.ReplaceAll(tc.path, "{{DIR}}", dir) + "';\n" +
				"    lua_package_cpath '" + dir + "/?.so';\n" +
				"    server {\n        listen 127.0.0.1:" + strconv.Itoa(freePort(t)) + ";\n        return 200;\n    }\n}\n"
			if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, append([]string{"-p", dir + "/", "-c", dir + "/nginx.conf", "-e", dir + "/e.log"}, args...)...)
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			code := 0
			select {
			case err := <-done:
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				}
			case <-time.After(1500 * time.Millisecond): // it started
				cmd.Process.Kill()
				<-done
				code = -1
			}
			b, _ := os.ReadFile(filepath.Join(dir, "e.log"))
			var keep []string
			for _, l := range strings.SplitAfter(string(b), "\n") {
				if strings.Contains(l, "[alert]") || strings.HasPrefix(l, "\t") {
					keep = append(keep, l)
				}
			}
			out := stamp.ReplaceAllString(strings.Join(keep, ""), "DATE [$1] PID: ")
			return strings.ReplaceAll(out, dir, "{{DIR}}"), code
		}
		ngLog, ngCode := run("nginx", nginx, "-g", "daemon off; master_process off;")
		sxLog, sxCode := run("ngxsockify", ngx, "-g", "daemon off; master_process off;")
		if ngCode != sxCode {
			t.Errorf("%s: nginx exit %d, ngxsockify %d", tc.path, ngCode, sxCode)
		}
		if want := -1; tc.start && ngCode != want || !tc.start && ngCode != 1 {
			t.Errorf("%s: nginx exit %d, want start %v", tc.path, ngCode, tc.start)
		}
		if d := cmp.Diff(ngLog, sxLog); d != "" {
			t.Errorf("%s: alert lines (-nginx +ngxsockify):\n%s", tc.path, d)
		}
		for _, bin := range []string{nginx, ngx} {
			dir := t.TempDir()
			conf := "pid " + dir + "/nginx.pid;\n" + luaModules + "events {}\nhttp {\n    lua_package_path '" + dir + "/?.lua;';\n}\n"
			if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, "-t", "-p", dir+"/", "-c", dir+"/nginx.conf", "-e", dir+"/e.log").CombinedOutput(); err != nil {
				t.Errorf("%s -t: %v\n%s", bin, err, out)
			}
		}
	}
}
