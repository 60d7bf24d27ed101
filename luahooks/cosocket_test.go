package luahooks

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// lineServer answers each line "x" with "got:x\r\n"; "slow" answers after
// 150 ms; "bye" makes it answer "ab\r\ncd--END--tail" and close; "last"
// answers "ok" and closes; "conns" answers the number of connections
// accepted so far.
func lineServer(t *testing.T) (addr string, accepted *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					switch line = strings.TrimRight(line, "\r\n"); line {
					case "slow":
						time.Sleep(150 * time.Millisecond)
						fmt.Fprint(c, "late\n")
					case "bye":
						fmt.Fprint(c, "ab\r\ncd--END--tail")
						return
					case "conns":
						fmt.Fprintf(c, "%d\n", accepted.Load())
					case "last":
						fmt.Fprint(c, "ok\n")
						return
					case "silent":
					default:
						fmt.Fprintf(c, "got:%s\r\n", line)
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), accepted
}

func TestCosocket(t *testing.T) {
	addr, _ := lineServer(t)
	host, port, _ := net.SplitHostPort(addr)
	refused := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		a := ln.Addr().String()
		ln.Close()
		return a
	}()
	_, rport, _ := net.SplitHostPort(refused)
	pre := fmt.Sprintf(`local s = ngx.socket.tcp() local ok, err = s:connect("%s", %s) if not ok then ngx.print("connect: ", err) return end `, host, port)
	cases := []struct{ name, src, want string }{
		{"line", pre + `ngx.print(s:send("hi\n"), " ", s:receive())`, "3 got:hi"},
		{"line default pattern", pre + `s:send({"a", {"b", 1}, "\n"}) ngx.print(s:receive("*l"))`, "got:ab1"},
		{"bytes", pre + `s:send("hey\n") ngx.print(s:receive(4), "|", s:receive(4), "|", s:receive("1"))`, "got:|hey\r|\n"},
		{"all after close", pre + `s:send("bye\n") ngx.print(s:receive("*a"))`, "ab\r\ncd--END--tail"},
		{"closed with partial", pre + `s:send("bye\n") s:receive() local d, err, part = s:receive(100) ngx.print(tostring(d), " ", err, " ", part, " ", s:send("x"))`, "nil closed cd--END--tail 1"},
		{"receiveuntil", pre + `s:send("bye\n") s:receive() local r = s:receiveuntil("--END--") ngx.print(r(), "|", s:receive("*a"))`, "cd|tail"},
		{"receiveuntil inclusive", pre + `s:send("bye\n") s:receive() local r = s:receiveuntil("--END--", {inclusive = true}) ngx.print(r())`, "cd--END--"},
		{"receiveuntil sized", pre + `s:send("bye\n") s:receive() local r = s:receiveuntil("--END--") local out = {} for i = 1, 4 do out[#out+1] = tostring(r(1)) end ngx.print(table.concat(out, ","))`, "c,d,,nil"},
		{"receiveany", pre + `s:send("x\n") ngx.print(s:receiveany(3), "|", s:receiveany(100))`, "got|:x\r\n"},
		{"read timeout keeps the socket", pre + `s:settimeout(30) s:send("silent\n") local d, err = s:receive() s:settimeout(1000) s:send("x\n") ngx.print(tostring(d), " ", err, " ", s:receive())`, "nil timeout got:x"},
		{"refused", fmt.Sprintf(`local s = ngx.socket.tcp() ngx.print(s:connect("127.0.0.1", %s))`, rport), "nilconnection refused"},
		{"no resolver", `local s = ngx.socket.tcp() ngx.print(s:connect("localhost", 1))`, `nilno resolver defined to resolve "localhost"`},
		{"closed ops", `local s = ngx.socket.tcp() ngx.print(select(2, s:send("x")), select(2, s:receive()), select(2, s:close()))`, "closedclosedclosed"},
		{"close", pre + `ngx.print(s:close(), " ", select(2, s:close()))`, "1 closed"},
		{"pool", pre + `s:send("conns\n") local a = s:receive() ngx.print(s:getreusedtimes(), s:setkeepalive()) ` +
			fmt.Sprintf(`local s2 = ngx.socket.tcp() s2:connect("%s", %s) s2:send("conns\n") ngx.print(" ", s2:getreusedtimes(), " ", a == s2:receive())`, host, port), "01 1 true"},
		{"pool drops a connection the peer closed", pre + `s:send("last\n") s:receive() ngx.print(s:setkeepalive()) ngx.sleep(0.05) ` +
			fmt.Sprintf(`local s2 = ngx.socket.tcp() s2:connect("%s", %s) ngx.print(" ", s2:getreusedtimes(), " ", s2:send("x\n"), " ", s2:receive())`, host, port), "1 0 2 got:x"},
		{"unread data refuses the pool", pre + `s:send("x\ny\n") s:receive() ngx.sleep(0.05) s:receive(1) ngx.print(s:setkeepalive())`, "nilunread data in buffer"},
		{"phase", pre, ""},
		{"pool options", `local s = ngx.socket.tcp() for _, o in ipairs({{pool = {}}, {pool_size = "a"}, {pool_size = 0}, {backlog = -1}}) do ngx.print(select(2, pcall(function() s:connect("127.0.0.1", 1, o) end)):match("%(([^()]*)%)$"), ";") end`,
			`bad "pool" option type: table;bad "pool_size" option type: string;bad "pool_size" option value: 0;bad "backlog" option value: -1;`},
		{"missing port", `local s = ngx.socket.tcp() ngx.print(select(2, s:connect("127.0.0.1")), ",", select(2, s:connect("127.0.0.1", nil)), ",", select(2, s:connect("127.0.0.1", {})))`,
			"missing the port number,missing the port number,missing the port number"},
		{"bad port", `ngx.print(ngx.socket.connect("127.0.0.1", 65536))`, "nilbad port number: 65536"},
		{"socket.connect", fmt.Sprintf(`local s = ngx.socket.connect("%s", "%s") s:send("z\n") ngx.print(s:receive())`, host, port), "got:z"},
		{"receiveany arguments", pre + `for _, a in ipairs({0, -1}) do ngx.print(select(2, pcall(s.receiveany, s, a)), ";") end ngx.print(select(2, pcall(s.receiveany, s)))`,
			"bad argument #2 to '?' (bad max argument);bad argument #2 to '?' (bad max argument);expecting 2 arguments (including the object), but got 1"},
	}
	rt, _ := newTestRuntime(t, Options{Timeout: 100 * time.Millisecond})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := runCode(t, rt, PhaseContent, tc.src, newReq("/"))
			if out.Err != nil || string(out.Body) != tc.want {
				t.Errorf("got %q (err %v), want %q", out.Body, out.Err, tc.want)
			}
		})
	}
	// Waiting on a socket does not count against the run's time limit:
	// the answer comes after 150 ms, the limit is 100 ms.
	out := runCode(t, rt, PhaseContent, pre+`s:send("slow\n") ngx.print(s:receive())`, newReq("/"))
	if string(out.Body) != "late" || out.Err != nil {
		t.Errorf("slow answer: %q (err %v)", out.Body, out.Err)
	}
	// Cosockets are not available in header filters.
	out = runCode(t, rt, PhaseHeaderFilter, `ngx.socket.tcp()`, newReq("/"))
	if out.Err == nil || !strings.Contains(out.Err.Error(), "API disabled in the context of header_filter_by_lua*") {
		t.Errorf("header filter: %+v", out)
	}
}

func TestCosocketResolver(t *testing.T) {
	addr, _ := lineServer(t)
	_, port, _ := net.SplitHostPort(addr)
	rt, _ := newTestRuntime(t, Options{})
	req := newReq("/")
	req.Resolve = func(_ context.Context, host string) ([]string, error) {
		if host == "svc.test" {
			return []string{"127.0.0.1"}, nil
		}
		return nil, fmt.Errorf("no such host")
	}
	src := fmt.Sprintf(`local s = ngx.socket.tcp() ngx.print(s:connect("svc.test", %s), " ", select(2, ngx.socket.tcp():connect("nx.test", 1)))`, port)
	out := runCode(t, rt, PhaseContent, src, req)
	if want := "1 nx.test could not be resolved (3: Host not found)"; string(out.Body) != want {
		t.Errorf("got %q (err %v), want %q", out.Body, out.Err, want)
	}
}

// A socket left open by the hook is closed when the run ends.
func TestCosocketClosedAtRunEnd(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Read(make([]byte, 1))
		close(closed)
	}()
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	rt, _ := newTestRuntime(t, Options{})
	runCode(t, rt, PhaseContent, fmt.Sprintf(`local s = ngx.socket.tcp() s:connect("%s", %s)`, host, port), newReq("/"))
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("the socket stayed open after the run")
	}
}

// The location's lua_socket_* settings reach the socket: the read timeout,
// and lua_socket_log_errors off.
func TestCosocketOptions(t *testing.T) {
	addr, _ := lineServer(t)
	host, port, _ := net.SplitHostPort(addr)
	rt, sink := newTestRuntime(t, Options{})
	req := newReq("/")
	req.Socket = SocketOptions{ReadTimeout: 30 * time.Millisecond, QuietErrors: true}
	src := fmt.Sprintf(`local s = ngx.socket.tcp() s:connect("%s", %s) s:send("silent\n") local t0 = ngx.now() ngx.print(select(2, s:receive()))`, host, port)
	start := time.Now()
	out := runCode(t, rt, PhaseContent, src, req)
	if string(out.Body) != "timeout" || time.Since(start) > 2*time.Second {
		t.Errorf("got %q (err %v) after %v", out.Body, out.Err, time.Since(start))
	}
	if strings.Contains(sink.text(), "timed out") {
		t.Errorf("lua_socket_log_errors off still logged: %s", sink.text())
	}
	req = newReq("/")
	req.Socket = SocketOptions{ReadTimeout: 30 * time.Millisecond}
	runCode(t, rt, PhaseContent, src, req)
	if !strings.Contains(sink.text(), "lua tcp socket read timed out") {
		t.Errorf("no timeout line: %s", sink.text())
	}
}

func TestCosocketUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if string(buf[:n]) != "silent" {
				pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
			}
		}
	}()
	host, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	rt, _ := newTestRuntime(t, Options{})
	src := fmt.Sprintf(`local u = ngx.socket.udp()
		ngx.say(u:setpeername("%s", %s))
		ngx.say(u:send({"a", 1, {"b"}}), " ", u:receive())
		ngx.say(u:send("hello"), " ", u:receive(7))
		u:settimeout(30)
		u:send("silent")
		ngx.say(u:receive())
		ngx.say(u:close(), " ", select(2, u:close()), " ", select(2, u:send("x")))
		ngx.say(select(2, ngx.socket.udp():setpeername("127.0.0.1")))`, host, port)
	out := runCode(t, rt, PhaseContent, src, newReq("/"))
	want := "1\n1 echo:a1b\n1 echo:he\nniltimeout\n1 closed closed\nmissing the port number\n"
	if string(out.Body) != want || out.Err != nil {
		t.Errorf("got %q (err %v), want %q", out.Body, out.Err, want)
	}
}

// TestCosocketUDPUnix: a datagram unix socket is bound to an address of
// the kernel's choice, as nginx's autobind, so the peer's answer reaches
// it (087-udp-socket TEST 14).
func TestCosocketUDPUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.sock")
	pc, err := net.ListenPacket("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if from != nil {
				pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
			}
		}
	}()
	rt, _ := newTestRuntime(t, Options{})
	src := fmt.Sprintf(`local u = ngx.socket.udp()
		u:settimeout(1000)
		ngx.say(u:setpeername("unix:%s"))
		ngx.say(u:send("hello"), " ", u:receive())`, path)
	out := runCode(t, rt, PhaseContent, src, newReq("/"))
	if want := "1\n1 echo:hello\n"; string(out.Body) != want || out.Err != nil {
		t.Errorf("got %q (err %v), want %q", out.Body, out.Err, want)
	}
}

// TestCosocketSendBufs: sends take their buffer from the request's free
// list as lua-nginx-module's ngx_http_lua_chain_get_free_buf does, with its
// debug lines (060-lua-memcached TEST 2).
func TestCosocketSendBufs(t *testing.T) {
	addr, _ := lineServer(t)
	host, port, _ := net.SplitHostPort(addr)
	rt, sink := newTestRuntime(t, Options{})
	src := fmt.Sprintf(`local s = ngx.socket.tcp() assert(s:connect("%s", %s))
		ngx.print(s:send("a\n"), s:send(""), s:send("hello\n"), s:send("hi\n"))`, host, port)
	out := runCode(t, rt, PhaseContent, src, newReq("/"))
	if out.Err != nil || string(out.Body) != "2063" {
		t.Fatalf("got %q, %v", out.Body, out.Err)
	}
	var got []string
	for _, l := range sink.lines {
		if strings.HasPrefix(l.msg, "lua reuse free buf") {
			got = append(got, strings.TrimSuffix(l.msg, ", cl:0000000000000000, p:0000000000000000"))
		}
	}
	want := []string{
		"lua reuse free buf chain, but reallocate memory because 6 >= 2",
		"lua reuse free buf memory 6 >= 3",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("debug lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCosocketKilledWhileResolving: a thread killed while its connect
// resolves gives its place in the connection pool back, so a connect
// queued behind it goes on (068-socket-keepalive TEST 48, 49).
func TestCosocketKilledWhileResolving(t *testing.T) {
	addr, _ := lineServer(t)
	host, port, _ := net.SplitHostPort(addr)
	rt, _ := newTestRuntime(t, Options{})
	req := newReq("/")
	req.Resolve = func(ctx context.Context, _ string) ([]string, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	src := fmt.Sprintf(`local opts = {pool = "p", pool_size = 1, backlog = 1}
		local th = ngx.thread.spawn(function() ngx.socket.connect("example.org", 80, opts) end)
		ngx.print(ngx.thread.kill(th))
		local s, err = ngx.socket.connect("%s", %s, opts)
		ngx.print(" ", s and "connected" or err)`, host, port)
	done := make(chan Outcome, 1)
	go func() { done <- runCode(t, rt, PhaseContent, src, req) }()
	select {
	case out := <-done:
		if out.Err != nil || string(out.Body) != "1 connected" {
			t.Errorf("got %q, %v", out.Body, out.Err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second connect waits for the killed thread's place")
	}
}

// TestCosocketQuickWrite: a send the socket's buffer takes goes out at
// once; one that does not returns what was written after quickWriteWait,
// for the caller to wait for the rest (its thread then busy writing).
func TestCosocketQuickWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer, err := ln.Accept() // never reads
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	s := &cosocket{conn: c}
	deadline := time.Now().Add(time.Minute)
	if n, err := s.quickWrite([]byte("hello"), deadline); n != 5 || err != nil {
		t.Errorf("small send: %d, %v", n, err)
	}
	big := make([]byte, 64<<20)
	start := time.Now()
	n, err := s.quickWrite(big, deadline)
	if err != nil || n == 0 || n >= len(big) {
		t.Errorf("big send: %d of %d, %v", n, len(big), err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("big send waited %v", d)
	}
	if n, err := s.quickWrite([]byte("x"), time.Now().Add(quickWriteWait/2)); n != 0 || err != nil {
		t.Errorf("short send timeout: %d, %v (the caller waits)", n, err)
	}
}
