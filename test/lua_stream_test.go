package test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// Lua output streamed, on nginx + lua and ngxsockify: what a hook printed
// reaches the client while the hook still waits, after ngx.flush or once
// postpone_output's 1460 bytes are pending (less waits for the end).

const luaStreamConf = `server {
 listen 127.0.0.1:{{PORT}};
 location /flush {
  content_by_lua_block { ngx.say("one") ngx.flush(true) ngx.sleep(0.6) ngx.say("two") }
 }
 location /sleep {
  content_by_lua_block { ngx.print("one") ngx.sleep(0.6) ngx.say("two") }
 }
 location /big {
  content_by_lua_block { ngx.print(("one"):rep(500)) ngx.sleep(0.6) ngx.say("two") }
 }
 location /thread {
  content_by_lua_block {
   local t = ngx.thread.spawn(function() ngx.sleep(0.6) ngx.say("two") end)
   ngx.say("one")
   ngx.flush()
   ngx.thread.wait(t)
  }
 }
 location /access {
  access_by_lua_block { ngx.say("one") ngx.flush(true) ngx.sleep(0.6) ngx.say("two") ngx.exit(200) }
 }
}`

// readUntilQuiet reads from c until nothing comes for quiet.
func readUntilQuiet(c net.Conn, br *bufio.Reader, quiet time.Duration) string {
	var b strings.Builder
	for {
		c.SetReadDeadline(time.Now().Add(quiet))
		ch, err := br.ReadByte()
		if err != nil {
			return b.String()
		}
		b.WriteByte(ch)
	}
}

func TestLuaStreamedOutput(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: luaStreamConf})
		for _, path := range []string{"/flush", "/sleep", "/big", "/thread", "/access"} {
			for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
				c, err := net.Dial("tcp", s.Addr)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(c, "GET %s %s\r\nHost: localhost\r\nConnection: close\r\n\r\n", path, proto)
				br := bufio.NewReader(c)
				early := readUntilQuiet(c, br, 300*time.Millisecond)
				rest := readUntilQuiet(c, br, 2*time.Second)
				c.Close()
				where := fmt.Sprintf("%s %s %s", kind, path, proto)
				if proto == "HTTP/1.0" {
					// lua_http10_buffering: all of it at the end, with a length
					if early != "" || !strings.Contains(rest, "Content-Length: ") || !strings.HasSuffix(rest, "onetwo\n") && !strings.HasSuffix(rest, "one\ntwo\n") {
						t.Errorf("%s: early %q, then %q", where, early, rest)
					}
					continue
				}
				if path == "/sleep" {
					// (nginx holds the headers too; ngxsockify sends them)
					if strings.Contains(early, "one") || !strings.Contains(rest, "two\n\r\n0\r\n\r\n") {
						t.Errorf("%s: early %q, then %q", where, early, rest)
					}
					continue
				}
				if !strings.Contains(early, "Transfer-Encoding: chunked") || !strings.Contains(early, "one") || strings.Contains(early, "two") {
					t.Errorf("%s: before the hook ends got %q", where, early)
				}
				if !strings.Contains(rest, "two") || !strings.HasSuffix(rest, "0\r\n\r\n") {
					t.Errorf("%s: after it got %q", where, rest)
				}
			}
		}
	}
}
