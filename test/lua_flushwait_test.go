package test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestLuaFlushWaitDebugLikeNginx: ngx.flush(true) under limit_rate, whose
// write the rate holds back, writes lua-nginx-module's debug line saying it
// waits ("lua flush requires waiting: buffered 0x.., delayed:1"), on both
// servers (lua-nginx-module t/056-flush.t TEST 17).
func TestLuaFlushWaitDebugLikeNginx(t *testing.T) {
	body := `server {
    listen 127.0.0.1:{{PORT}};
    error_log {{DIR}}/debug.log debug;
    location /test {
        limit_rate 150;
        content_by_lua_block {
            for i = 1, 2 do
                ngx.print(string.rep("a", 100))
                local ok, err = ngx.flush(true)
                if not ok then ngx.log(ngx.ERR, "failed to flush: ", err) end
            end
        }
    }
    location /nowait {
        content_by_lua_block {
            ngx.print("a")
            ngx.flush(true)
        }
    }
}`
	waiting := regexp.MustCompile(`\[debug\] \d+#\d+: \*\d+ lua flush requires waiting: buffered 0x[0-9a-f]+, delayed:1`)
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: body})
		if _, err := rawRequest(s.Addr, "GET /nowait HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", routingTimeout); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		s.Stop()
		log, _ := os.ReadFile(filepath.Join(s.Dir, "debug.log"))
		if waiting.Match(log) {
			t.Errorf("%s: a flush without limit_rate logged that it waits:\n%s", kind, waiting.Find(log))
		}
		s = startServer(t, kind, ServerOptions{HTTP: body})
		if _, err := rawRequest(s.Addr, "GET /test HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", routingTimeout); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		s.Stop()
		log, _ = os.ReadFile(filepath.Join(s.Dir, "debug.log"))
		if !waiting.Match(log) {
			t.Errorf("%s: debug.log lacks lua flush's waiting line", kind)
		}
	}
}

// TestCloseRequestDebugLikeNginx: a request's end writes nginx's "http
// close request" debug line before the log phase's "http log handler"
// (lua-nginx-module t/154-semaphore.t TEST 3 greps for it).
func TestCloseRequestDebugLikeNginx(t *testing.T) {
	body := `server {
    listen 127.0.0.1:{{PORT}};
    error_log {{DIR}}/debug.log debug;
    location /t {
        content_by_lua_block { ngx.say("hi") }
    }
}`
	order := regexp.MustCompile(`(?s)\[debug\] \d+#\d+: \*\d+ http close request\n.*\[debug\] \d+#\d+: \*\d+ http log handler\n`)
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: body})
		if _, err := rawRequest(s.Addr, "GET /t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", routingTimeout); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		s.Stop()
		log, _ := os.ReadFile(filepath.Join(s.Dir, "debug.log"))
		if !order.Match(log) {
			t.Errorf("%s: debug.log lacks \"http close request\" before \"http log handler\"", kind)
		}
	}
}
