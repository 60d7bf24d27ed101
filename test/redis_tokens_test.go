package test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// redisCmd sends one command to the Redis on port and returns its reply's
// first line.
func redisCmd(t *testing.T, port int, args ...string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}

// vncRangeEcho is an echo target on a port in 5900-5999, the range the
// example's websockify_allow opens.
func vncRangeEcho(t *testing.T) string {
	t.Helper()
	for p := 5900; p <= 5999; p++ {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			serveEcho(t, ln)
			return ln.Addr().String()
		}
	}
	t.Skip("no free port in 5900-5999")
	return ""
}

// TestRedisTokensBehindHAProxy runs examples/redis-tokens as its README
// says: one Redis, two ngxsockify instances of the same nginx.conf, and
// Debian's HAProxy from haproxy.cfg in front. A token works through both
// instances; deleting it refuses new consoles on both at once, and a
// console already open goes on.
func TestRedisTokensBehindHAProxy(t *testing.T) {
	requireNgxsockify(t)
	haproxy := requireTool(t, "haproxy")
	requireLuaNginxRedis(t)
	redisPort := startRedis(t)
	target := vncRangeEcho(t)

	conf, err := os.ReadFile("../examples/redis-tokens/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	main := strings.NewReplacer(
		"listen 127.0.0.1:6080;", "listen 127.0.0.1:{{PORT}};",
		`red:connect("127.0.0.1", 6379)`, fmt.Sprintf(`red:connect("127.0.0.1", %d)`, redisPort),
		" logs/", " ",
	).Replace(string(conf))
	if !strings.Contains(main, strconv.Itoa(redisPort)) {
		t.Fatal("the example no longer connects to 127.0.0.1:6379")
	}
	a := startServer(t, "ngxsockify", ServerOptions{Main: main})
	b := startServer(t, "ngxsockify", ServerOptions{Main: main})

	hcfg, err := os.ReadFile("../examples/redis-tokens/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	front := freePort(t)
	_, pa, _ := net.SplitHostPort(a.Addr)
	_, pb, _ := net.SplitHostPort(b.Addr)
	hpath := filepath.Join(t.TempDir(), "haproxy.cfg")
	os.WriteFile(hpath, []byte(strings.NewReplacer(
		"127.0.0.1:6000", "127.0.0.1:"+strconv.Itoa(front),
		"127.0.0.1:6080", "127.0.0.1:"+pa,
		"127.0.0.1:6081", "127.0.0.1:"+pb,
	).Replace(string(hcfg))), 0o644)
	hp := exec.Command(haproxy, "-db", "-f", hpath)
	if err := hp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hp.Process.Kill(); hp.Wait() })
	frontAddr := "127.0.0.1:" + strconv.Itoa(front)
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", frontAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "haproxy listening")

	dial := func(addr, token string) (*websocket.Conn, int) {
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		c, resp, err := d.Dial("ws://"+addr+"/websockify?token="+token, nil)
		if err != nil {
			if resp == nil {
				t.Fatalf("%s: %v", addr, err)
			}
			return nil, resp.StatusCode
		}
		return c, http.StatusSwitchingProtocols
	}
	const token = "3f9c0a"
	if got := redisCmd(t, redisPort, "SET", token, target); got != "+OK" {
		t.Fatalf("SET: %s", got)
	}
	if _, code := dial(frontAddr, "nosuchtoken"); code != http.StatusForbidden {
		t.Errorf("unknown token: %d, want 403", code)
	}
	var open *websocket.Conn
	for i := range 4 {
		c, code := dial(frontAddr, token)
		if code != http.StatusSwitchingProtocols {
			t.Fatalf("console %d through haproxy: %d, want 101", i, code)
		}
		wsEcho(t, c, fmt.Sprintf("console %d", i))
		if open == nil {
			open = c
			continue
		}
		c.Close()
	}
	// Round robin sent consoles to both instances (each logs its tunnels).
	for _, s := range []*Server{a, b} {
		waitFor(t, func() bool {
			log, _ := os.ReadFile(filepath.Join(s.Dir, "access.log"))
			return strings.Contains(string(log), "GET /websockify?token="+token)
		}, "a console through the instance on "+s.Addr)
	}

	if got := redisCmd(t, redisPort, "DEL", token); got != ":1" {
		t.Fatalf("DEL: %s", got)
	}
	for i := range 4 {
		if _, code := dial(frontAddr, token); code != http.StatusForbidden {
			t.Errorf("after DEL, console %d through haproxy: %d, want 403", i, code)
		}
	}
	for _, s := range []*Server{a, b} {
		if _, code := dial(s.Addr, token); code != http.StatusForbidden {
			t.Errorf("after DEL, console on %s: %d, want 403", s.Addr, code)
		}
	}
	wsEcho(t, open, "the open console goes on")
	open.Close()
}
