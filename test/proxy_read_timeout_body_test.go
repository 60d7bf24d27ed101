package test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestProxyReadTimeoutBody: a backend sends its head and part of a body
// of a known length, then stalls past proxy_read_timeout. Under
// proxy_buffering on, nginx sends the client the body's whole buffers
// only (proxy_buffer_size less the head, then proxy_buffers' size each)
// and drops the one it was filling; under proxy_buffering off, all it
// got. A backend that closes early instead has everything sent. What the
// client gets and $body_bytes_sent are compared with nginx's.
func TestProxyReadTimeoutBody(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	// /<sent>/<length>[/close]: the head with Content-Length <length>,
	// <sent> bytes of body, then a stall (or a close)
	backend := serveConns(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		f := strings.Fields(string(buf[:n]))
		if len(f) < 2 {
			return
		}
		parts := strings.Split(strings.TrimPrefix(f[1], "/"), "/")
		if len(parts) < 2 {
			return
		}
		sent, _ := strconv.Atoi(parts[len(parts)-2])
		length := parts[len(parts)-1]
		closing := false
		if length == "close" {
			closing = true
			sent, _ = strconv.Atoi(parts[len(parts)-3])
			length = parts[len(parts)-2]
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+length+"\r\nContent-Type: text/plain\r\n\r\n"+
			strings.Repeat("x", sent))
		if !closing {
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			c.Read(buf)
		}
	})
	conf := fmt.Sprintf(`log_format t '$request_uri $status $body_bytes_sent';
server {
    listen 127.0.0.1:{{PORT}};
    access_log {{DIR}}/t.log t;
    proxy_read_timeout 400ms;
    location / { proxy_pass http://%[1]s; }
    location /nb/ { proxy_pass http://%[1]s; proxy_buffering off; }
    location /small/ { proxy_pass http://%[1]s; proxy_buffer_size 1k; proxy_buffers 4 2k; proxy_busy_buffers_size 2k; }
    location /large/ { proxy_pass http://%[1]s; proxy_buffers 3 16k; }
}`, backend)
	paths := []string{"/10/100", "/3000/5000", "/4096/8192", "/9000/18000", "/17000/34000",
		"/nb/10/100", "/nb/3000/5000", "/nb/9000/18000",
		"/small/500/1000", "/small/1000/2000", "/small/5000/10000", "/large/20000/40000", "/large/40000/80000",
		"/10/100/close", "/9000/18000/close"}
	got := map[string][]string{}
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: conf})
		for _, path := range paths {
			c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			all, err := io.ReadAll(c)
			c.Close()
			if err != nil {
				t.Errorf("%s %s: %v", kind, path, err)
			}
			_, body, _ := bytes.Cut(all, []byte("\r\n\r\n"))
			got[kind] = append(got[kind], fmt.Sprintf("%s: %d body bytes", path, len(body)))
		}
		var log []byte
		for i := 0; i < 50; i++ {
			if log, _ = os.ReadFile(filepath.Join(s.Dir, "t.log")); strings.Count(string(log), "\n") >= len(paths) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		got[kind] = append(got[kind], strings.Split(strings.TrimSpace(string(log)), "\n")...)
		s.Stop()
	}
	want, have := strings.Join(got["nginx"], "\n"), strings.Join(got["ngxsockify"], "\n")
	if want != have {
		t.Errorf("nginx:\n%s\nngxsockify:\n%s", want, have)
	}
}
