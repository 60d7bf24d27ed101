package test

import (
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// stubStatusRE is nginx's stub_status page, spaces before the line ends
// included.
var stubStatusRE = regexp.MustCompile(`^Active connections: (\d+) \nserver accepts handled requests\n` +
	` (\d+) (\d+) (\d+) \nReading: (\d+) Writing: (\d+) Waiting: (\d+) \n$`)

// stubStatus is one stub_status page.
type stubStatus struct {
	Active, Accepts, Handled, Requests, Reading, Writing, Waiting int
}

func fetchStubStatus(t *testing.T, s *Server, path string) stubStatus {
	t.Helper()
	resp, err := rawRequest(s.Addr, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 5*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", s.Kind, err)
	}
	m := stubStatusRE.FindStringSubmatch(resp.Body)
	if resp.Status != 200 || m == nil {
		t.Fatalf("%s: status %d, page not in nginx's format:\n%q", s.Kind, resp.Status, resp.Body)
	}
	n := make([]int, 7)
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1])
	}
	return stubStatus{n[0], n[1], n[2], n[3], n[4], n[5], n[6]}
}

// TestStubStatusCountsLikeNginx puts connections into each of nginx's
// states (keep-alive between requests, a header half sent, connected and
// silent) and compares what both servers' stub_status pages then say. The
// absolute counts differ run to run (the harness's probes), so accepts and
// requests are compared as differences between two pages.
func TestStubStatusCountsLikeNginx(t *testing.T) {
	const conf = `
server {
    listen 127.0.0.1:{{PORT}};
    location = /s { stub_status; }
    location / { return 200 "ok\n"; }
    location = /rate { limit_rate 8; return 200 "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\n"; }
}`
	const keepAlive, halfHeader, silent = 3, 2, 1
	type result struct {
		Before, After stubStatus
		Accepted      int // After.Accepts - Before.Accepts
		Requested     int // After.Requests - Before.Requests
	}
	run := func(s *Server) result {
		var r result
		r.Before = fetchStubStatus(t, s, "/s")
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		dial := func(send string) net.Conn {
			c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			if send != "" {
				io.WriteString(c, send)
			}
			return c
		}
		for range keepAlive {
			c := dial("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 512)
			if n, err := c.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "ok\n") {
				t.Fatalf("%s: keep-alive request: %q %v", s.Kind, buf[:n], err)
			}
		}
		for range halfHeader {
			dial("GET / HTTP/1.1\r\nHo")
		}
		for range silent {
			dial("")
		}
		// Two requests in one segment: both count (nginx-tests
		// stub_status.t "requests increased by 2").
		c := dial("GET / HTTP/1.1\r\nHost: localhost\r\n\r\nGET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if b, err := io.ReadAll(c); err != nil || strings.Count(string(b), "ok\n") != 2 {
			t.Fatalf("%s: pipelined requests: %q %v", s.Kind, b, err)
		}
		c.Close() // nginx lingers after a pipelined request until the client closes
		// A client that leaves a rate-limited response midway is no
		// longer counted once it has gone: the paced writer watches the
		// connection while it waits.
		c = dial("GET /rate HTTP/1.0\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 64)); err != nil {
			t.Fatalf("%s: /rate: %v", s.Kind, err)
		}
		c.Close()
		time.Sleep(300 * time.Millisecond)
		r.After = fetchStubStatus(t, s, "/s")
		r.Accepted = r.After.Accepts - r.Before.Accepts
		r.Requested = r.After.Requests - r.Before.Requests
		r.Before.Accepts, r.Before.Handled, r.Before.Requests = 0, 0, 0
		r.After.Accepts, r.After.Handled, r.After.Requests = 0, 0, 0
		return r
	}
	want := run(startNginx(t, conf))
	got := run(startNgxsockify(t, conf))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stub_status differs from nginx's (-nginx +ngxsockify):\n%s", diff)
	}
	// What nginx's numbers mean, so that a change in both shows up too.
	if a := want.After; a.Active != keepAlive+halfHeader+silent+1 || a.Reading != halfHeader ||
		a.Writing != 1 || a.Waiting != keepAlive+silent || want.Accepted != keepAlive+halfHeader+silent+3 ||
		want.Requested != keepAlive+halfHeader+4 {
		t.Errorf("nginx's counts are not what this test expects: %+v", want)
	}
}

// TestStubStatusCountsTunnels: a tunnel is an active connection and a
// request being written (as nginx counts an upgraded proxy_pass) for its
// whole life, and is released when it ends.
func TestStubStatusCountsTunnels(t *testing.T) {
	echo := echoTarget(t)
	s := startNgxsockify(t, `
server {
    listen 127.0.0.1:{{PORT}};
    location = /s { stub_status; }
    location = /v { return 200 "$connections_active $connections_reading $connections_writing $connections_waiting"; }
    location /ws { websockify_pass `+echo+`; }
}`)
	// The probe connections before this one are closed by their own
	// goroutines just after their answers went out, so one may still be
	// counted (waiting) for a moment (nginx closes it before it reads the
	// next event): ask again until they are gone. Nothing else waits here.
	settled := func() stubStatus {
		t.Helper()
		st := fetchStubStatus(t, s, "/s")
		for end := time.Now().Add(3 * time.Second); st.Waiting != 0 && time.Now().Before(end); {
			time.Sleep(20 * time.Millisecond)
			st = fetchStubStatus(t, s, "/s")
		}
		return st
	}
	before := settled()
	ws, _, err := wsDial(t, s, "/ws", "binary")
	if err != nil {
		t.Fatal(err)
	}
	wsEcho(t, ws, "hello")
	during := settled()
	if during.Active != before.Active+1 || during.Writing != before.Writing+1 {
		t.Errorf("with a tunnel open: %+v, before %+v: want one more active and writing", during, before)
	}
	want := strconv.Itoa(during.Active) + " 0 2 0"
	var got string
	for end := time.Now().Add(3 * time.Second); got != want && time.Now().Before(end); {
		resp, err := rawRequest(s.Addr, "GET /v HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got = resp.Body; got != want {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if got != want {
		t.Errorf("$connections_* = %q, want %q", got, want)
	}
	ws.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := fetchStubStatus(t, s, "/s")
		if after.Active == before.Active && after.Writing == before.Writing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the tunnel ended: %+v, want active and writing as before %+v", after, before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPrometheusMetrics scrapes prometheus_metrics after tunnels, a failed
// handshake, Lua hooks and requests, and checks that allow/deny guard it.
func TestPrometheusMetrics(t *testing.T) {
	echo := echoTarget(t)
	dead := deadPort(t)
	s := startNgxsockify(t, `
server {
    listen 127.0.0.1:{{PORT}};
    location = /metrics { prometheus_metrics; allow 127.0.0.1; deny all; }
    location = /closed { prometheus_metrics; allow 192.0.2.1; deny all; }
    location /ws { websockify_pass `+echo+`; }
    location = /dead { websockify_pass `+dead+`; }
    location = /lua {
        access_by_lua_block { if ngx.var.arg_fail then error("boom") end }
        content_by_lua_block { ngx.say("ok") }
    }
}`)
	get := func(path string) *rawResponse {
		t.Helper()
		resp, err := rawRequest(s.Addr, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if st := get("/closed").Status; st != http.StatusForbidden {
		t.Errorf("deny all: status %d, want 403", st)
	}
	ws, _, err := wsDial(t, s, "/ws", "binary")
	if err != nil {
		t.Fatal(err)
	}
	wsEcho(t, ws, "hello")
	open := get("/metrics")
	if open.Status != 200 || !strings.HasPrefix(open.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: status %d, Content-Type %q", open.Status, open.Header.Get("Content-Type"))
	}
	wantLines(t, open.Body, `ngxsockify_tunnels_open{location="/ws"} 1`)
	ws.Close()
	if _, _, err := wsDial(t, s, "/dead", "binary"); err == nil {
		t.Error("a dead target gave a tunnel")
	}
	get("/lua")
	get("/lua?fail=1")
	deadline := time.Now().Add(5 * time.Second)
	for {
		body := get("/metrics").Body
		if strings.Contains(body, `ngxsockify_tunnels_total{location="/ws",result="closed"} 1`) {
			wantLines(t, body,
				`ngxsockify_tunnels_open{location="/ws"} 0`,
				`ngxsockify_handshake_failures_total{status="502"} 1`,
				`ngxsockify_http_requests_total{status="101"} 1`,
				`ngxsockify_http_requests_total{status="403"} 1`,
				`ngxsockify_http_requests_total{status="500"} 1`,
				`ngxsockify_lua_runs_total{phase="access"} 2`,
				`ngxsockify_lua_runs_total{phase="content"} 1`,
				`ngxsockify_lua_errors_total{phase="access"} 1`,
				`ngxsockify_lua_duration_seconds_count{phase="access"} 2`,
				`ngxsockify_upstream_connect_seconds_count 2`,
			)
			if !regexp.MustCompile(`ngxsockify_tunnel_bytes_total\{direction="from_client"\} [1-9]`).MatchString(body) ||
				!regexp.MustCompile(`ngxsockify_tunnel_bytes_total\{direction="to_client"\} [1-9]`).MatchString(body) {
				t.Errorf("no tunnel bytes counted:\n%s", grepLines(body, "tunnel_bytes"))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tunnel's end was never counted:\n%s", grepLines(body, "ngxsockify_tunnel"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func wantLines(t *testing.T, body string, lines ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(body, "\n") {
		have[l] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("metrics lack %q; have:\n%s", l, grepLines(body, "ngxsockify_"))
		}
	}
}

func grepLines(body, sub string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") && !strings.Contains(l, "_bucket") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
