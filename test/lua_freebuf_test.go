package test

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestLuaOutputFreeBufLines: lua-nginx-module's debug lines of its output
// buffers' free list, which ngx.say, ngx.print and ngx.flush share with
// cosocket sends: a buffer is back on the list once sent (a flush, or
// postpone_output reached), the last sent first; a captured subrequest's
// body is copied into a buffer of the parent's list (lua-nginx-module's
// 056-flush.t TESTs 1 and 13, 020-subrequest.t TEST 27).
func TestLuaOutputFreeBufLines(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	conf := "pid {{DIR}}/nginx.pid;\nerror_log {{DIR}}/error.log debug;\n" + luaModules + "events {}\nhttp {\n" + `
    access_log off;
    server {
        listen 127.0.0.1:{{PORT}};
        location /a { content_by_lua_block { ngx.say("hello, world") ngx.flush(true) ngx.say("hiya") ngx.say("hiya") ngx.say("longer line here") } }
        location /d { content_by_lua_block { ngx.say("hello, world") ngx.flush() ngx.say("hiya") ngx.flush(true) ngx.say("x") ngx.say("y") ngx.say("z") } }
        location /e { content_by_lua_block { ngx.say(string.rep("a", 3000)) ngx.say("hiya") ngx.say("x") } }
        location /f { content_by_lua_block { ngx.print("ab") ngx.flush(true) ngx.print("") ngx.print("cd", 1) ngx.flush(true) ngx.print("e") ngx.print("f") ngx.print("g") } }
        location /co { content_by_lua_block {
            local function f() ngx.say("hello, world") ngx.flush(true) coroutine.yield() ngx.say("hiya") end
            local c = coroutine.create(f)
            ngx.say(coroutine.resume(c))
            ngx.say(coroutine.resume(c))
        } }
        location /sock { content_by_lua_block {
            ngx.say("a") ngx.flush(true)
            local s = ngx.socket.tcp()
            assert(s:connect("127.0.0.1", {{PORT}}))
            s:send("GET /c HTTP/1.0\r\n\r\n")
            s:close()
            ngx.say("x") ngx.say("y")
        } }
        location /c { return 200 "c\n"; }
        location /sizes { content_by_lua_block {
            for _, v in ipairs({ {"cd", 1}, {1.5}, {true}, {false}, {nil, ngx.null}, {{"ab", 12, {"c"}}}, {1e10} }) do
                ngx.print(unpack(v)) ngx.flush(true) ngx.print("e") ngx.print("f") ngx.flush(true)
            end
            ngx.say(123456) ngx.flush(true) ngx.print("e") ngx.print("f")
        } }
        location /sa { content_by_lua_block { ngx.say("hello, a") } }
        location /sb { content_by_lua_block { ngx.say("hello, bb") } }
        location /sc { content_by_lua_block { ngx.say("hello, c") } }
        location /se { return 204; }
        location /cap { content_by_lua_block {
            local res1, res2 = ngx.location.capture_multi({{"/sa"}, {"/sb"}})
            local res3 = ngx.location.capture("/sc")
            ngx.print(res1.body, res2.body, res3.body)
        } }
        location /cap2 { content_by_lua_block {
            ngx.say("x")
            ngx.location.capture("/sa")
            ngx.location.capture("/se")
            ngx.say("y") ngx.flush(true)
            local r = ngx.location.capture("/sb")
            ngx.print(r.body)
        } }
        location /nothing { content_by_lua_block { ngx.say("a") ngx.say("b") } }
    }
}
`
	line := regexp.MustCompile(`\[debug\] \d+#\d+: \*\d+ (lua reuse free buf[^,]*)`)
	run := func(kind string) []string {
		s := startServer(t, kind, ServerOptions{Main: conf})
		var got []string
		seen := 0
		for _, path := range []string{"/a", "/d", "/e", "/f", "/co", "/sock", "/sizes", "/cap", "/cap2", "/nothing"} {
			resp, err := rawRequest(s.Addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", routingTimeout)
			if err != nil {
				t.Fatalf("%s %s: %v", kind, path, err)
			}
			got = append(got, fmt.Sprintf("%s %d", path, resp.Status))
			time.Sleep(50 * time.Millisecond)
			log := s.ErrorLog()
			for _, m := range line.FindAllStringSubmatch(log[seen:], -1) {
				got = append(got, "  "+m[1])
			}
			seen = len(log)
		}
		return got
	}
	if d := cmp.Diff(run("nginx"), run("ngxsockify")); d != "" {
		t.Errorf("free buffer lines (-nginx +ngxsockify):\n%s", d)
	}
}
