package test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
)

// limitLogLine picks the limit modules' error-log lines, without time, pid
// and connection number: "error limiting requests, excess: E by zone
// "one"". The excess depends on the milliseconds between requests, so
// its value is left out (unit tests check the arithmetic).
var limitLogLine = regexp.MustCompile(`\[(\w+)\] \d+#\d+: (?:\*\d+ )?((?:limiting|delaying) [^,]*(?:, dry run,?)?[^"]*"[^"]*")`)

func limitLog(s *Server) []string {
	var out []string
	for _, m := range limitLogLine.FindAllStringSubmatch(s.ErrorLog(), -1) {
		out = append(out, m[1]+" "+excessValue.ReplaceAllString(m[2], "excess: E"))
	}
	return out
}

// heldRequest sends a GET for a large file and reads only the status line,
// so that the request stays in progress until the returned connection is
// closed.
func heldRequest(t *testing.T, addr, path string) (status string, c net.Conn) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 12)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(buf[9:12]), c
}

func limitStatus(t *testing.T, addr, path string) string {
	t.Helper()
	r, err := rawRequest(addr, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 10*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return fmt.Sprintf("%s %d %s", path, r.Status, r.Header.Get("X-Status"))
}

// TestLimitConnLikeNginx holds requests open (a big file the client does
// not read) and compares with nginx what limit_conn answers meanwhile: the
// same key at its limit is refused, in another location of the zone too,
// another zone or key passes, dry run passes with its status, and closing
// the held request frees the count. The error-log lines match nginx's.
func TestLimitConnLikeNginx(t *testing.T) {
	body := `
limit_conn_zone $binary_remote_addr zone=addr:1m;
limit_conn_zone $binary_remote_addr zone=other:1m;
limit_conn_zone $binary_remote_addr zone=custom:1m;
server {
    listen 127.0.0.1:{{PORT}};
    root {{DIR}};
    add_header X-Status $limit_conn_status always;
    location /big { limit_conn addr 1; }
    location /a { limit_conn addr 1; }
    location /b { limit_conn other 1; }
    location /two { limit_conn addr 2; }
    location /dry { limit_conn addr 1; limit_conn_dry_run on; }
    location /custom { limit_conn addr 1; limit_conn_status 429; limit_conn_log_level warn; }
}`
	big := strings.Repeat("x", 64<<20)
	run := func(kind string) ([]string, []string) {
		s := startServer(t, kind, ServerOptions{HTTP: body, Files: map[string]string{"big": big, "a": "a", "b": "b", "two": "2", "dry": "d", "custom": "c"}})
		var got []string
		st, held := heldRequest(t, s.Addr, "/big")
		got = append(got, "held "+st)
		time.Sleep(100 * time.Millisecond)
		for _, p := range []string{"/a", "/b", "/two", "/dry", "/custom"} {
			got = append(got, limitStatus(t, s.Addr, p))
		}
		held.Close()
		time.Sleep(300 * time.Millisecond)
		got = append(got, limitStatus(t, s.Addr, "/a"))
		return got, limitLog(s)
	}
	ngStatus, ngLog := run("nginx")
	ourStatus, ourLog := run("ngxsockify")
	if d := cmp.Diff(ngStatus, ourStatus); d != "" {
		t.Errorf("statuses (-nginx +ngxsockify):\n%s", d)
	}
	if d := cmp.Diff(ngLog, ourLog); d != "" {
		t.Errorf("error-log lines (-nginx +ngxsockify):\n%s", d)
	}
}

// TestLimitConnClientCloseLikeNginx: a client closes a proxied request
// that holds its limit_conn count and at once sends another: nginx sees
// the close first (one event loop), so the new request passes; ngxsockify
// must too, though the close and the new request reach different
// goroutines (nginx-tests limit_conn.t "passed", flaky under load before),
// also when the close comes while proxy_pass does not watch the client yet.
func TestLimitConnClientCloseLikeNginx(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	arrived := make(chan struct{}, 1)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select { // held until the proxy gives up the request
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	body := `
limit_conn_zone $binary_remote_addr zone=addr:1m;
server {
    listen 127.0.0.1:{{PORT}};
    root {{DIR}};
    location /p { limit_conn addr 1; proxy_pass http://` + ln.Addr().String() + `; }
    location /a { limit_conn addr 1; }
}`
	run := func(kind string) []string {
		s := startServer(t, kind, ServerOptions{HTTP: body, Files: map[string]string{"a": "a"}})
		var got []string
		for i := range 20 {
			c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "GET /p HTTP/1.1\r\nHost: localhost\r\n\r\n")
			select {
			case <-arrived:
			case <-time.After(5 * time.Second):
				t.Fatal("the proxied request did not reach the backend (refused: the count of the one before still held?)")
			}
			if i%2 == 0 {
				time.Sleep(20 * time.Millisecond) // the request waits on the backend
			} // else: closed within proxy_pass's first millisecond, before it watches the client
			c.Close()
			got = append(got, limitStatus(t, s.Addr, "/a"))
		}
		return got
	}
	ngStatus := run("nginx")
	if d := cmp.Diff(ngStatus, run("ngxsockify")); d != "" {
		t.Errorf("statuses (-nginx +ngxsockify):\n%s", d)
	}
}

// TestLimitReqDelayLikeNginx is limit_req_delay.t's sequence against both
// servers: with rate=30r/m delay=1 burst=2 the second request passes at
// once, the third waits (about 2 s), and a fourth meanwhile is refused.
// Statuses and error-log lines are compared, and that the delayed request
// did wait; no exact timings.
func TestLimitReqDelayLikeNginx(t *testing.T) {
	body := `
limit_req_zone $binary_remote_addr zone=one:1m rate=30r/m;
server {
    listen 127.0.0.1:{{PORT}};
    root {{DIR}};
    add_header X-Status $limit_req_status always;
    location / { limit_req zone=one delay=1 burst=2; }
}`
	run := func(kind string) ([]string, []string) {
		s := startServer(t, kind, ServerOptions{HTTP: body, Files: map[string]string{"t": "t"}})
		got := []string{limitStatus(t, s.Addr, "/t"), limitStatus(t, s.Addr, "/t")}
		start := time.Now()
		delayed := make(chan string, 1)
		go func() {
			r, err := rawRequest(s.Addr, "GET /t HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 10*time.Second)
			if err != nil {
				delayed <- err.Error()
				return
			}
			delayed <- fmt.Sprintf("/t %d %s waited:%v", r.Status, r.Header.Get("X-Status"), time.Since(start) > time.Second)
		}()
		time.Sleep(300 * time.Millisecond)
		got = append(got, limitStatus(t, s.Addr, "/t"), <-delayed)
		return got, limitLog(s)
	}
	ngStatus, ngLog := run("nginx")
	ourStatus, ourLog := run("ngxsockify")
	if d := cmp.Diff(ngStatus, ourStatus); d != "" {
		t.Errorf("statuses (-nginx +ngxsockify):\n%s", d)
	}
	if d := cmp.Diff(ngLog, ourLog); d != "" {
		t.Errorf("error-log lines (-nginx +ngxsockify):\n%s", d)
	}
}

// TestLimitReqLogLinesLikeNginx compares the words of the refusal and
// delay lines, dry run included, and limit_req_log_level.
func TestLimitReqLogLinesLikeNginx(t *testing.T) {
	body := `
limit_req_zone $binary_remote_addr$uri zone=one:1m rate=1r/m;
server {
    listen 127.0.0.1:{{PORT}};
    root {{DIR}};
    location /r { limit_req zone=one; }
    location /d { limit_req zone=one burst=1; limit_req_dry_run on; }
    location /i { limit_req zone=one burst=1 nodelay; limit_req_log_level info; error_log {{DIR}}/error.log info; }
    location /w { limit_req zone=one; limit_req_log_level warn; }
}`
	run := func(kind string) []string {
		s := startServer(t, kind, ServerOptions{HTTP: body})
		for _, p := range []string{"/r", "/r", "/d", "/d", "/d", "/i", "/i", "/i", "/w", "/w"} {
			limitStatus(t, s.Addr, p)
		}
		return limitLog(s)
	}
	ng, ours := run("nginx"), run("ngxsockify")
	if d := cmp.Diff(ng, ours); d != "" {
		t.Errorf("error-log lines (-nginx +ngxsockify):\n%s", d)
	}
}

var excessValue = regexp.MustCompile(`excess: \d+\.\d{3}`)

// TestLimitReqZoneFullLikeNginx fills a 32k zone (8 pages) with keys and
// checks that the same states are evicted as in nginx: the oldest keys
// forget their excess once the zone has no room for a new one.
func TestLimitReqZoneFullLikeNginx(t *testing.T) {
	body := `
limit_req_zone $arg_k zone=small:32k rate=1r/m;
server {
    listen 127.0.0.1:{{PORT}};
    location / { limit_req zone=small; return 204; }
}`
	run := func(kind string) string {
		s := startServer(t, kind, ServerOptions{HTTP: body})
		var b strings.Builder
		probe := func(k int) {
			r, err := rawRequest(s.Addr, fmt.Sprintf("GET /?k=%d HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", k), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status == http.StatusNoContent {
				b.WriteByte('.')
			} else {
				b.WriteByte('x')
			}
		}
		for k := range 200 {
			probe(k)
		}
		b.WriteByte('|')
		for k := range 200 {
			probe(k)
		}
		return b.String()
	}
	ng, ours := run("nginx"), run("ngxsockify")
	if !strings.Contains(ng, "|.") {
		t.Errorf("nginx evicted nothing: the case no longer fills the zone: %s", ng)
	}
	if ng != ours {
		t.Errorf("passed (.) and refused (x) requests differ:\nnginx      %s\nngxsockify %s", ng, ours)
	}
}

// TestLimitConnTunnels checks that a websockify tunnel counts in
// limit_conn for its whole life (the per-client defence of a console
// gateway) and gives its count back when it ends.
func TestLimitConnTunnels(t *testing.T) {
	echo := echoTarget(t)
	s := startNgxsockify(t, `
limit_conn_zone $binary_remote_addr zone=perip:1m;
server {
    listen 127.0.0.1:{{PORT}};
    location /ws { limit_conn perip 2; websockify_pass `+echo+`; }
}`)
	dial := func() (*websocket.Conn, int) {
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		c, resp, err := d.Dial("ws://"+s.Addr+"/ws", nil)
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			return nil, resp.StatusCode
		}
		return c, http.StatusSwitchingProtocols
	}
	a, code := dial()
	if code != 101 {
		t.Fatalf("first tunnel: %d", code)
	}
	b, code := dial()
	if code != 101 {
		t.Fatalf("second tunnel: %d", code)
	}
	wsEcho(t, b, "still relaying")
	if _, code := dial(); code != http.StatusServiceUnavailable {
		t.Fatalf("third tunnel while two run: %d, want 503", code)
	}
	a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, code := dial()
		if code == 101 {
			wsEcho(t, c, "after release")
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a tunnel's count was not released when it ended (still %d)", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Close()
	if !strings.Contains(s.ErrorLog(), `limiting connections by zone "perip"`) {
		t.Errorf("no refusal line in the error log:\n%s", tail(s.ErrorLog(), 10))
	}
}

// TestLimitRateLikeNginx is limit_rate.t without proxy_pass: a 30000-byte
// file at 12k a second after 256 bytes takes two seconds or so on both
// servers, limit_rate 0 or a limit_rate_after past the size do not slow
// it, variables give the values (an empty one logs "invalid size"), and
// `set $limit_rate` wins over the directive. Durations are compared as
// fast (under 0.8 s) or slow (over 1.5 s), never exactly.
func TestLimitRateLikeNginx(t *testing.T) {
	body := `
log_format lr "$uri lr=$limit_rate";
server {
    listen 127.0.0.1:{{PORT}};
    root {{DIR}};
    limit_rate 12k;
    limit_rate_after 256;
    location /data { }
    location /off { limit_rate 0; alias {{DIR}}/data; }
    location /var { alias {{DIR}}/data; limit_rate $arg_l; limit_rate_after $arg_a; }
    location /set { alias {{DIR}}/data; set $limit_rate 1m; }
    location /lr {
        alias {{DIR}}/data;
        limit_rate 1m;
        add_header X-LR $limit_rate;
        access_log {{DIR}}/lr.log lr;
    }
}`
	run := func(kind string) ([]string, bool) {
		s := startServer(t, kind, ServerOptions{HTTP: body, Files: map[string]string{"data": strings.Repeat("X", 30000)}})
		var got []string
		for _, p := range []string{"/data", "/off", "/var?l=12k&a=256", "/var?l=12k&a=40k", "/var", "/set", "/lr"} {
			start := time.Now()
			r, err := rawRequest(s.Addr, "GET "+p+" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 10*time.Second)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			took := time.Since(start)
			speed := "mid"
			switch {
			case took < 800*time.Millisecond:
				speed = "fast"
			case took > 1500*time.Millisecond:
				speed = "slow"
			}
			got = append(got, fmt.Sprintf("%s %d %d %s X-LR:%s", p, r.Status, len(r.Body), speed, r.Header.Get("X-LR")))
		}
		// $limit_rate reads 0 in header filters, the rate in the log phase
		var logged []byte
		waitFor(t, func() bool { logged, _ = os.ReadFile(filepath.Join(s.Dir, "lr.log")); return len(logged) > 0 }, "the access-log line")
		got = append(got, strings.TrimSpace(string(logged)))
		return got, strings.Contains(s.ErrorLog(), `invalid size ""`)
	}
	ng, ngInvalid := run("nginx")
	if !strings.Contains(ng[0], "slow") || !strings.Contains(ng[1], "fast") {
		t.Fatalf("nginx no longer shows the limit: %v", ng)
	}
	ours, ourInvalid := run("ngxsockify")
	if d := cmp.Diff(ng, ours); d != "" {
		t.Errorf("(-nginx +ngxsockify):\n%s", d)
	}
	if ngInvalid != ourInvalid {
		t.Errorf(`"invalid size" logged: nginx %v, ngxsockify %v`, ngInvalid, ourInvalid)
	}
}

// TestLimitZonesAcrossReload reloads ngxsockify: a zone of the same name
// and size keeps its states, a new key for it is refused in nginx's words
// (the old configuration stays), and a new size starts the zone afresh.
// What nginx does was measured with its master process (the harness runs
// nginx single-process, where a reload is not dependable): 503 after the
// reload, then `limit_req "one" uses the "$remote_addr" key while
// previously it used the "$binary_remote_addr" key`.
func TestLimitZonesAcrossReload(t *testing.T) {
	conf := func(gen, key, size string) string {
		return `
limit_req_zone ` + key + ` zone=one:` + size + ` rate=1r/m;
server {
    listen 127.0.0.1:{{PORT}};
    root {{DIR}};
    location / { limit_req zone=one; add_header X-Gen ` + gen + ` always; }
}`
	}
	s := startServer(t, "ngxsockify", ServerOptions{HTTP: conf("a", "$binary_remote_addr", "1m"), Files: map[string]string{"index.html": "i"}})
	get := func() (gen string, status int) {
		r, err := rawRequest(s.Addr, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return r.Header.Get("X-Gen"), r.Status
	}
	reload := func(gen, key, size string) {
		t.Helper()
		main, err := os.ReadFile(s.Conf)
		if err != nil {
			t.Fatal(err)
		}
		i := strings.Index(string(main), "http {")
		text := string(main[:i]) + "http {\n" + expand(conf(gen, key, size), s.Dir, s.Ports) + "\n}\n"
		if err := os.WriteFile(s.Conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := s.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	if _, st := get(); st != 200 {
		t.Fatalf("first request: %d", st)
	}
	reload("b", "$binary_remote_addr", "1m")
	if st := firstOf(t, get, "b"); st != 503 {
		t.Errorf("first request after a reload with the same zone: %d, want 503 (the state is kept)", st)
	}
	reload("c", "$remote_addr", "1m")
	want := `limit_req "one" uses the "$remote_addr" key while previously it used the "$binary_remote_addr" key`
	waitFor(t, func() bool { return strings.Contains(s.ErrorLog(), want) }, "the key change to be refused")
	if g, _ := get(); g != "b" {
		t.Errorf("after the refused reload: generation %q, want b", g)
	}
	reload("d", "$binary_remote_addr", "2m")
	if st := firstOf(t, get, "d"); st != 200 {
		t.Errorf("first request to a resized zone: %d, want 200 (a new zone)", st)
	}
}

// firstOf polls get until the configuration generation gen answers and
// returns the status of that first answer.
func firstOf(t *testing.T, get func() (string, int), gen string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if g, st := get(); g == gen {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("generation %s did not load", gen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLimitConnZoneFullLikeNginx holds 400 requests with distinct keys in
// a 32k limit_conn zone (limit_rate 1 after 1k keeps each response
// going): the zone has room for as many keys as nginx's, the others are
// refused with limit_conn_status and nginx's "no memory" line.
func TestLimitConnZoneFullLikeNginx(t *testing.T) {
	body := `
limit_conn_zone $arg_k zone=small:32k;
server {
    listen 127.0.0.1:{{PORT}};
    root {{DIR}};
    location / { limit_conn small 1; limit_rate 1; limit_rate_after 1k; }
}`
	run := func(kind string) (string, bool) {
		s := startServer(t, kind, ServerOptions{HTTP: body, Files: map[string]string{"f": strings.Repeat("x", 10000)}})
		var b strings.Builder
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for k := range 400 {
			st, c := heldRequest(t, s.Addr, fmt.Sprintf("/f?k=%d", k))
			held = append(held, c)
			if st == "200" {
				b.WriteByte('.')
			} else {
				b.WriteString(" " + st + " ")
			}
		}
		return b.String(), strings.Contains(s.ErrorLog(), `no memory in limit_conn_zone "small"`)
	}
	ng, ngLogged := run("nginx")
	if !strings.Contains(ng, "503") {
		t.Fatalf("nginx refused nothing: the case no longer fills the zone")
	}
	ours, ourLogged := run("ngxsockify")
	if ng != ours {
		t.Errorf("held (.) and refused requests differ:\nnginx      %s\nngxsockify %s", ng, ours)
	}
	if ngLogged != ourLogged {
		t.Errorf(`"no memory" logged: nginx %v, ngxsockify %v`, ngLogged, ourLogged)
	}
}

// TestProxyLimitRate: proxy_limit_rate 20000 delivers a 40,000-byte
// proxied body in a second or more (nginx's allowance of rate bytes per
// started second), without it at once; $limit_rate still reads 0 (nginx-tests
// proxy_limit_rate.t).
func TestProxyLimitRate(t *testing.T) {
	o := ServerOptions{
		HTTP: `server { listen 127.0.0.1:{{PORT}}; root {{DIR}}/www;
			location /limited { proxy_pass http://127.0.0.1:{{PORT}}/data; proxy_limit_rate 20000; add_header X-LR $limit_rate; }
			location /unlimited { proxy_pass http://127.0.0.1:{{PORT}}/data; }
			location /data { } }`,
		Files: map[string]string{"www/data": strings.Repeat("X", 40000)},
	}
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, o)
		for _, tc := range []struct {
			path string
			slow bool
		}{{"/limited", true}, {"/unlimited", false}} {
			start := time.Now()
			resp, err := http.Get(s.URL(tc.path))
			if err != nil {
				t.Fatalf("%s %s: %v", kind, tc.path, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			took := time.Since(start)
			if len(b) != 40000 || (took >= time.Second) != tc.slow || resp.Header.Get("X-LR") != map[bool]string{true: "0"}[tc.slow] {
				t.Errorf("%s %s: %d bytes in %v, X-LR %q; want 40000, slow %v", kind, tc.path, len(b), took, resp.Header.Get("X-LR"), tc.slow)
			}
		}
	}
}
