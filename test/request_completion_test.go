package test

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestRequestCompletionLikeNginx compares $request_completion in access-log
// lines with nginx's: "OK" for a request answered in full (return, a
// static 404, error_page, a 400 for a bad request, keep-alive, an SSI
// include, post_action's line, a WebSocket tunnel either side ends, an
// HTTP/2 stream), "" for one that ended without its answer (return 444, a
// client gone before a slow backend answered: 499, a body or a head that
// timed out: 408, a client gone mid-head: 400, a reset HTTP/2 stream), and
// "" wherever the request read the variable before its end (a return
// text, add_header, a log_subrequest line of its subrequest), as nginx
// keeps a variable's first value.
func TestRequestCompletionLikeNginx(t *testing.T) {
	// a backend that accepts and never answers (the client leaves first:
	// 499), and one that switches protocols, sends a little and closes
	silent := serveConns(t, func(net.Conn) { <-t.Context().Done() })
	upgrading := serveConns(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		c.Read(buf)
		c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhi"))
		time.Sleep(200 * time.Millisecond)
	})
	body := fmt.Sprintf(`log_format rc '$request_uri $status [$request_completion]';
client_header_timeout 1s;
server {
    listen 127.0.0.1:{{PORT}};
    access_log {{DIR}}/rc.log rc;
    location / { return 200 "body\n"; }
    location /read { return 200 "body [$request_completion]\n"; }
    location /hdr { add_header X-C "[$request_completion]"; return 204; }
    location /close { return 444; }
    location /nf { root {{DIR}}/none; }
    location /ep { error_page 404 = /; return 404; }
    location /sub { ssi on; default_type text/html; return 200 'a<!--# include virtual="/logged" -->b'; }
    location /subnl { ssi on; default_type text/html; return 200 'a<!--# include virtual="/" -->b'; }
    location /logged { log_subrequest on; return 200 "t\n"; }
    location /pa { post_action /palog; return 200 "pa\n"; }
    location /palog { access_log {{DIR}}/pa.log rc; return 200; }
    location /redir { return 302 /x; }
    location /slow { proxy_pass http://%s; }
    location /body { client_body_timeout 1s; proxy_pass http://127.0.0.1:{{PORT}}/; }
    location /ws {
        proxy_pass http://%s;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection upgrade;
    }
}
server {
    listen 127.0.0.1:{{PORT2}} http2;
    access_log {{DIR}}/h2.log rc;
    location / { return 200 "body\n"; }
    location /close { return 444; }
}`, silent, upgrading)
	servers := []*Server{
		startServer(t, "nginx", ServerOptions{HTTP: body}),
		startServer(t, "ngxsockify", ServerOptions{HTTP: body}),
	}
	var reqs []string
	for _, u := range []string{"/", "/read", "/hdr", "/close", "/nf", "/ep", "/sub", "/subnl", "/pa", "/redir"} {
		reqs = append(reqs, "GET "+u+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	}
	reqs = append(reqs,
		"GET /?k1 HTTP/1.1\r\nHost: x\r\n\r\nGET /?k2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"GET /?bad HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n")
	for _, s := range servers {
		for _, raw := range reqs {
			rawRequestDrain(s.Addr, raw, 3*time.Second, true)
		}
		// the client leaves while the backend keeps the request: 499
		c, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"))
		time.Sleep(300 * time.Millisecond)
		c.Close()
		// a body that never comes whole: 408 after client_body_timeout
		rawRequestDrain(s.Addr, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab", 3*time.Second, true)
		// a WebSocket tunnel the backend ends, one the client ends
		rawRequestDrain(s.Addr, "GET /ws?backend HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 3*time.Second, true)
		if c, err := net.Dial("tcp", s.Addr); err == nil {
			c.Write([]byte("GET /ws?client HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
			time.Sleep(100 * time.Millisecond)
			c.Close()
		}
		// a head that times out (408), one the client leaves (400): no reply
		for _, w := range []struct {
			head string
			wait time.Duration
		}{{"GET /head-timeout HTTP/1.1\r\nHost: x\r\n", 1500 * time.Millisecond}, {"GET /head-gone HTTP/1.1\r\nHost: x\r\n", 200 * time.Millisecond}} {
			if c, err := net.Dial("tcp", s.Addr); err == nil {
				c.Write([]byte(w.head))
				time.Sleep(w.wait)
				c.Close()
			}
		}
		// HTTP/2: answered, and reset (444)
		h2 := h2Client(false)
		for _, path := range []string{"/?h2", "/close"} {
			if resp, err := h2.Get(fmt.Sprintf("http://127.0.0.1:%d%s", s.Ports[1], path)); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}
	// one a request (/pa's goes to pa.log), plus the subrequest's,
	// keep-alive's second, 499's, 408's, the tunnels' and the two heads'
	lines := len(reqs) - 1 + 8
	read := func(s *Server, name string, n int) string {
		var data []byte
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			data, _ = os.ReadFile(filepath.Join(s.Dir, name))
			if strings.Count(string(data), "\n") >= n {
				break
			}
		}
		// (sorted: when a request ends with the client gone is not ordered)
		ls := strings.Split(strings.TrimSpace(string(data)), "\n")
		sort.Strings(ls)
		return strings.Join(ls, "\n")
	}
	for _, f := range []struct {
		name string
		n    int
	}{{"rc.log", lines}, {"pa.log", 1}, {"h2.log", 2}} {
		a, b := read(servers[0], f.name, f.n), read(servers[1], f.name, f.n)
		if a != b {
			t.Errorf("%s:\n got (ngxsockify)\n%s\nwant (nginx)\n%s", f.name, b, a)
		}
	}
}

// TestBytesSentKeptLikeNginx compares with nginx what $bytes_sent and
// $body_bytes_sent give: once read while the request runs (add_header,
// add_trailer, set) they keep that first value for later reads (a map read
// by the log line), while the log line's own $bytes_sent and
// $body_bytes_sent are what was sent; a chunked body counts its framing and
// its trailer, and no last chunk when it was cut short.
func TestBytesSentKeptLikeNginx(t *testing.T) {
	// a backend whose chunked body stops short: no last chunk is sent,
	// none is counted
	cut := serveConns(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		c.Read(buf)
		c.Write([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"))
		time.Sleep(100 * time.Millisecond)
	})
	body := fmt.Sprintf(`map $body_bytes_sent $m { default "m$body_bytes_sent"; }
map $bytes_sent $mb { default "mb$bytes_sent"; }
log_format t '$request_uri $body_bytes_sent|$m|$mb|$status';
server {
    listen 127.0.0.1:{{PORT}};
    access_log {{DIR}}/t.log t;
    location /hdr { add_header X-B "$bytes_sent|$body_bytes_sent"; return 200 "hello world"; }
    location /set { set $a "$bytes_sent|$body_bytes_sent"; add_header X-A $a; return 200 "hello"; }
    location /trailer { ssi on; default_type text/html; add_trailer X-T "$bytes_sent|$body_bytes_sent|$m"; return 200 "hello world"; }
    location /chunked { ssi on; default_type text/html; return 200 "hello world"; }
    location /none { return 200 "hello"; }
    location /cut { proxy_pass http://%s; }
}`, cut)
	servers := []*Server{
		startServer(t, "nginx", ServerOptions{HTTP: body}),
		startServer(t, "ngxsockify", ServerOptions{HTTP: body}),
	}
	uris := []string{"/hdr", "/set", "/trailer", "/chunked", "/none", "/cut"}
	var resp [2][]string
	for i, s := range servers {
		for _, u := range uris {
			r, err := rawRequestDrain(s.Addr, "GET "+u+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3*time.Second, true)
			if u == "/cut" {
				continue // (cut short: the log line tells)
			}
			if err != nil {
				t.Fatalf("%s %s: %v", s.Kind, u, err)
			}
			resp[i] = append(resp[i], u+" "+r.Header.Get("X-B")+r.Header.Get("X-A")+r.Body)
		}
	}
	for i := range resp[0] {
		if resp[0][i] != resp[1][i] {
			t.Errorf("got %q, nginx %q", resp[1][i], resp[0][i])
		}
	}
	read := func(s *Server) string {
		var data []byte
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			data, _ = os.ReadFile(filepath.Join(s.Dir, "t.log"))
			if strings.Count(string(data), "\n") >= len(uris) {
				break
			}
		}
		return string(data)
	}
	// (nginx's Server header is not ngxsockify's: $bytes_sent read at the
	// end is only told apart from the 0 read at the start)
	sent := regexp.MustCompile(`mb[1-9][0-9]*`)
	if a, b := sent.ReplaceAllString(read(servers[0]), "mbN"), sent.ReplaceAllString(read(servers[1]), "mbN"); a != b {
		t.Errorf("t.log:\n got (ngxsockify)\n%s\nwant (nginx)\n%s", b, a)
	}
}
