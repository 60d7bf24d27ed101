package test

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// deadPort returns a loopback port with nothing listening on it.
func deadPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// unixEcho is an echo target on a unix socket.
func unixEcho(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vnc.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	serveEcho(t, ln)
	return path
}

// dnsServer answers A queries for name with 127.0.0.1 and every other
// query with NXDOMAIN, on a loopback UDP port; asked counts the queries
// for name.
func dnsServer(t *testing.T, name string) (addr string, asked *atomic.Int64) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	asked = new(atomic.Int64)
	// The question as it appears on the wire: length-prefixed labels.
	var wire []byte
	for _, label := range strings.Split(name, ".") {
		wire = append(append(wire, byte(len(label))), label...)
	}
	wire = append(wire, 0, 0, 1) // root, type A
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 12+5 { // a header and the shortest question
				continue
			}
			q := buf[:n]
			end := 12 + len(wire) + 2 // header, question, class
			resp := append([]byte(nil), q[:min(end, n)]...)
			resp[2], resp[3] = 0x81, 0x83 // response, NXDOMAIN
			clear(resp[6:12])
			if n >= end && strings.EqualFold(string(q[12:12+len(wire)]), string(wire)) {
				asked.Add(1)
				resp[3], resp[7] = 0x80, 1 // no error, one answer
				resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1)
			}
			pc.WriteTo(resp, from)
		}
	}()
	return pc.LocalAddr().String(), asked
}

// TestWebsockifyPassResolver resolves a variable target through `resolver`:
// answers are kept for valid=, and a name the server does not know is 502
// with nginx's error-log line.
func TestWebsockifyPassResolver(t *testing.T) {
	echo := echoTarget(t)
	_, port, _ := net.SplitHostPort(echo)
	dns, asked := dnsServer(t, "vnc.test")
	s := startNgxsockify(t, `
server {
    listen 127.0.0.1:{{PORT}};
    location /named { resolver `+dns+` valid=1h ipv6=off; websockify_pass $arg_t; }
}`)
	for i := 0; i < 3; i++ {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr+"/named?t=vnc.test:"+port, nil)
		if err != nil {
			t.Fatalf("tunnel %d: %v", i, err)
		}
		wsEcho(t, c, "through vnc.test")
		c.Close()
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("3 tunnels asked the DNS server %d times for vnc.test, want 1 (valid=1h)", n)
	}
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+s.Addr+"/named?t=nx.test:"+port, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("unknown name: %v %v, want 502", resp, err)
	}
	waitFor(t, func() bool {
		return strings.Contains(s.ErrorLog(), "nx.test could not be resolved (3: Host not found)")
	},
		"error log line for nx.test")
}

// TestWebsockifyPassForms runs websockify_pass in the forms users write and
// checks the status and error-log line of each failure.
func TestWebsockifyPassForms(t *testing.T) {
	echo := echoTarget(t)
	dead := deadPort(t)
	sock := unixEcho(t)
	s := startNgxsockify(t, `
upstream vnc_pool {
    server `+dead+`;
    server `+echo+`;
}
server {
    listen 127.0.0.1:{{PORT}};
    location /static { websockify_pass `+echo+`; }
    location /var { websockify_pass $arg_t; }
    location /pool { websockify_pass vnc_pool; }
    location /unix { websockify_pass unix:`+sock+`; }
    location /refused { websockify_pass `+dead+`; }
    location /lua {
        access_by_lua_block { ngx.var.target = ngx.var.arg_to }
        websockify_pass $target;
    }
    location /set { set $h 127.0.0.1; set $p `+strings.Split(echo, ":")[1]+`; websockify_pass $h:$p; }
    set $target "";
}`)
	dial := func(path string) (*websocket.Conn, int) {
		return wsDialStatus(t, websocket.Dialer{HandshakeTimeout: 5 * time.Second}, "ws://"+s.Addr+path)
	}
	for _, path := range []string{"/static", "/var?t=" + echo, "/pool", "/pool", "/unix", "/lua?to=" + echo, "/set"} {
		c, code := dial(path)
		if code != 101 {
			t.Errorf("%s: status %d, want 101", path, code)
			continue
		}
		wsEcho(t, c, "through "+path)
		c.Close()
	}
	for _, tc := range []struct {
		path string
		code int
		log  string
	}{
		{"/var", 500, `no host in upstream ""`},
		{"/var?t=127.0.0.1:abc", 500, `invalid port in upstream "127.0.0.1:abc"`},
		{"/var?t=vnc.invalid:5900", 502, `no resolver defined to resolve vnc.invalid`},
		{"/refused", 502, `connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: , request: "GET /refused HTTP/1.1", upstream: "` + dead + `"`},
		{"/lua", 500, `no host in upstream ""`},
	} {
		if _, code := dial(tc.path); code != tc.code {
			t.Errorf("%s: status %d, want %d", tc.path, code, tc.code)
		}
		waitFor(t, func() bool { return strings.Contains(s.ErrorLog(), tc.log) }, "error log line "+tc.log)
	}
	// A plain GET (no Upgrade) is a bad handshake.
	resp, err := http.Get(s.URL("/static"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("plain GET: %d, want 400", resp.StatusCode)
	}
}

// TestWebsockifyAccessLog checks the access-log line a tunnel writes when it
// ends: status 101, bytes sent and the upstream address.
func TestWebsockifyAccessLog(t *testing.T) {
	echo := echoTarget(t)
	s := startNgxsockify(t, `
log_format ws '$remote_addr "$request" $status $bytes_sent up=$upstream_addr';
server {
    listen 127.0.0.1:{{PORT}};
    access_log {{DIR}}/ws.log ws;
    location /websockify { websockify_pass `+echo+`; }
}`)
	c, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr+"/websockify", nil)
	if err != nil {
		t.Fatal(err)
	}
	wsEcho(t, c, strings.Repeat("x", 1000))
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	c.Close()
	logPath := filepath.Join(s.Dir, "ws.log")
	var line string
	waitFor(t, func() bool {
		b, _ := os.ReadFile(logPath)
		line = string(b)
		return strings.Contains(line, "101")
	}, "the tunnel's access-log line")
	if !strings.HasPrefix(line, `127.0.0.1 "GET /websockify HTTP/1.1" 101 `) || !strings.HasSuffix(strings.TrimSpace(line), "up="+echo) {
		t.Errorf("access log line %q", line)
	}
}

// TestWebsockifyAllow checks websockify_allow: targets outside the list get
// 403 and an error-log line before any dial, whether the target is static,
// a variable, set by Lua, or an upstream block with one server outside;
// socket paths are compared cleaned; a location's own list replaces the
// inherited one.
func TestWebsockifyAllow(t *testing.T) {
	echo := echoTarget(t)
	_, port, _ := net.SplitHostPort(echo)
	// A live target outside the list, counting connections: a refusal
	// must come before any dial.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	other := ln.Addr().String()
	sock := unixEcho(t)
	dir := filepath.Dir(sock)
	s := startNgxsockify(t, `
upstream mixed { server `+echo+`; server `+other+` backup; }
websockify_allow 127.0.0.1/32:`+port+` unix:`+dir+`/;
server {
    listen 127.0.0.1:{{PORT}};
    location /static { websockify_pass `+echo+`; }
    location /var { websockify_pass $arg_t; }
    location /lua {
        access_by_lua_block { ngx.var.target = ngx.var.arg_to }
        websockify_pass $target;
    }
    location /mixed { websockify_pass mixed; }
    location /unix { websockify_pass unix:$arg_p; }
    location /own { websockify_allow 127.0.0.2; websockify_pass `+echo+`; }
    set $target "";
}`)
	status := func(path string) int {
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		c, resp, err := d.Dial("ws://"+s.Addr+path, nil)
		if err != nil {
			if resp == nil {
				t.Fatalf("%s: %v", path, err)
			}
			return resp.StatusCode
		}
		wsEcho(t, c, "through "+path)
		c.Close()
		return http.StatusSwitchingProtocols
	}
	for _, tc := range []struct {
		path   string
		code   int
		target string // the refused address in the log line
	}{
		{"/static", 101, ""},
		{"/var?t=" + echo, 101, ""},
		{"/lua?to=" + echo, 101, ""},
		{"/unix?p=" + sock, 101, ""},
		{"/var?t=" + other, 403, other},
		{"/lua?to=" + other, 403, other},
		{"/mixed", 403, other},
		{"/unix?p=" + dir + "/../" + filepath.Base(dir) + "x/vnc.sock", 403, "unix:" + dir + "/../" + filepath.Base(dir) + "x/vnc.sock"},
		{"/own", 403, echo},
	} {
		if code := status(tc.path); code != tc.code {
			t.Errorf("%s: status %d, want %d", tc.path, code, tc.code)
		}
		if tc.target != "" {
			line := `websockify target "` + tc.target + `" is not allowed by websockify_allow`
			waitFor(t, func() bool { return strings.Contains(s.ErrorLog(), line) }, "error log line "+line)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the refused target was dialed %d times", n)
	}
}
