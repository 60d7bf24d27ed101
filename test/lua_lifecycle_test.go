package test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

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

// TestLuaSharedDictAcrossReload: a lua_shared_dict zone outlives a reload
// when its name and size stay, as nginx keeps a shared memory zone: the
// entries are still there, the new configuration's init_by_lua sees them,
// and what the init_by_lua of a reload that fails writes stays too (the
// zone is the live one). A zone whose size changed starts empty. The
// answers are nginx 1.22.1's with master_process on (the harness runs
// nginx with master_process off, where a reload is not reliable).
func TestLuaSharedDictAcrossReload(t *testing.T) {
	requireNgxsockify(t)
	conf := func(gen, size, init string) string {
		return `
lua_shared_dict d ` + size + `;
init_by_lua_block {
    local d = ngx.shared.d
    d:set("init", (d:get("init") or "") .. "` + gen + `")
    ` + init + `
}
server {
    listen 127.0.0.1:{{PORT}};
    location /t {
        add_header X-Gen ` + gen + ` always;
        content_by_lua_block {
            local d = ngx.shared.d
            local n
            if ngx.var.arg_peek then n = d:get("n") else n = d:incr("n", 1, 0) end
            ngx.say("n=", n, " init=", d:get("init"), " failed=", d:get("failed"))
        }
    }
}`
	}
	run := func(kind string) []string {
		s := startServer(t, kind, ServerOptions{HTTP: conf("a", "1m", "")})
		var out []string
		get := func(uri string) (string, int, string) {
			r, err := rawRequest(s.Addr, "GET "+uri+" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 10*time.Second)
			if err != nil {
				t.Fatalf("%s: %v\n%s", kind, err, s.ErrorLog())
			}
			return r.Header.Get("X-Gen"), r.Status, r.Body
		}
		ask := func(gen string) {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			// polled without counting until the generation serves (a
			// reload is not instant), then counted once
			for {
				g, _, _ := get("/t?peek=1")
				if g == gen {
					g, st, body := get("/t")
					out = append(out, fmt.Sprintf("%s %d %s", g, st, strings.TrimSpace(body)))
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: generation %s did not load (still %s)", kind, gen, g)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		reload := func(c string) {
			t.Helper()
			main, err := os.ReadFile(s.Conf)
			if err != nil {
				t.Fatal(err)
			}
			i := strings.Index(string(main), "http {")
			text := string(main[:i]) + "http {\n" + expand(c, s.Dir, s.Ports) + "\n}\n"
			if err := os.WriteFile(s.Conf, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := s.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
		ask("a")
		ask("a")
		reload(conf("b", "1m", ""))
		ask("b")
		// init_by_lua fails: the reload is refused, generation b goes
		// on, and sees what that init_by_lua wrote before it failed.
		reload(conf("c", "1m", `d:set("failed", "c") error("init fails")`))
		waitFor(t, func() bool { return strings.Contains(s.ErrorLog(), "init fails") }, kind+": the failed init_by_lua")
		time.Sleep(200 * time.Millisecond)
		ask("b")
		reload(conf("d", "2m", ""))
		ask("d")
		return out
	}
	want := []string{
		"a 200 n=1 init=a failed=nil",
		"a 200 n=2 init=a failed=nil",
		"b 200 n=3 init=ab failed=nil",
		"b 200 n=4 init=abc failed=c",
		"d 200 n=1 init=d failed=nil",
	}
	if got := run("ngxsockify"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nnginx answers:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLuaInitWorkerErrorExitWorker: init_worker_by_lua's error is logged and the server
// starts anyway; exit_worker_by_lua_block runs when the server stops,
// on the VM the requests left (their globals) with the shared
// dictionaries; ngx.timer is refused there, and its error is logged as
// "exit_worker_by_lua error: ...". nginx and ngxsockify, the lines
// compared.
func TestLuaInitWorkerErrorExitWorker(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	conf := `
lua_shared_dict d 1m;
init_worker_by_lua_block {
    ngx.log(ngx.NOTICE, "init_worker: ", ngx.get_phase())
    error("init_worker fails")
}
exit_worker_by_lua_block {
    ngx.log(ngx.NOTICE, "exit: ", ngx.shared.d:get("n"), " ", tostring(foo), " ", ngx.get_phase())
    local ok, err = pcall(ngx.timer.at, 0, function() end)
    ngx.log(ngx.NOTICE, "timer: ", ok, " ", err)
    error("boom")
}
server {
    listen 127.0.0.1:{{PORT}};
    location /t {
        content_by_lua_block {
            ngx.shared.d:set("n", 100)
            foo = "bar"
            ngx.say("ok")
        }
    }
}`
	run := func(kind string) string {
		s := startServer(t, kind, ServerOptions{HTTP: conf})
		r, err := rawRequest(s.Addr, "GET /t HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 10*time.Second)
		if err != nil || r.Status != 200 {
			t.Fatalf("%s: %v %v", kind, r, err)
		}
		s.Stop() // SIGTERM: nginx's fast shutdown runs it too
		var lines []string
		for _, l := range strings.Split(s.ErrorLog(), "\n") {
			if _, rest, ok := strings.Cut(l, "] "); ok && (strings.Contains(l, "exit_worker") || strings.Contains(l, "init_worker") || strings.Contains(l, "timer: ")) {
				if _, msg, ok := strings.Cut(rest, ": "); ok { // after the pid#tid
					// nginx's init_worker runs on a fake connection (*1);
					// ngxsockify numbers only real ones
					if strings.HasPrefix(msg, "*1 [lua] init_worker") {
						msg = strings.TrimPrefix(msg, "*1 ")
					}
					lines = append(lines, msg)
				}
			}
		}
		return strings.Join(lines, "\n")
	}
	n, x := run("nginx"), run("ngxsockify")
	if n != x || n == "" {
		t.Errorf("nginx:\n%s\nngxsockify:\n%s", n, x)
	}
}

// TestLuaLoadTimeMessages: what lua-nginx-module logs while the
// configuration loads (lua_code_cache off's alert, lua_load_resty_core's
// deprecation) goes to the startup log named by -e, as nginx writes it.
func TestLuaLoadTimeMessages(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	conf := `
lua_load_resty_core on;
lua_code_cache off;
server {
    listen 127.0.0.1:{{PORT}};
    location /t { content_by_lua_block { ngx.say("ok") } }
}`
	run := func(kind string) string {
		elog := filepath.Join(t.TempDir(), "startup.log")
		s := startServer(t, kind, ServerOptions{HTTP: conf, Args: []string{"-e", elog}})
		s.Stop()
		data, _ := os.ReadFile(elog)
		var lines []string
		for _, l := range strings.Split(string(data), "\n") {
			// "2026/01/02 03:04:05 [alert] 1#1: msg" without time and pid
			if f := strings.SplitN(l, " ", 5); len(f) == 5 && (strings.Contains(l, "lua") || f[2] == "[alert]") {
				lines = append(lines, f[2]+" "+strings.ReplaceAll(f[4], s.Dir, "{{DIR}}"))
			}
		}
		return strings.Join(lines, "\n")
	}
	n, x := run("nginx"), run("ngxsockify")
	if n != x || n == "" {
		t.Errorf("nginx:\n%s\nngxsockify:\n%s", n, x)
	}
}
