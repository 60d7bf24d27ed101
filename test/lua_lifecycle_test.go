package test

import (
	"os"
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

// TestLuaReloadKeepsSharedDicts: a reload keeps a lua_shared_dict of the
// same name and size with its contents, as nginx keeps the shared memory
// zone; one whose size changed starts empty (080-hup-shdict.t TEST 2).
func TestLuaReloadKeepsSharedDicts(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	conf := func(version, catsSize string) string {
		return `load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
master_process on;
worker_processes 1;
pid {{DIR}}/nginx.pid;
error_log {{DIR}}/error.log info;
events {}
http {
    access_log off;
    lua_shared_dict dogs 1m;
    lua_shared_dict cats ` + catsSize + `;
    server {
        listen 127.0.0.1:{{PORT}};
        location = /set { content_by_lua_block { ngx.shared.dogs:set("foo", 32) ngx.shared.cats:set("c", 1) ngx.say("ok") } }
        location = /get {
            content_by_lua_block { ngx.say("` + version + ` ", ngx.shared.dogs:get("foo"), " ", ngx.shared.cats:get("c")) }
        }
    }
}
`
	}
	var got []string
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := procStart(t, kind, conf("one", "1m"))
		if _, body := httpBody(t, s.URL("/set")); body != "ok\n" {
			t.Fatalf("%s: /set answered %q", kind, body)
		}
		if err := os.WriteFile(s.Conf, []byte(expand(conf("two", "2m"), s.Dir, s.Ports)), 0o644); err != nil {
			t.Fatal(err)
		}
		s.Signal(syscall.SIGHUP)
		body := ""
		waitFor(t, func() bool {
			_, body = httpBody(t, s.URL("/get"))
			return strings.HasPrefix(body, "two")
		}, kind+" to reload")
		got = append(got, body)
	}
	if got[0] != "two 32 nil\n" {
		t.Errorf("nginx answered %q", got[0])
	}
	if got[0] != got[1] {
		t.Errorf("after a reload nginx answered %q, ngxsockify %q", got[0], got[1])
	}
}
