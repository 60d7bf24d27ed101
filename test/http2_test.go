package test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Body serves HTTP/2 on a plain port ({{PORT}}, prior knowledge) and a
// TLS one ({{PORT2}}, ALPN), and HTTP/1.1 only on {{PORT3}} (ssl without
// http2). {{PORT4}} (plain, http2) ends a connection after two streams
// (keepalive_requests, which bounds HTTP/2 streams since nginx 1.19.7).
func h2Body(crt, key string) string {
	return `log_format h2 '$request|$server_protocol|$http_host|$host|$status|$body_bytes_sent|$scheme';
ssl_certificate ` + crt + `;
ssl_certificate_key ` + key + `;
access_log {{DIR}}/h2.log h2;
server {
    listen 127.0.0.1:{{PORT}} http2;
    listen 127.0.0.1:{{PORT2}} ssl http2;
    listen 127.0.0.1:{{PORT3}} ssl;
    server_name h2.test;
    absolute_redirect off;
    location / {
        add_header X-Vars "$server_protocol|$request|$http_host|$request_uri|$args|$http2|$scheme|$https";
        return 200 "hello $uri\n";
    }
    location /missing { return 404; }
    location /redirect { return 302 /target; }
    location /body {
        client_max_body_size 1m;
        client_body_timeout 1s;
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say(ngx.req.get_method(), " ", ngx.req.http_version(), " ", ngx.var.http_content_type, " ",
                #(ngx.req.get_body_data() or ""))
        }
    }
    location /big { client_max_body_size 10; return 200 "small\n"; }
    location /lua {
        content_by_lua_block {
            ngx.say(ngx.req.http_version(), " ", ngx.var.server_protocol, " ", ngx.var.http2)
            ngx.say(pcall(ngx.req.raw_header))
        }
    }
    location /close { return 444; }
    location /chunk1 { http2_chunk_size 1; return 200 "body"; }
}
server {
    listen 127.0.0.1:{{PORT4}} http2;
    keepalive_requests 2;
    location / { return 200 "conn $connection_requests\n"; }
}`
}

// h2Client returns an HTTP/2-only client: prior knowledge over plain TCP,
// or ALPN "h2" over TLS.
func h2Client(useTLS bool) *http.Client {
	tr := &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "h2.test"}}
	if !useTLS {
		tr.AllowHTTP = true
		tr.DialTLSContext = func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

type h2Request struct {
	method, path, body string
}

// h2Answer is what a client sees of one response, comparable between the
// two servers.
func h2Answer(s *Server, c *http.Client, scheme string, port int, rq h2Request) string {
	url := fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, port, rq.path)
	req, _ := http.NewRequest(rq.method, url, strings.NewReader(rq.body))
	if rq.body != "" {
		req.Header.Set("Content-Type", "text/x-test")
	}
	req.Host = "h2.test"
	resp, err := c.Do(req)
	if err != nil {
		// a reset stream (return 444): nginx's RST_STREAM says
		// PROTOCOL_ERROR, x/net/http2's INTERNAL_ERROR
		return "error: " + regexp.MustCompile(`stream error: stream ID \d+`).FindString(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var hs []string
	for k, v := range resp.Header {
		switch k {
		case "Date", "Server":
			continue
		}
		hs = append(hs, k+": "+strings.Join(v, ","))
	}
	sort.Strings(hs)
	return fmt.Sprintf("%s %d\n%s\n\n%s", resp.Proto, resp.StatusCode, strings.Join(hs, "\n"), b)
}

// TestHTTP2LikeNginx sends the same requests over HTTP/2 (prior knowledge
// and TLS with ALPN) to nginx and ngxsockify: status, headers, body, the
// variables a location sees and the access-log lines must agree.
func TestHTTP2LikeNginx(t *testing.T) {
	dir := t.TempDir()
	_, crt, key := writeCert(t, dir, "h2.test")
	body := h2Body(crt, key)
	a := startServer(t, "nginx", ServerOptions{HTTP: body})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: body})
	reqs := []h2Request{
		{"GET", "/a/b?x=1&y=%41", ""},
		{"HEAD", "/head", ""},
		{"GET", "/missing", ""},
		{"GET", "/redirect", ""},
		{"POST", "/body", "0123456789abcdef"},
		{"PUT", "/body", strings.Repeat("z", 70000)},
		{"POST", "/body", strings.Repeat("y", 9000)}, // past client_body_buffer_size (8k), within a quarter more
		{"POST", "/big", "more than ten bytes"},
		{"GET", "/close", ""},
		{"TRACE", "/", ""},
		{"GET", "/lua", ""},
	}
	for _, tls := range []bool{false, true} {
		scheme, idx := "http", 0
		if tls {
			scheme, idx = "https", 1
		}
		ca, cb := h2Client(tls), h2Client(tls)
		for _, rq := range reqs {
			want := h2Answer(a, ca, scheme, a.Ports[idx], rq)
			got := h2Answer(b, cb, scheme, b.Ports[idx], rq)
			if got != want {
				t.Errorf("%s %s %s:\n got %q\nwant %q (nginx)", scheme, rq.method, rq.path, got, want)
			}
		}
	}
	// keepalive_requests: the third stream goes on a new connection
	ca, cb := h2Client(false), h2Client(false)
	for i := 0; i < 3; i++ {
		want := h2Answer(a, ca, "http", a.Ports[3], h2Request{"GET", "/", ""})
		got := h2Answer(b, cb, "http", b.Ports[3], h2Request{"GET", "/", ""})
		if got != want {
			t.Errorf("max_requests, request %d:\n got %q\nwant %q (nginx)", i+1, got, want)
		}
	}
	n := 2 * len(reqs)
	read := func(s *Server) []string {
		var lines []string
		waitFor(t, func() bool {
			data, _ := os.ReadFile(filepath.Join(s.Dir, "h2.log"))
			lines = strings.Split(strings.TrimSpace(string(data)), "\n")
			return len(lines) >= n
		}, s.Kind+" h2.log")
		return lines[:n]
	}
	want, got := read(a), read(b)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("h2.log line %d:\n got %s\nwant %s (nginx)", i+1, got[i], want[i])
		}
	}
}

// TestHTTP2ALPN checks what ALPN agrees on, as with nginx: h2 where the
// listen says http2 and the client offers it, http/1.1 for a client that
// offers only that (WebSocket clients) and on an ssl port without http2;
// and an HTTP/1.1 request on the http2 ports gets HTTP/1.1.
func TestHTTP2ALPN(t *testing.T) {
	dir := t.TempDir()
	_, crt, key := writeCert(t, dir, "h2.test")
	body := h2Body(crt, key)
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: body})
		for _, c := range []struct {
			port  int
			offer []string
			want  string
		}{
			{s.Ports[1], []string{"h2", "http/1.1"}, "h2"},
			{s.Ports[1], []string{"http/1.1"}, "http/1.1"},
			{s.Ports[2], []string{"h2", "http/1.1"}, "http/1.1"},
		} {
			conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", c.port),
				&tls.Config{InsecureSkipVerify: true, ServerName: "h2.test", NextProtos: c.offer})
			if err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			if got := conn.ConnectionState().NegotiatedProtocol; got != c.want {
				t.Errorf("%s: port %d offering %v: ALPN agreed %q, want %q", kind, c.port, c.offer, got, c.want)
			}
			if c.want == "http/1.1" {
				io.WriteString(conn, "GET /h1 HTTP/1.1\r\nHost: h2.test\r\nConnection: close\r\n\r\n")
				b, _ := io.ReadAll(conn)
				if !strings.HasPrefix(string(b), "HTTP/1.1 200 OK\r\n") || !strings.Contains(string(b), "HTTP/1.1|GET /h1 HTTP/1.1") {
					t.Errorf("%s: HTTP/1.1 over ALPN http/1.1 on port %d: %q", kind, c.port, b)
				}
			}
			conn.Close()
		}
	}
}

// TestHTTP2PlainPortHTTP1 checks ngxsockify's one deliberate difference:
// on a plain http2 port it tells HTTP/2's preface from an HTTP/1.x request
// (as nginx 1.25.1 and later do; nginx 1.22 answers HTTP/1.x there with
// an HTTP/2 GOAWAY), without waiting for more bytes than a short request
// has.
func TestHTTP2PlainPortHTTP1(t *testing.T) {
	dir := t.TempDir()
	_, crt, key := writeCert(t, dir, "h2.test")
	s := startServer(t, "ngxsockify", ServerOptions{HTTP: h2Body(crt, key)})
	for _, raw := range []string{
		"GET / HTTP/1.0\r\n\r\n",
		"PUT /x HTTP/1.1\r\nHost: h2.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	} {
		r, err := rawRequest(s.Addr, raw, routingTimeout)
		if err != nil || r.Status != 200 {
			t.Errorf("%q: %v %+v", raw, err, r)
		}
	}
}

// h2DataFrames sends one GET for path over a raw HTTP/2 connection (prior
// knowledge) and returns the DATA frames of the answer as "length/flags",
// or the error.
func h2DataFrames(addr, path string) string {
	c, err := net.DialTimeout("tcp", addr, routingTimeout)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(routingTimeout))
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	var hb strings.Builder
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", path}, {":authority", "h2.test"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte(hb.String()), EndStream: true, EndHeaders: true})
	var out []string
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return strings.Join(out, " ") + " " + err.Error()
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
			if v, ok := f.Value(http2.SettingEnableConnectProtocol); ok && v == 1 {
				// WebSocket over HTTP/2 (RFC 8441): nginx 1.22 has none
				out = append(out, "ENABLE_CONNECT_PROTOCOL")
			}
		case *http2.DataFrame:
			end := 0
			if f.StreamEnded() {
				end = 1
			}
			out = append(out, fmt.Sprintf("%d/%d", len(f.Data()), end))
			if f.StreamEnded() {
				return strings.Join(out, " ")
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			return strings.Join(out, " ") + fmt.Sprintf(" %T", f)
		}
	}
}

// TestHTTP2ChunkSize compares the DATA frames of responses with nginx's:
// http2_chunk_size 1 sends a frame per byte, the last with END_STREAM.
// Neither offers WebSocket over HTTP/2 (SETTINGS_ENABLE_CONNECT_PROTOCOL):
// browsers keep opening WebSockets on HTTP/1.1.
func TestHTTP2ChunkSize(t *testing.T) {
	dir := t.TempDir()
	_, crt, key := writeCert(t, dir, "h2.test")
	a := startServer(t, "nginx", ServerOptions{HTTP: h2Body(crt, key)})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: h2Body(crt, key)})
	for _, path := range []string{"/chunk1", "/a"} {
		want, got := h2DataFrames(a.Addr, path), h2DataFrames(b.Addr, path)
		if got != want {
			t.Errorf("%s: DATA frames %q, nginx %q", path, got, want)
		}
	}
}

// TestHTTP2ReloadAndQuit: a reload sends GOAWAY (the connection carried
// the old configuration, as an old nginx worker's does) and lets the
// stream under way finish; the next request opens a new connection. On
// SIGQUIT the stream under way is answered in full, then the process exits.
func TestHTTP2ReloadAndQuit(t *testing.T) {
	big := strings.Repeat("0123456789", 6000)
	s := startServer(t, "ngxsockify", ServerOptions{HTTP: `
server {
    listen 127.0.0.1:{{PORT}} http2;
    location / { return 200 "conn $connection_requests\n"; }
    location /slow { limit_rate 30k; alias {{DIR}}/big; }
}`, Files: map[string]string{"big": big}})
	c := h2Client(false)
	get := func(path string) string {
		resp, err := c.Get(s.URL(path))
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err.Error()
		}
		return string(b)
	}
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGQUIT} {
		if got := get("/"); got != "conn 1\n" {
			t.Fatalf("before %v: %q", sig, got)
		}
		done := make(chan string, 1)
		go func() { done <- get("/slow") }()
		time.Sleep(500 * time.Millisecond)
		s.Signal(sig)
		if got := <-done; got != big {
			t.Errorf("%v during a stream: got %d bytes (%.40q), want %d", sig, len(got), got, len(big))
		}
	}
	waitFor(t, s.Exited, "the process to exit")
	s.Stop()
}

// TestHTTP2Curl asks with Debian's curl (built with nghttp2), as a user
// would check a server: over TLS with ALPN (--http2) and in clear with
// prior knowledge; the protocol curl reports, the status and the body must
// be nginx's.
func TestHTTP2Curl(t *testing.T) {
	curl := requireTool(t, "curl")
	dir := t.TempDir()
	_, crt, key := writeCert(t, dir, "h2.test")
	a := startServer(t, "nginx", ServerOptions{HTTP: h2Body(crt, key)})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: h2Body(crt, key)})
	ask := func(s *Server, args ...string) string {
		args = append([]string{"-sk", "-o", "-", "-w", " %{http_version} %{http_code}", "--resolve",
			fmt.Sprintf("h2.test:%d:127.0.0.1", s.Ports[1]), "--connect-to", fmt.Sprintf("h2.test:%d:127.0.0.1:%d", 80, s.Port)}, args...)
		out, err := exec.Command(curl, args...).Output()
		if err != nil {
			return fmt.Sprintf("curl: %v %s", err, out)
		}
		return string(out)
	}
	for _, args := range [][]string{
		{"--http2-prior-knowledge", "http://h2.test/x?y"},
		{"--http2", "https://h2.test:PORT2/x"},
		{"--http1.1", "https://h2.test:PORT2/x"},
		{"--http2", "-X", "POST", "--data-binary", "abc", "https://h2.test:PORT2/body"},
	} {
		var res [2]string
		for i, s := range []*Server{a, b} {
			as := append([]string(nil), args...)
			as[len(as)-1] = strings.Replace(as[len(as)-1], "PORT2", fmt.Sprint(s.Ports[1]), 1)
			res[i] = ask(s, as...)
		}
		t.Logf("curl %v: %q", args, res[0])
		if res[1] != res[0] {
			t.Errorf("curl %v:\n got %q\nwant %q (nginx)", args, res[1], res[0])
		}
	}
}

// TestHTTP2BodyTimeout: a stream whose body stalls ends after
// client_body_timeout on both servers (nginx resets it; ngxsockify's
// handler sees the read fail), instead of holding its request.
func TestHTTP2BodyTimeout(t *testing.T) {
	dir := t.TempDir()
	_, crt, key := writeCert(t, dir, "h2.test")
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: h2Body(crt, key)})
		c, err := net.DialTimeout("tcp", s.Addr, routingTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(routingTimeout))
		io.WriteString(c, http2.ClientPreface)
		fr := http2.NewFramer(c, c)
		fr.WriteSettings()
		var hb strings.Builder
		enc := hpack.NewEncoder(&hb)
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/body"}, {":authority", "h2.test"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte(hb.String()), EndHeaders: true})
		fr.WriteData(1, false, []byte("abc"))
		begin := time.Now()
		ended := ""
		for ended == "" {
			f, err := fr.ReadFrame()
			switch f := f.(type) {
			case nil:
				ended = "connection: " + err.Error()
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.RSTStreamFrame, *http2.GoAwayFrame:
				ended = fmt.Sprintf("%T", f)
			case *http2.HeadersFrame:
				ended = "HEADERS"
			}
		}
		if d := time.Since(begin); d < 800*time.Millisecond || d > 5*time.Second {
			t.Errorf("%s: the stalled stream ended after %v (%s), want about client_body_timeout (1s)", kind, d, ended)
		}
		t.Logf("%s: %s after %v", kind, ended, time.Since(begin))
	}
}

// TestHTTP2OnDirective: nginx 1.25's `http2 on;` in a server (unknown to
// nginx 1.22, accepted by ngxsockify) makes its addresses speak HTTP/2 as
// `listen ... http2` does; `http2 off;` leaves HTTP/1.x only.
func TestHTTP2OnDirective(t *testing.T) {
	s := startServer(t, "ngxsockify", ServerOptions{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    http2 on;
    location / { return 200 "$server_protocol"; }
}
server {
    listen 127.0.0.1:{{PORT2}};
    http2 off;
    location / { return 200 "$server_protocol"; }
}`})
	if got := h2Answer(s, h2Client(false), "http", s.Port, h2Request{"GET", "/", ""}); !strings.HasSuffix(got, "\n\nHTTP/2.0") {
		t.Errorf("http2 on: %q", got)
	}
	got := h2DataFrames(fmt.Sprintf("127.0.0.1:%d", s.Ports[1]), "/")
	t.Logf("http2 off, preface: %q", got)
	if !strings.Contains(got, "EOF") && !strings.Contains(got, "frame") {
		t.Errorf("http2 off: an HTTP/2 preface got %q", got)
	}
	if r, err := rawRequest(fmt.Sprintf("127.0.0.1:%d", s.Ports[1]), "GET / HTTP/1.0\r\n\r\n", routingTimeout); err != nil || r.Body != "HTTP/1.0" {
		t.Errorf("http2 off, HTTP/1.0: %v %+v", err, r)
	}
}

// TestHTTP2Concurrent runs many streams at once on one connection (run it
// with NGX_TEST_BUILDFLAGS=-race): each gets its own answer, and the access
// log has one line per stream.
func TestHTTP2Concurrent(t *testing.T) {
	s := startServer(t, "ngxsockify", ServerOptions{HTTP: `
log_format n '$request_uri $status $body_bytes_sent';
server {
    listen 127.0.0.1:{{PORT}} http2;
    access_log {{DIR}}/n.log n;
    location / { return 200 "$uri $arg_i\n"; }
    location /file { alias {{DIR}}/big; }
}`, Files: map[string]string{"big": strings.Repeat("y", 200000)}})
	c := h2Client(false)
	const n = 60
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		go func() {
			path, want := fmt.Sprintf("/s%d?i=%d", i, i), fmt.Sprintf("/s%d %d\n", i, i)
			if i%3 == 0 {
				path, want = "/file", strings.Repeat("y", 200000)
			}
			resp, err := c.Get(s.URL(path))
			if err != nil {
				errs <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 || string(b) != want {
				errs <- fmt.Sprintf("%s: %s %d bytes", path, resp.Proto, len(b))
				return
			}
			errs <- ""
		}()
	}
	for i := 0; i < n; i++ {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
	waitFor(t, func() bool {
		data, _ := os.ReadFile(filepath.Join(s.Dir, "n.log"))
		return strings.Count(string(data), "\n") == n
	}, "one access-log line per stream")
}

// TestHTTP2IdleBeforePreface: a connection to a plain http2 port that sends
// nothing is closed after client_header_timeout, once (not once to look for
// the preface and again for an HTTP/1.x request), as nginx closes it.
func TestHTTP2IdleBeforePreface(t *testing.T) {
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: `
server {
    listen 127.0.0.1:{{PORT}} http2;
    client_header_timeout 1s;
    location / { return 200; }
}`})
		c, err := net.DialTimeout("tcp", s.Addr, routingTimeout)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(routingTimeout))
		begin := time.Now()
		io.Copy(io.Discard, c)
		c.Close()
		if d := time.Since(begin); d < 800*time.Millisecond || d > 1900*time.Millisecond {
			t.Errorf("%s: an idle connection closed after %v, want about client_header_timeout (1s)", kind, d)
		}
	}
}

// TestHTTP2BodyFile: nginx keeps an HTTP/2 request body in memory up to
// client_body_buffer_size and writes a longer one to a file, without the
// quarter more an HTTP/1.x body of declared length gets (nginx-tests
// h2_auth_request.t: 600 bytes past a 512-byte buffer).
func TestHTTP2BodyFile(t *testing.T) {
	body := `map $request_body_file $in_file { "" no; default yes; }
server {
    listen 127.0.0.1:{{PORT}} http2;
    listen 127.0.0.1:{{PORT2}};
    location /file {
        client_body_buffer_size 512;
        add_header X-In-File $in_file;
        proxy_pass http://127.0.0.1:{{PORT2}}/ok;
    }
    location /ok { return 200 "ok\n"; }
}`
	a := startServer(t, "nginx", ServerOptions{HTTP: body})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: body})
	ca, cb := h2Client(false), h2Client(false)
	for _, n := range []int{1, 511, 512, 513, 600, 640, 700, 5000} {
		rq := h2Request{"POST", "/file", strings.Repeat("A", n)}
		want := h2Answer(a, ca, "http", a.Ports[0], rq)
		got := h2Answer(b, cb, "http", b.Ports[0], rq)
		if got != want {
			t.Errorf("body of %d bytes:\n got %q\nwant %q (nginx)", n, got, want)
		}
	}
}

// TestHTTP2UndeclaredBody: an HTTP/2 body sent without content-length,
// once read whole, gets the length read as its Content-Length (what
// $http_content_length says and what proxy_pass declares to the backend),
// and under client_body_in_file_only an empty one (an empty DATA frame)
// still makes a file; a stream without DATA frames gets neither
// (nginx-tests h2_request_body.t).
func TestHTTP2UndeclaredBody(t *testing.T) {
	body := `map $request_body_file $in_file { "" no; default yes; }
server {
    listen 127.0.0.1:{{PORT}} http2;
    listen 127.0.0.1:{{PORT2}};
    location /p/ {
        add_header X-Len "[$http_content_length]";
        add_header X-In-File $in_file;
        proxy_pass http://127.0.0.1:{{PORT2}}/b/;
    }
    location /f/ {
        client_body_in_file_only on;
        add_header X-Len "[$http_content_length]";
        add_header X-In-File $in_file;
        proxy_pass http://127.0.0.1:{{PORT2}}/b/;
    }
    location /b/ { return 200 "backend [$http_content_length] [$http_transfer_encoding]\n"; }
}`
	a := startServer(t, "nginx", ServerOptions{HTTP: body})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: body})
	ask := func(s *Server, c *http.Client, path, data string, open bool) string {
		var rd io.Reader
		if open {
			rd = io.MultiReader(strings.NewReader(data)) // no length known: no content-length sent
		}
		req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d%s", s.Ports[0], path), rd)
		req.ContentLength = 0
		resp, err := c.Do(req)
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d len=%s file=%s %s", resp.StatusCode, resp.Header.Get("X-Len"), resp.Header.Get("X-In-File"), out)
	}
	ca, cb := h2Client(false), h2Client(false)
	for _, path := range []string{"/p/", "/f/"} {
		for _, c := range []struct {
			data string
			open bool
		}{{"", false}, {"", true}, {"TESTMOREDATA", true}, {strings.Repeat("x", 20000), true}} {
			want := ask(a, ca, path, c.data, c.open)
			got := ask(b, cb, path, c.data, c.open)
			if got != want {
				t.Errorf("%s body %d bytes (open %v):\n got %q\nwant %q (nginx)", path, len(c.data), c.open, got, want)
			}
		}
	}
}

// TestHTTP2Trailers: add_trailer on HTTP/2 sends the trailers after the
// body (in a HEADERS frame ending the stream), with the Content-Length
// kept and whatever chunked_transfer_encoding says, as nginx does; none on
// a 204 or a HEAD (nginx-tests h2_trailers.t).
func TestHTTP2Trailers(t *testing.T) {
	body := `server {
    listen 127.0.0.1:{{PORT}} http2;
    root {{DIR}}/www;
    location / { add_trailer X-Var "$host $status"; add_trailer X-Two two; }
    location /nc { chunked_transfer_encoding off; add_trailer X-Var $host; return 200 hi; }
    location /none { return 204; add_trailer X-Var $host; }
    location /err { add_trailer X-Var $host; add_trailer X-Always a always; return 404; }
}`
	files := map[string]string{"www/index.html": "SEE-THIS", "www/empty": ""}
	a := startServer(t, "nginx", ServerOptions{HTTP: body, Files: files})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: body, Files: files})
	ask := func(s *Server, c *http.Client, method, path string) string {
		req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", s.Ports[0], path), nil)
		req.Host = "h2.test"
		resp, err := c.Do(req)
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		var ts []string
		for k, v := range resp.Trailer {
			ts = append(ts, k+"="+strings.Join(v, ","))
		}
		sort.Strings(ts)
		return fmt.Sprintf("%d length=%q body=%q trailers=%v", resp.StatusCode, resp.Header.Get("Content-Length"), out, ts)
	}
	ca, cb := h2Client(false), h2Client(false)
	for _, rq := range [][2]string{{"GET", "/"}, {"GET", "/empty"}, {"HEAD", "/"}, {"GET", "/nc"},
		{"GET", "/none"}, {"GET", "/err"}, {"GET", "/missing"}} {
		want := ask(a, ca, rq[0], rq[1])
		got := ask(b, cb, rq[0], rq[1])
		if got != want {
			t.Errorf("%s %s:\n got %s\nwant %s (nginx)", rq[0], rq[1], got, want)
		}
	}
}

// TestHTTP2RequestLength: $request_length of an HTTP/2 request is its
// header block's size as the client coded it (HPACK: a repeated request on
// the same connection is shorter, and the dynamic table size update Go's
// client opens its second block with is not counted), as nginx counts it
// (nginx-tests h2_variables.t).
func TestHTTP2RequestLength(t *testing.T) {
	body := `server {
    listen 127.0.0.1:{{PORT}} http2;
    location / { return 200 "$request_length\n"; }
}`
	a := startServer(t, "nginx", ServerOptions{HTTP: body})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: body})
	ca, cb := h2Client(false), h2Client(false)
	for _, rq := range []h2Request{{"GET", "/rl", ""}, {"GET", "/rl", ""}, {"GET", "/rl?aaaaaaaaaaaaaaaaaaaaaaaaa", ""},
		{"HEAD", "/x/y", ""}, {"GET", "/rl", ""}} {
		want := h2Answer(a, ca, "http", a.Ports[0], rq)
		got := h2Answer(b, cb, "http", b.Ports[0], rq)
		if got != want {
			t.Errorf("%s %s:\n got %q\nwant %q (nginx)", rq.method, rq.path, got, want)
		}
	}
}

// h2StalledStatuses opens a connection whose streams' window is 1 byte
// (SETTINGS_INITIAL_WINDOW_SIZE), so that a response stays unsent, asks
// path on stream 1, then on stream 3, and returns the statuses of both.
func h2StalledStatuses(addr, path string) string {
	c, err := net.DialTimeout("tcp", addr, routingTimeout)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(routingTimeout))
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
	dec := hpack.NewDecoder(4096, nil)
	var out []string
	for _, sid := range []uint32{1, 3} {
		var hb strings.Builder
		enc := hpack.NewEncoder(&hb)
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", path}, {":authority", "h2.test"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: sid, BlockFragment: []byte(hb.String()), EndStream: true, EndHeaders: true})
		status := ""
		for status == "" {
			f, err := fr.ReadFrame()
			if err != nil {
				return strings.Join(out, " ") + " " + err.Error()
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.HeadersFrame:
				fields, _ := dec.DecodeFull(f.HeaderBlockFragment())
				for _, hf := range fields {
					if hf.Name == ":status" && f.StreamID == sid {
						status = hf.Value
					}
				}
			case *http2.RSTStreamFrame, *http2.GoAwayFrame:
				return strings.Join(out, " ") + fmt.Sprintf(" %T", f)
			}
		}
		out = append(out, fmt.Sprintf("%d:%s", sid, status))
		if sid == 1 {
			time.Sleep(200 * time.Millisecond) // stream 1's handler is done, its body is not sent
		}
	}
	return strings.Join(out, " ")
}

// TestHTTP2LimitConnStalled: an HTTP/2 request holds its limit_conn count
// until its response is sent, not only until it is handled: a stream the
// client's flow control holds back still counts when its body is a file or
// a backend's, not return's text, which nginx queues whole (nginx-tests
// h2_limit_conn.t).
func TestHTTP2LimitConnStalled(t *testing.T) {
	body := `limit_conn_zone $binary_remote_addr zone=conn:1m;
server {
    listen 127.0.0.1:{{PORT}} http2;
    root {{DIR}}/www;
    listen 127.0.0.1:{{PORT2}};
    location /t { limit_conn conn 1; }
    location /r { limit_conn conn 1; return 200 "SEE-THIS"; }
    location /p { limit_conn conn 1; proxy_pass http://127.0.0.1:{{PORT2}}/u.html; }
}`
	files := map[string]string{"www/t.html": "SEE-THIS", "www/u.html": "SEE-THIS"}
	a := startServer(t, "nginx", ServerOptions{HTTP: body, Files: files})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: body, Files: files})
	for _, path := range []string{"/t.html", "/u.html", "/r", "/p"} {
		want := h2StalledStatuses(a.Addr, path)
		got := h2StalledStatuses(b.Addr, path)
		if got != want {
			t.Errorf("%s: got %s, want %s (nginx)", path, got, want)
		}
	}
}
