package test

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLuaWriteErrorAfterAbortLikeNginx: under a small postpone_output,
// nginx writes ngx.say's headers and body as they come; once the client
// has closed its connection the body's write meets the reset and ngx.say
// and ngx.print answer nil, "nginx output filter error", and so does
// ngx.eof, whose last chunk goes at once (lua-nginx-module
// t/100-client-abort.t TESTs 27, 28, 31). Under the default postpone_output
// the output waits and the call succeeds, on both servers.
func TestLuaWriteErrorAfterAbortLikeNginx(t *testing.T) {
	body := `server {
    listen 127.0.0.1:{{PORT}};
    location /say {
        postpone_output 1;
        content_by_lua_block {
            ngx.sleep(0.2)
            local ok, err = ngx.say("hello")
            ngx.log(ngx.WARN, "say: ", ok, " ", err)
        }
    }
    location /print {
        postpone_output 1;
        content_by_lua_block {
            ngx.sleep(0.2)
            local ok, err = ngx.print("hello")
            ngx.log(ngx.WARN, "print: ", ok, " ", err)
        }
    }
    location /eof {
        postpone_output 1;
        content_by_lua_block {
            ngx.sleep(0.2)
            local ok, err = ngx.eof()
            ngx.log(ngx.WARN, "eof: ", ok, " ", err)
        }
    }
    location /default {
        content_by_lua_block {
            ngx.sleep(0.2)
            local ok, err = ngx.say("hello")
            ngx.log(ngx.WARN, "default: ", ok, " ", err)
        }
    }
}`
	want := []string{"say: nil nginx output filter error", "print: nil nginx output filter error",
		"eof: nil nginx output filter error", "default: 1 nil"}
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: body})
		for _, path := range []string{"/say", "/print", "/eof", "/default"} {
			c, err := net.Dial("tcp", s.Addr)
			if err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
			time.Sleep(100 * time.Millisecond)
			c.Close()
			time.Sleep(300 * time.Millisecond)
		}
		s.Stop()
		log, _ := os.ReadFile(filepath.Join(s.Dir, "error.log"))
		for _, w := range want {
			if !strings.Contains(string(log), w) {
				t.Errorf("%s: error.log lacks %q:\n%s", kind, w, log)
			}
		}
	}
}
