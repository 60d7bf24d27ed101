package test

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestLuaThreadCacheLines: lua-nginx-module's Lua thread cache, seen in its
// debug lines: a finished entry thread (a rewrite, access or content
// handler's, a timer's, also after an error) is cached; the next entry
// thread, timer (when created) or light thread (ngx.thread.spawn) takes it
// (lua-nginx-module's 106-timer.t TEST 1, 002-content.t TEST 1).
func TestLuaThreadCacheLines(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	conf := "pid {{DIR}}/nginx.pid;\nerror_log {{DIR}}/error.log debug;\n" + luaModules + "events {}\nhttp {\n" + `
    access_log off;
    server {
        listen 127.0.0.1:{{PORT}};
        location /t { content_by_lua_block {
            ngx.timer.at(0.05, function() print("timer ran") end)
            ngx.say("registered timer")
        } }
        location /r { rewrite_by_lua_block { ngx.ctx.a = 1 } access_by_lua_block { ngx.ctx.b = 1 } content_by_lua_block { ngx.say("x") } }
        location /u { content_by_lua_block { local t = ngx.thread.spawn(function() ngx.sleep(0.01) end) ngx.thread.wait(t) ngx.say("u") } }
        location /x { content_by_lua_block { error("boom") } }
        location /c { content_by_lua_block { local co = coroutine.create(function() end) coroutine.resume(co) ngx.say("c") } }
    }
}
`
	line := regexp.MustCompile(`(lua caching unused lua thread|lua reusing cached lua thread)`)
	run := func(kind string) []string {
		s := startServer(t, kind, ServerOptions{Main: conf})
		var got []string
		seen := 0
		for _, path := range []string{"/t", "/t", "/r", "/u", "/x", "/c", "/r"} {
			resp, err := rawRequest(s.Addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", routingTimeout)
			if err != nil {
				t.Fatalf("%s %s: %v", kind, path, err)
			}
			got = append(got, fmt.Sprintf("%s %d", path, resp.Status))
			time.Sleep(150 * time.Millisecond) // the timer's run too
			log := s.ErrorLog()
			for _, m := range line.FindAllString(log[seen:], -1) {
				got = append(got, "  "+m)
			}
			seen = len(log)
		}
		return got
	}
	if d := cmp.Diff(run("nginx"), run("ngxsockify")); d != "" {
		t.Errorf("thread cache lines (-nginx +ngxsockify):\n%s", d)
	}
}

// TestLuaThreadCacheMaxEntries: lua_thread_cache_max_entries bounds the
// cache (0: none; 165-thread-cache.t).
func TestLuaThreadCacheMaxEntries(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	line := regexp.MustCompile(`(lua caching unused lua thread|lua reusing cached lua thread)`)
	for _, n := range []string{"0", "1", "2"} {
		conf := "pid {{DIR}}/nginx.pid;\nerror_log {{DIR}}/error.log debug;\n" + luaModules + "events {}\nhttp {\n" +
			"    access_log off;\n    lua_thread_cache_max_entries " + n + ";\n" + `
    server {
        listen 127.0.0.1:{{PORT}};
        location /r { rewrite_by_lua_block { ngx.ctx.a = 1 } content_by_lua_block {
            local t = ngx.thread.spawn(function() end)
            ngx.say("x")
        } }
    }
}
`
		run := func(kind string) []string {
			s := startServer(t, kind, ServerOptions{Main: conf})
			var got []string
			for i := 0; i < 2; i++ {
				if _, err := rawRequest(s.Addr, "GET /r HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", routingTimeout); err != nil {
					t.Fatalf("%s: %v", kind, err)
				}
			}
			time.Sleep(100 * time.Millisecond)
			got = append(got, line.FindAllString(s.ErrorLog(), -1)...)
			return got
		}
		if d := cmp.Diff(run("nginx"), run("ngxsockify")); d != "" {
			t.Errorf("lua_thread_cache_max_entries %s (-nginx +ngxsockify):\n%s", n, d)
		}
	}
}
