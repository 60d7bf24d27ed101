package test

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestProxyClientAbort closes the client's connection while nginx and
// ngxsockify wait for a backend that answers late: both close the backend
// connection at once (the backend sees its peer gone long before it
// answers), log nginx's info line and 499 with no header time in the
// access log; under proxy_ignore_client_abort on they wait for the answer.
// Under proxy_buffering off, a client gone while the backend is silent
// after a first part of the body also closes the backend (status 200).
func TestProxyClientAbort(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	peerGone := make(chan time.Duration, 4) // how long after the request the backend saw the close
	backend := serveConns(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if strings.HasPrefix(string(buf[:n]), "GET /nb") {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n")
		}
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
		if _, err := c.Read(buf); err == io.EOF {
			peerGone <- time.Since(start)
			return
		}
		peerGone <- -1
		io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	conf := fmt.Sprintf(`log_format t '$status $upstream_header_time $request_uri';
server {
    listen 127.0.0.1:{{PORT}};
    access_log {{DIR}}/t.log t;
    location / { proxy_pass http://%s; }
    location /ignore { proxy_pass http://%s; proxy_ignore_client_abort on; }
    location /nb { proxy_pass http://%s; proxy_buffering off; }
}`, backend, backend, backend)
	for _, kind := range []string{"nginx", "ngxsockify"} {
		t.Run(kind, func(t *testing.T) {
			s := startServer(t, kind, ServerOptions{HTTP: conf})
			for _, path := range []string{"/abort", "/ignore", "/nb"} {
				c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
				time.Sleep(300 * time.Millisecond)
				c.Close()
				gone := <-peerGone
				switch {
				case path != "/ignore" && (gone < 0 || gone > time.Second):
					t.Errorf("%s: the backend connection stayed open (%v)", path, gone)
				case path == "/ignore" && gone >= 0:
					t.Errorf("%s: the backend connection was closed after %v", path, gone)
				}
			}
			var log []byte
			for i := 0; i < 50; i++ {
				if log, _ = os.ReadFile(filepath.Join(s.Dir, "t.log")); strings.Count(string(log), "\n") >= 3 {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if !regexp.MustCompile(`(?m)^499 - /abort$`).Match(log) {
				t.Errorf("access log: %q, want a 499 with no header time for /abort", log)
			}
			if !regexp.MustCompile(`(?m)^200 [0-9.]+ /ignore$`).Match(log) {
				t.Errorf("access log: %q, want 200 for /ignore", log)
			}
			if !regexp.MustCompile(`(?m)^200 [0-9.]+ /nb$`).Match(log) {
				t.Errorf("access log: %q, want 200 for /nb", log)
			}
			nb := `\[info\] .* epoll_wait\(\) reported that client prematurely closed connection, so upstream connection is closed too (\(104: Connection reset by peer\) )?while sending to client, client: 127.0.0.1, server: , request: "GET /nb HTTP/1.1", upstream: "http://127.0.0.1:\d+/nb", host: "a"`
			if !regexp.MustCompile(nb).MatchString(s.ErrorLog()) {
				t.Errorf("error log lacks nginx's line for /nb:\n%s", s.ErrorLog())
			}
			want := `\[info\] .* epoll_wait\(\) reported that client prematurely closed connection, so upstream connection is closed too while sending request to upstream, client: 127.0.0.1, server: , request: "GET /abort HTTP/1.1", upstream: "http://127.0.0.1:\d+/abort", host: "a"`
			if !regexp.MustCompile(want).MatchString(s.ErrorLog()) {
				t.Errorf("error log lacks nginx's line:\n%s", s.ErrorLog())
			}
		})
	}
}
