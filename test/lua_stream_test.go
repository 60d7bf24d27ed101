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
 location /length {
  content_by_lua_block {
   ngx.header["Content-Length"] = 7
   ngx.print("one") ngx.flush(true) ngx.sleep(0.6) ngx.say("two")
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
		for _, path := range []string{"/flush", "/sleep", "/big", "/length", "/thread", "/access"} {
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
				if path == "/length" {
					// a length the hook set: streamed on HTTP/1.0 too
					if !strings.HasSuffix(early, "\r\n\r\none") || rest != "two\n" {
						t.Errorf("%s: early %q, then %q", where, early, rest)
					}
					continue
				}
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

// TestLuaRawReqSocket: ngx.req.socket(true) after a 101 (what
// resty.websocket.server does), and before any header (the hook writes
// the whole response), on nginx + lua and ngxsockify alike.
func TestLuaRawReqSocket(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	conf := `server {
 listen 127.0.0.1:{{PORT}};
 server_tokens off;
 location /upgrade {
  content_by_lua_block {
   ngx.status = 101
   ngx.header["Upgrade"] = "echo"
   ngx.send_headers()
   ngx.flush(true)
   local sock = assert(ngx.req.socket(true))
   ngx.log(ngx.WARN, "second: ", select(2, ngx.req.socket(true)), ", say: ", select(2, ngx.say("x")))
   for i = 1, 2 do
    local data, err = sock:receive(5)
    if not data then ngx.log(ngx.WARN, "receive: ", err) return end
    sock:send(i .. ": " .. data .. "\n")
   end
  }
 }
 location /raw {
  content_by_lua_block {
   ngx.req.read_body()
   local sock = assert(ngx.req.socket(true))
   sock:send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" .. ngx.req.get_body_data())
  }
 }
 location /pending {
  content_by_lua_block {
   ngx.say("x")
   ngx.log(ngx.WARN, "pending: ", select("#", ngx.req.socket(true)))
  }
 }
}`
	dateRE := strings.NewReplacer("Server: nginx\r\n", "", "Server: ngxsockify\r\n", "")
	exchange := func(s *Server, head string, parts ...string) string {
		c, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		fmt.Fprint(c, head)
		var got strings.Builder
		for _, p := range parts {
			got.WriteString(readUntilQuiet(c, br, 300*time.Millisecond))
			fmt.Fprint(c, p)
		}
		got.WriteString(readUntilQuiet(c, br, 2*time.Second))
		out := got.String()
		if i := strings.Index(out, "Date: "); i >= 0 {
			j := strings.Index(out[i:], "\r\n")
			out = out[:i] + out[i+j+2:]
		}
		return dateRE.Replace(out)
	}
	// (what /pending sends differs: nginx drops the unflushed output with
	// the headers; ngxsockify has sent the headers)
	type result struct{ upgrade, raw string }
	var res [2]result
	for i, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: conf})
		res[i].upgrade = exchange(s, "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello", "world")
		res[i].raw = exchange(s, "POST /raw HTTP/1.0\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
		if got := exchange(s, "GET /pending HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); strings.Contains(got, "x\n") {
			t.Errorf("%s: unflushed output sent: %q", kind, got)
		}
		time.Sleep(100 * time.Millisecond)
		log := s.ErrorLog()
		for _, want := range []string{"second: duplicate call, say: raw request socket acquired", "pending: 1,"} {
			if !strings.Contains(log, want) {
				t.Errorf("%s: no %q in the error log:\n%s", kind, want, log)
			}
		}
	}
	if res[0] != res[1] {
		t.Errorf("nginx and ngxsockify differ:\nnginx:      %q\nngxsockify: %q", res[0], res[1])
	}
	if !strings.HasSuffix(res[0].upgrade, "1: hello\n2: world\n") || res[0].raw != "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" {
		t.Errorf("nginx answered %q", res[0])
	}
}
