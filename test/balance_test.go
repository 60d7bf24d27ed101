package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// namedBackend listens on loopback and tells who it is: an HTTP request
// gets a 200 whose body is name; any other first bytes (a websockify
// tunnel's payload) get name written back. It returns the address.
func namedBackend(t *testing.T, name string) string {
	t.Helper()
	return serveConns(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		first, err := br.Peek(1)
		if err != nil {
			return
		}
		if first[0] != 'G' {
			io.WriteString(c, name)
			io.Copy(io.Discard, br) // until the tunnel ends
			return
		}
		if req, err := http.ReadRequest(br); err == nil {
			req.Body.Close()
			fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(name), name)
		}
	})
}

// TestBalanceByKey: the same key picks the same server on nginx and on
// ngxsockify, for proxy_pass and for websockify_pass (which share the
// balancers), with hash, hash consistent and ip_hash (after realip). The
// backends are this process's listeners, so both servers' configs name
// them alike: hash consistent places servers on its ring by their names,
// ports included, which the routing suite's per-server ports would change.
func TestBalanceByKey(t *testing.T) {
	var servers [5]string
	for i := range servers {
		servers[i] = namedBackend(t, fmt.Sprintf("b%d", i+1))
	}
	upstreams := fmt.Sprintf(`
upstream c {
    hash $arg_k consistent;
    server %[1]s;
    server %[2]s weight=2;
    server %[3]s;
    server %[4]s down;
    server %[5]s max_fails=0;
}
upstream h {
    hash "key=$arg_k";
    server %[1]s;
    server %[2]s weight=3;
    server %[3]s;
    server %[4]s;
}
upstream i {
    ip_hash;
    server %[1]s;
    server %[2]s down;
    server %[3]s weight=2;
    server %[5]s;
}
`, servers[0], servers[1], servers[2], servers[3], servers[4])
	locations := `
    set_real_ip_from 127.0.0.1;
    location /c { proxy_pass http://c; }
    location /h { proxy_pass http://h; }
    location /i { proxy_pass http://i; }
`
	nginx := startNginx(t, upstreams+"server {\n    listen 127.0.0.1:{{PORT}};"+locations+"}\n")
	ours := startNgxsockify(t, upstreams+"server {\n    listen 127.0.0.1:{{PORT}};"+locations+`
    location /wc { websockify_pass c; }
    location /wh { websockify_pass h; }
    location /wi { websockify_pass i; }
}
`)
	get := func(s *Server, path, ip string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", s.URL(path), nil)
		req.Header.Set("X-Real-IP", ip)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", s.Kind, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprint(resp.StatusCode, " ", string(b))
	}
	tunnel := func(path, ip string) string {
		t.Helper()
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		c, resp, err := d.Dial("ws://"+ours.Addr+path, http.Header{"X-Real-IP": {ip}})
		if err != nil {
			if resp != nil {
				return fmt.Sprint(resp.StatusCode, " ")
			}
			t.Fatalf("websockify %s: %v", path, err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.WriteMessage(websocket.BinaryMessage, []byte("who"))
		_, p, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("websockify %s: %v", path, err)
		}
		return "200 " + string(p)
	}
	keys := []string{"", "a", "vnc1", "vnc2", "desk-17", "10.0.0.5", "user%40example.org", "%2Fx", "Z", "42"}
	for i := range 20 {
		keys = append(keys, fmt.Sprintf("k%d", i*37))
	}
	spread := map[string]map[string]bool{}
	check := func(what, path, ip string) {
		want := get(nginx, path, ip)
		if spread[what] == nil {
			spread[what] = map[string]bool{}
		}
		spread[what][want] = true
		if got := get(ours, path, ip); got != want {
			t.Errorf("proxy_pass %s (client %s): ngxsockify %q, nginx %q", path, ip, got, want)
		}
		if got := tunnel("/w"+strings.TrimPrefix(path, "/"), ip); got != want {
			t.Errorf("websockify_pass %s (client %s): %q, nginx's proxy_pass %q", path, ip, got, want)
		}
	}
	for _, k := range keys[1:] { // an empty key is round robin: no fixed answer
		check("c", "/c?k="+k, "192.0.2.1")
		check("h", "/h?k="+k, "192.0.2.1")
	}
	for i := range 24 {
		ip := fmt.Sprintf("%d.%d.%d.%d", 10+i*9, i*31%256, i*7%256, i)
		if i%4 == 3 {
			ip = fmt.Sprintf("2001:db8:%x::%x", i*97, i)
		}
		check("i", "/i", ip)
	}
	for what, answers := range spread {
		if len(answers) < 3 {
			t.Errorf("%s: nginx's answers %v do not spread over the servers: the test shows little", what, answers)
		}
	}
}

// slowBackend answers every HTTP request with status after delay.
func slowBackend(t *testing.T, status int, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		w.WriteHeader(status)
		fmt.Fprintf(w, "%d from %s\n", status, ln.Addr())
	}))
	return ln.Addr().String()
}

// TestNextUpstreamTimeout: proxy_next_upstream_timeout stops the retries
// once the time since the first try began has passed, as in nginx.
func TestNextUpstreamTimeout(t *testing.T) {
	slow := slowBackend(t, http.StatusNotFound, 400*time.Millisecond)
	fast := slowBackend(t, http.StatusOK, 0)
	conf := `
upstream u { server ` + slow + `; server ` + fast + `; }
server {
    listen 127.0.0.1:{{PORT}};
    proxy_next_upstream http_404;
    location /short { proxy_next_upstream_timeout 200ms; proxy_pass http://u; }
    location /long { proxy_next_upstream_timeout 5s; proxy_pass http://u; }
    location /none { proxy_pass http://u; }
}
`
	nginx, ours := startNginx(t, conf), startNgxsockify(t, conf)
	for _, path := range []string{"/short", "/long", "/none"} {
		// two requests: round robin starts each at another server
		for range 2 {
			var got [2]string
			for i, s := range []*Server{nginx, ours} {
				resp, err := http.Get(s.URL(path))
				if err != nil {
					t.Fatalf("%s %s: %v", s.Kind, path, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got[i] = fmt.Sprint(resp.StatusCode, " ", string(b))
			}
			if got[0] != got[1] {
				t.Errorf("%s: ngxsockify %q, nginx %q", path, got[1], got[0])
			}
		}
	}
}

// TestWebsockifyMaxConns: a tunnel holds its server's connection until it
// ends, so max_conns and least_conn count open tunnels.
func TestWebsockifyMaxConns(t *testing.T) {
	a, b, z := namedBackend(t, "a"), namedBackend(t, "b"), namedBackend(t, "z")
	s := startNgxsockify(t, `
upstream lim { server `+a+` max_conns=1; server `+z+` backup; }
upstream lc { least_conn; server `+a+`; server `+b+`; }
server {
    listen 127.0.0.1:{{PORT}};
    location /lim { websockify_pass lim; }
    location /lc { websockify_pass lc; }
}`)
	open := func(path string) (*websocket.Conn, string) {
		t.Helper()
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		c, _, err := d.Dial("ws://"+s.Addr+path, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.WriteMessage(websocket.BinaryMessage, []byte("who"))
		_, p, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return c, string(p)
	}
	first, name := open("/lim")
	if name != "a" {
		t.Fatalf("first tunnel reached %s", name)
	}
	second, name := open("/lim")
	if name != "z" {
		t.Errorf("a at max_conns=1: second tunnel reached %s, want the backup z", name)
	}
	second.Close()
	first.Close()
	waitFor(t, func() bool {
		c, name := open("/lim")
		c.Close()
		return name == "a"
	}, "a to take a tunnel again once the first one ended")

	// least_conn: with a tunnel open to one server, the next goes to the other
	var held []*websocket.Conn
	seen := map[string]int{}
	for range 4 {
		c, name := open("/lc")
		held = append(held, c)
		seen[name]++
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Errorf("least_conn spread 4 open tunnels as %v, want 2 and 2", seen)
	}
	for _, c := range held {
		c.Close()
	}
}
