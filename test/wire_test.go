package test

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The connection layer (proxy/http1) against nginx: raw bytes to both
// servers, and the replies compared whole (status lines, header names in
// order and case, bodies, and whether the connection closes), with the
// values that differ by nature (Server, Date, file times) masked.

const wireConf = `
log_format sizes "$request_uri $status $bytes_sent $body_bytes_sent $request_length";
access_log {{DIR}}/access.log;
access_log {{DIR}}/sizes.log sizes;
server {
    listen 127.0.0.1:{{PORT}};
    server_name localhost;
    keepalive_timeout 75 60;
    keepalive_requests 3;
    location / { root {{DIR}}/html; }
    location /r { return 200 "x"; }
    location /c { add_header X-B b; add_header x-a a; add_header ETag foo; expires 1h; return 200 "c"; }
    location /s203 { return 203; }
    location /s299 { return 299; }
    location /s306 { return 306; }
    location /s418 { return 418; }
    location /s503 { return 503; }
    location /s599 { return 599; }
    location /s429 { return 429; }
    location /s500 { return 500; }
    location /s408 { return 408; }
    location /nka { keepalive_timeout 0; return 200 "k"; }
    location /ka5 { keepalive_timeout 75 5; return 200 "k"; }
    location /raw { content_by_lua_block { ngx.print(ngx.req.raw_header()) } }
    location /h09 { content_by_lua_block { ngx.req.set_header("X-Foo", "howdy") ngx.say(ngx.req.http_version(), " ", ngx.req.get_headers()["X-Foo"]) } }
    location /vars { return 200 "$request_length"; }
    location /req { return 200 "$request|$request_uri|$server_protocol"; }
    location /tr { add_trailer X-A $uri; add_trailer X-Empty ""; add_trailer x-always b always; add_trailer X-S "$sent_trailer_x_a|$sent_http_content_length"; return 200 "tr"; }
    location /tr404 { add_trailer X-A a; add_trailer X-Always b always; return 404; }
    location /trnc { chunked_transfer_encoding off; add_trailer X-Always b always; return 200 "nc"; }
    location /nochunk { chunked_transfer_encoding off; content_by_lua_block { ngx.print("x") } }
    # header order: nginx's list order for what modules set (Lua in the
    # order set, headers-more's and proxy_pass_header's Server, Date...)
    location /o/lua {
        add_header X-Add a;
        content_by_lua_block {
            ngx.header["X-Z"] = "z"
            ngx.header["X-A"] = "a"
            ngx.header["X-M"] = {"1", "2"}
            ngx.header["X-Z"] = "z2"
            ngx.header["X-A"] = nil
            ngx.header["Cache-Control"] = "no-store"
            ngx.header["X-A"] = "a2"
            ngx.header["X-E"] = ""
            ngx.header["Server"] = "lua"
            ngx.header["Content-Length"] = 2
            ngx.header["X-Last"] = "l"
            ngx.print("ok")
        }
    }
    location /o/hf {
        add_header X-Add a; expires 1h; charset utf-8; more_set_headers "X-More: m";
        header_filter_by_lua_block {
            ngx.header["X-CT"] = ngx.header.content_type
            ngx.header["X-Seen"] = ngx.header["X-Add"] or "none"
            ngx.header["Cache-Control"] = "cc"
            ngx.header["X-L"] = "l"
        }
        content_by_lua_block { ngx.header["X-C"] = "c"; ngx.header.content_type = "text/plain"; ngx.say("hf") }
    }
    location /o/more {
        add_header X-Add a; port_in_redirect off;
        more_set_headers "X-M1: 1" "Server: more" "Date: d" "Content-Length: 2" "Last-Modified: lm" "Location: /o/rel" "X-M2: 2";
        return 200 "mo";
    }
    location /o/more2 { more_set_headers "X-M1: 1" "Location: http://abs/x" "X-M2: 2"; return 200 "mo"; }
    location /o/ret { add_header X-A a always; return 302 http://abs/r; }
    location /o/retrel { absolute_redirect off; add_header X-A a always; return 301 /o/x; }
    location /o/redir { content_by_lua_block { ngx.header["X-A"] = "a"; ngx.redirect("http://abs/q") } }
    location /o/backend {
        add_header X-B1 b1; add_header Cache-Control private; add_header Last-Modified "Thu, 01 Jan 1970 00:00:01 GMT"; add_header X-B2 b2;
        more_set_headers "Server: backend";
        return 200 "be";
    }
    location /o/pp {
        proxy_pass_header Server; proxy_pass_header Date; expires 1h; add_header X-Add a;
        proxy_pass http://127.0.0.1:{{PORT}}/o/backend;
    }
    location /o/ploc { proxy_pass http://127.0.0.1:{{PORT}}/o/ret; }
    location /o/vary { add_header X-B1 b1; add_header vary Cookie; add_header X-B2 b2; return 200 "a body long enough to compress"; }
    location /o/gz {
        gzip on; gzip_vary on; gzip_min_length 1; gzip_types text/plain text/html; add_header X-B b;
        proxy_pass http://127.0.0.1:{{PORT}}/o/vary;
    }
    location /o/st/ {
        root {{DIR}}/html; add_header X-B b; add_header ETag foo; expires 1h; more_set_headers "X-M: m";
        access_by_lua_block { ngx.header["X-A"] = "a" }
    }
    location /o/auth {
        rewrite_by_lua_block { ngx.header["X-R"] = "r" }
        auth_basic "x"; auth_basic_user_file {{DIR}}/htpasswd; add_header X-Add a always;
    }
}
server {
    listen 127.0.0.1:{{PORT2}};
    server_name slow;
    client_header_timeout 1s;
    keepalive_timeout 1s;
    large_client_header_buffers 2 1k;
    location / { root {{DIR}}/html; send_timeout 1s; }
    location /r { return 200 "x"; }
    location /body { client_body_timeout 1s; content_by_lua_block { ngx.req.read_body() ngx.say("read") } }
}
`

var wireFiles = map[string]string{"html/index.html": "hello\n", "html/o/st/f.txt": "file\n", "htpasswd": "u:{PLAIN}p\n"}

// wireCases are requests sent as they are, one connection each.
var wireCases = []struct{ name, raw string }{
	{"static", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"request line", "GET /req?a=1 HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"request line spaces", "GET  /req   HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"request line absolute", "GET http://localhost/req?b HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"request line 1.0", "GET /req HTTP/1.0\r\n\r\n"},
	{"request line minor 01", "GET /req HTTP/1.01\r\nHost: a\r\n\r\n"},
	{"request line LF", "GET /req HTTP/1.1\nHost: a\n\n"},
	{"request line 0.9", "GET /req\r\n"},
	{"head", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"leading CRLF", "\r\n\r\nGET /r HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"header order", "GET /c HTTP/1.0\r\n\r\n"},
	{"folded header", "GET /r HTTP/1.1\r\nHost: a\r\n x: folded\r\n\r\n"},
	{"CL and TE", "GET /r HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	{"two CL", "GET /r HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"},
	{"bad CL", "GET /r HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"},
	{"empty host", "GET /r HTTP/1.1\r\nHost:\r\n\r\n"},
	{"two hosts", "GET /r HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
	{"bad host", "GET /r HTTP/1.1\r\nHost: a..b\r\n\r\n"},
	{"host slash", "GET /r HTTP/1.1\r\nHost: a/b\r\n\r\n"},
	{"no host 1.1", "GET /r HTTP/1.1\r\n\r\n"},
	{"trace", "TRACE /r HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"lowercase method", "get /r HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"HTTP/2.0", "GET /r HTTP/2.0\r\nHost: a\r\n\r\n"},
	{"HTTP/1.9", "GET /r HTTP/1.9\r\nHost: a\r\n\r\n"},
	{"HTTP/0.9 version", "GET /r HTTP/0.9\r\nHost: a\r\n\r\n"},
	{"HTTP/01.1", "GET /r HTTP/01.1\r\nHost: a\r\n\r\n"},
	{"HTTP/0.9", "GET /r\r\n"},
	{"HTTP/0.9 Lua headers", "GET /h09\r\n"}, // set_header does nothing, http_version is 0.9
	{"HTTP/1.0", "GET /r HTTP/1.0\r\n\r\n"},
	{"HTTP/1.0 keep-alive", "GET /r HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"},
	{"absolute URI", "GET http://b:8/r?x HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"bare LF", "GET /r HTTP/1.1\nHost: a\n\n"},
	{"space in URI", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"control in URI", "GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"bare CR", "GET /r HTTP/1.1\rHost: a\r\n\r\n"},
	{"underscore header", "GET /r HTTP/1.1\r\nHost: a\r\nX_y: 1\r\n\r\n"},
	{"space in header name", "GET /r HTTP/1.1\r\nHost: a\r\nX y: 1\r\n\r\n"},
	{"NUL in value", "GET /r HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n"},
	{"empty header name", "GET /r HTTP/1.1\r\nHost: a\r\n: y\r\n\r\n"},
	{"header without colon", "GET /r HTTP/1.1\r\nHost: a\r\nFoo\r\n\r\n"},
	{"bad chunk size", "POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
	{"huge chunk size", "POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nx\r\n0\r\n\r\n"},
	{"TE gzip", "POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"},
	{"TE on 1.0", "GET /r HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	{"unknown statuses", "GET /s203 HTTP/1.1\r\nHost: a\r\n\r\nGET /s299 HTTP/1.1\r\nHost: a\r\n\r\nGET /s306 HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"more statuses", "GET /s418 HTTP/1.1\r\nHost: a\r\n\r\nGET /s503 HTTP/1.1\r\nHost: a\r\n\r\nGET /s599 HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"429", "GET /s429 HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"500 closes", "GET /s500 HTTP/1.1\r\nHost: a\r\n\r\nGET /r HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"408 return", "GET /s408 HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"keepalive_requests", strings.Repeat("GET /r HTTP/1.1\r\nHost: a\r\n\r\n", 4)},
	{"keepalive_timeout 0", "GET /nka HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"Keep-Alive header", "GET /ka5 HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"Connection close", "GET /r HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
	{"pipelined after body", "POST /r HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /r HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"chunked body discarded", "POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\nGET /r HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"request_length", "GET /vars?a=b HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n"},
	{"add_trailer", "GET /tr HTTP/1.1\r\nHost: a\r\n\r\nGET /tr404 HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"add_trailer HEAD and 1.0", "HEAD /tr HTTP/1.1\r\nHost: a\r\n\r\nGET /tr HTTP/1.0\r\n\r\n"},
	{"chunked_transfer_encoding off", "GET /trnc HTTP/1.1\r\nHost: a\r\n\r\nGET /nochunk HTTP/1.1\r\nHost: a\r\n\r\n"},
	{"100-continue", "POST /r HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"},
	{"order Lua", "GET /o/lua HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
	{"order header_filter_by_lua", "GET /o/hf HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
	{"order more_set_headers", "GET /o/more HTTP/1.1\r\nHost: a\r\n\r\nGET /o/more2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
	{"order Location", "GET /o/ret HTTP/1.1\r\nHost: a\r\n\r\nGET /o/retrel HTTP/1.1\r\nHost: a\r\n\r\nGET /o/redir HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
	{"order static and auth_basic", "GET /o/st/f.txt HTTP/1.1\r\nHost: a\r\n\r\nGET /o/auth HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
	{"order gzip_vary", "HEAD /o/gz HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"},
	{"order proxy_pass", "GET /o/pp HTTP/1.1\r\nHost: a\r\n\r\nGET /o/ploc HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
}

var wireMask = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(?m)^(Server|Date|Last-Modified|Expires): [^\r]*`), "$1: *"},
	{regexp.MustCompile(`(?m)^ETag: "[^"]*"`), `ETag: "*"`},
}

// wireExchange sends raw on a new connection and reads until the server
// closes (the transcript ends with "[closed]") or stays silent for quiet.
func wireExchange(t *testing.T, addr, raw string, quiet time.Duration) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return readTranscript(c, quiet)
}

// readTranscript reads c until the server closes (the transcript ends with
// "[closed]") or stays silent for quiet ("[open]").
func readTranscript(c net.Conn, quiet time.Duration) string {
	var out []byte
	buf := make([]byte, 65536)
	for {
		c.SetReadDeadline(time.Now().Add(quiet))
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return string(out) + "[open]"
			}
			return string(out) + "[closed]"
		}
	}
}

func maskWire(s string) string {
	for _, m := range wireMask {
		s = m.re.ReplaceAllString(s, m.with)
	}
	return s
}

func startWirePair(t *testing.T) (ngx, ours *Server) {
	t.Helper()
	o := ServerOptions{HTTP: wireConf, Files: wireFiles}
	return startServer(t, "nginx", o), startServer(t, "ngxsockify", o)
}

func TestWireOracle(t *testing.T) {
	ngx, ours := startWirePair(t)
	for _, tc := range wireCases {
		t.Run(tc.name, func(t *testing.T) {
			want := maskWire(wireExchange(t, ngx.Addr, tc.raw, 300*time.Millisecond))
			got := maskWire(wireExchange(t, ours.Addr, tc.raw, 300*time.Millisecond))
			if got != want {
				t.Errorf("request %q\n--- nginx\n%s\n--- ngxsockify\n%s", tc.raw, want, got)
			}
		})
	}
}

// TestWireRawHeader: ngx.req.raw_header gives the head as received (order,
// case, spacing, bare LF).
func TestWireRawHeader(t *testing.T) {
	ngx, ours := startWirePair(t)
	for _, raw := range []string{
		"GET /raw HTTP/1.1\r\nhost: a\r\nX-b:  c\r\nx-A: d\r\nX-b: e\r\n\r\n",
		"\r\nGET /raw?a HTTP/1.0\nHost: a\nCookie: c=1\n\n",
	} {
		want, err := rawRequest(ngx.Addr, raw, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got, err := rawRequest(ours.Addr, raw, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got.Body != want.Body {
			t.Errorf("raw_header of %q: nginx %q, ngxsockify %q", raw, want.Body, got.Body)
		}
	}
}

// TestWireTimeouts: client_header_timeout closes a half-sent request (and
// logs 408), keepalive_timeout closes an idle connection, and a header
// line past large_client_header_buffers answers 400 "Request Header Or
// Cookie Too Large", on both servers alike.
func TestWireTimeouts(t *testing.T) {
	ngx, ours := startWirePair(t)
	for _, s := range []*Server{ngx, ours} {
		addr := "127.0.0.1:" + itoa(s.Ports[1])
		start := time.Now()
		got := wireExchange(t, addr, "GET /r HTTP/1.1\r\nHost: a\r\n", 3*time.Second)
		if got != "[closed]" || time.Since(start) > 2500*time.Millisecond {
			t.Errorf("%s: client_header_timeout: %q after %v", s.Kind, got, time.Since(start))
		}
		start = time.Now()
		got = wireExchange(t, addr, "GET /r HTTP/1.1\r\nHost: a\r\n\r\n", 3*time.Second)
		if !strings.HasSuffix(got, "x[closed]") || time.Since(start) > 2500*time.Millisecond {
			t.Errorf("%s: keepalive_timeout: %q after %v", s.Kind, got, time.Since(start))
		}
		start = time.Now()
		got = wireExchange(t, addr, "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab", 3*time.Second)
		if got != "[closed]" || time.Since(start) > 2500*time.Millisecond {
			t.Errorf("%s: client_body_timeout: %q after %v", s.Kind, got, time.Since(start))
		}
		got = wireExchange(t, addr, "GET /r HTTP/1.1\r\nHost: a\r\nX: "+strings.Repeat("a", 1100)+"\r\n\r\n", time.Second)
		if !strings.HasPrefix(got, "HTTP/1.1 400 Bad Request\r\n") || !strings.Contains(got, "<title>400 Request Header Or Cookie Too Large</title>") {
			t.Errorf("%s: long header line: %q", s.Kind, got)
		}
		got = wireExchange(t, addr, "GET /"+strings.Repeat("a", 1100)+" HTTP/1.1\r\nHost: a\r\n\r\n", time.Second)
		if !strings.HasPrefix(got, "HTTP/1.1 414 Request-URI Too Large\r\n") {
			t.Errorf("%s: long request line: %q", s.Kind, got)
		}
		deadline := time.Now().Add(3 * time.Second)
		for {
			log, _ := os.ReadFile(filepath.Join(s.Dir, "access.log"))
			if strings.Contains(string(log), `"GET /r HTTP/1.1" 408 0`) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: no 408 line in the access log:\n%s", s.Kind, log)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestWireSendTimeout: a client that never reads a big file loses its
// connection at send_timeout: the server's descriptor is released.
func TestWireSendTimeout(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 4<<20) // 64 MiB
	o := ServerOptions{HTTP: wireConf, Files: map[string]string{"html/big": big}}
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, o)
		fds := func() int {
			ents, _ := os.ReadDir("/proc/" + itoa(s.cmd.Process.Pid) + "/fd")
			return len(ents)
		}
		before := fds()
		c, err := net.Dial("tcp", "127.0.0.1:"+itoa(s.Ports[1]))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
		time.Sleep(500 * time.Millisecond)
		if fds() <= before {
			t.Errorf("%s: the connection was not open while sending", kind)
		}
		deadline := time.Now().Add(5 * time.Second)
		for fds() > before && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if n := fds(); n > before {
			t.Errorf("%s: %d descriptors, %d before the request: the stalled connection was kept past send_timeout", kind, n, before)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestWireMutatedVerdicts sends seeded random mutations of valid requests
// to both servers and compares the status lines of the replies (or their
// absence) and whether the connection stays open: the parser's verdicts
// against nginx's on inputs nobody wrote by hand.
func TestWireMutatedVerdicts(t *testing.T) {
	ngx, ours := startWirePair(t)
	seeds := []string{
		"GET /r?a=b HTTP/1.1\r\nHost: localhost\r\nX-A: v\r\n\r\n",
		"POST /r HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		"POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"GET http://a:1/r HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	}
	alphabet := []string{" ", "\r", "\n", ":", "\x00", "_", "a", "/", "?", "#", "%", "H", ".", "1", "0", "\t", "\r\n", "-", "\x7f", "é"}
	rng := rand.New(rand.NewPCG(12, 34))
	n := 400
	if testing.Short() {
		n = 30
	}
	status := func(s string) string {
		line, _, _ := strings.Cut(s, "\r\n")
		if !strings.HasPrefix(line, "HTTP/") {
			line = "(no status line)"
		}
		return line + " " + s[strings.LastIndex(s, "["):]
	}
	diffs := 0
	for i := 0; i < n; i++ {
		b := []byte(seeds[rng.IntN(len(seeds))])
		for k := 1 + rng.IntN(3); k > 0; k-- {
			at := rng.IntN(len(b))
			ins := alphabet[rng.IntN(len(alphabet))]
			switch rng.IntN(3) {
			case 0:
				b = append(b[:at], append([]byte(ins), b[at:]...)...)
			case 1:
				b = append(b[:at], b[at+1:]...)
			default:
				b = append(b[:at], append([]byte(ins), b[at+1:]...)...)
			}
		}
		raw := string(b)
		want := status(wireExchange(t, ngx.Addr, raw, 150*time.Millisecond))
		got := status(wireExchange(t, ours.Addr, raw, 150*time.Millisecond))
		if got != want {
			diffs++
			t.Errorf("%q: nginx %q, ngxsockify %q", raw, want, got)
		}
	}
	t.Logf("%d of %d mutated requests answered differently", diffs, n)
}

// TestWireErrorLogLines: the info lines nginx logs for refused or odd
// heads, in its words, on both servers.
func TestWireErrorLogLines(t *testing.T) {
	ngx, ours := startWirePair(t)
	reqs := []struct{ raw, line string }{
		{"GET /r HTTP/1.1\r\nHost: a\r\n x: folded\r\n\r\n", `client sent invalid header line: "\x20..." while reading client request headers`},
		{"GET /r HTTP/1.1\r\nHost: a\r\nX@y: 1\r\n\r\n", `client sent invalid header line: "X@y: 1" while reading client request headers`},
		{"GET /r HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", `client sent duplicate host header: "Host: b", previous value: "Host: a" while reading client request headers`},
		{"GET /r HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\ncontent-length: 2\r\n\r\n", `client sent duplicate header line: "content-length: 2", previous value: "Content-Length: 1" while reading client request headers`},
		{"get /r HTTP/1.1\r\nHost: a\r\n\r\n", `client sent invalid method while reading client request line, client: 127.0.0.1, server: localhost, request: "get /r HTTP/1.1"`},
		{"TRACE /r HTTP/1.1\r\nHost: a\r\n\r\n", `client sent TRACE method while reading client request headers`},
		{"GET /r HTTP/1.1\r\nHost: a..b\r\n\r\n", `client sent invalid host header while reading client request headers`},
		{"POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", `[error]`},
	}
	for _, s := range []*Server{ngx, ours} {
		for _, r := range reqs {
			wireExchange(t, s.Addr, r.raw, 100*time.Millisecond)
		}
	}
	for _, r := range reqs {
		for _, s := range []*Server{ngx, ours} {
			found := false
			for _, l := range strings.Split(s.ErrorLog(), "\n") {
				if strings.Contains(l, r.line) && (r.line != "[error]" || strings.Contains(l, "client sent invalid chunked body")) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: no line with %q for %q", s.Kind, r.line, r.raw)
			}
		}
	}
}

// TestWireSizes: $bytes_sent, $body_bytes_sent and $request_length as
// nginx counts them (bytes_sent differs only by the Server header's value:
// "nginx/1.22.1" against "ngxsockify").
func TestWireSizes(t *testing.T) {
	ngx, ours := startWirePair(t)
	reqs := []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: a\r\nX-Long: " + strings.Repeat("y", 300) + "\r\n\r\n",
		"GET /c?x=1 HTTP/1.0\r\n\r\n",
		"POST /r HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"GET /missing HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /s503 HTTP/1.1\r\nHost: a\r\n\r\n",
	}
	logs := map[string][]string{}
	for _, s := range []*Server{ngx, ours} {
		for _, r := range reqs {
			wireExchange(t, s.Addr, r, 100*time.Millisecond)
		}
		deadline := time.Now().Add(3 * time.Second)
		for {
			data, _ := os.ReadFile(filepath.Join(s.Dir, "sizes.log"))
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			if len(lines) >= len(reqs) || time.Now().After(deadline) {
				logs[s.Kind] = lines
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	want, got := logs["nginx"], logs["ngxsockify"]
	if len(want) != len(got) {
		t.Fatalf("nginx logged %q, ngxsockify %q", want, got)
	}
	for i := range want {
		w, g := strings.Fields(want[i]), strings.Fields(got[i])
		if len(w) != 5 || len(g) != 5 {
			t.Errorf("line %d: nginx %q, ngxsockify %q", i, want[i], got[i])
			continue
		}
		wb, _ := strconv.Atoi(w[2])
		gb, _ := strconv.Atoi(g[2])
		w[2], g[2] = "", ""
		if strings.Join(w, " ") != strings.Join(g, " ") || gb != wb-len("nginx/1.22.1")+len("ngxsockify") {
			t.Errorf("line %d: nginx %q, ngxsockify %q", i, want[i], got[i])
		}
	}
}
