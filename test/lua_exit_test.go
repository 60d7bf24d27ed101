package test

import (
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLuaExitWorker: exit_worker_by_lua_block runs when a graceful quit
// ends the server, with init's globals and the shared dicts, and its log
// lines (and its error's, with the traceback) come before the last "exit"
// line, as nginx + lua-nginx-module log them (089-phase.t TEST 11).
func TestLuaExitWorker(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	conf := `
lua_shared_dict d 1m;
init_by_lua_block { G = "g" }
exit_worker_by_lua_block {
    ngx.log(ngx.ERR, ngx.get_phase(), " ", G, " ", ngx.shared.d:get("k"))
    ngx.log(ngx.ERR, "timer: ", pcall(ngx.timer.at, 0, function() end))
    ngx.log(ngx.ERR, "tcp: ", pcall(ngx.socket.tcp))
    ngx.log(ngx.ERR, "say: ", pcall(ngx.say, "x"))
    ngx.log(ngx.ERR, "var: ", pcall(function() return ngx.var.uri end))
    error("boom")
}
server {
    listen 127.0.0.1:{{PORT}};
    location /t { content_by_lua_block { ngx.shared.d:set("k", "v") ngx.say("ok") } }
}`
	var logs []string
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: conf})
		r := luaAsk(s, luaCase{}, routingRequest{raw: "GET /t HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", show: "/t"})
		if r.Body != "ok\n" {
			t.Fatalf("%s: /t answered %d %q", kind, r.Status, r.Body)
		}
		if err := s.Signal(syscall.SIGQUIT); err != nil {
			t.Fatal(err)
		}
		waitFor(t, s.Exited, kind+" to exit")
		s.Stop()
		logs = append(logs, exitWorkerLines(s.ErrorLog()))
	}
	if !strings.Contains(logs[0], "exit_worker g v") {
		t.Fatalf("nginx logged:\n%s", logs[0])
	}
	if diff := cmp.Diff(logs[0], logs[1]); diff != "" {
		t.Errorf("exit_worker_by_lua: nginx and ngxsockify differ (-nginx +ngxsockify):\n%s", diff)
	}
}

var logPrefixRE = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: (\*\d+ )?`)

// exitWorkerLines keeps the error log's lines about exit_worker_by_lua
// and the final "exit", without their time and pid.
func exitWorkerLines(log string) string {
	var out []string
	keep := false
	for _, l := range strings.Split(log, "\n") {
		if m := logPrefixRE.FindStringSubmatch(l); m != nil {
			msg := logPrefixRE.ReplaceAllString(l, "[$1] ")
			keep = strings.Contains(l, "exit_worker") || msg == "[notice] exit"
			if keep {
				out = append(out, msg)
			}
			continue
		}
		if keep && l != "" {
			out = append(out, l) // a traceback's lines
		}
	}
	return strings.Join(out, "\n")
}
