package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProxyXAccelBuffering: a backend's X-Accel-Buffering field turns
// buffering off ("no") or on ("yes") for its response, whatever
// proxy_buffering says, unless proxy_ignore_headers names it; the value's
// case does not matter. The backend sends its head and 10 bytes, waits,
// then the rest: an unbuffered response has the 10 bytes reach the
// client before the rest is sent; a buffered one holds them. Compared
// with nginx; so is which answers proxy_store keeps (buffered ones only).
func TestProxyXAccelBuffering(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	// /<value>/...: X-Accel-Buffering: <value> ("-": none)
	backend := serveConns(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		v := strings.Split(strings.TrimPrefix(req.URL.Path, "/"), "/")[0]
		head := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 20\r\nConnection: close\r\n"
		if v != "-" {
			head += "X-Accel-Buffering: " + v + "\r\n"
		}
		io.WriteString(c, head+"\r\n0123456789")
		time.Sleep(600 * time.Millisecond)
		io.WriteString(c, "abcdefghij")
	})
	conf := fmt.Sprintf(`server {
    listen 127.0.0.1:{{PORT}};
    location /on/ { proxy_pass http://%[1]s/; }
    location /off/ { proxy_pass http://%[1]s/; proxy_buffering off; }
    location /ignore/ { proxy_pass http://%[1]s/; proxy_ignore_headers X-Accel-Buffering; }
    location /ignore-off/ { proxy_pass http://%[1]s/; proxy_buffering off; proxy_ignore_headers X-Accel-Expires X-Accel-Buffering; }
    location /store/ { proxy_pass http://%[1]s/; proxy_store on; root {{DIR}}; }
    location /store-off/ { proxy_pass http://%[1]s/; proxy_buffering off; proxy_store on; root {{DIR}}; }
}`, backend)
	paths := []string{"/on/-/", "/on/no/", "/on/No/", "/on/yes/", "/on/nope/", "/off/-/", "/off/yes/", "/off/YES/", "/off/no/",
		"/ignore/no/", "/ignore-off/yes/", "/store/-/a", "/store/no/a", "/store-off/-/a", "/store-off/yes/a"}

	got := map[string]string{}
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: conf})
		var lines []string
		for _, path := range paths {
			c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(c)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s %s: %v", kind, path, err)
			}
			buf := make([]byte, 10)
			_, err = io.ReadFull(res.Body, buf)
			early := err == nil && time.Since(start) < 300*time.Millisecond
			rest, _ := io.ReadAll(res.Body)
			c.Close()
			lines = append(lines, fmt.Sprintf("%s: first 10 bytes early %v, body %s%s", path, early, buf, rest))
		}
		for _, path := range paths {
			if strings.HasPrefix(path, "/store") {
				// nginx renames the file into place as the request ends,
				// which may be after the client has the body
				var err error
				for i := 0; i < 10; i++ {
					if _, err = os.Stat(filepath.Join(s.Dir, path)); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				lines = append(lines, fmt.Sprintf("%s stored: %v", path, err == nil))
			}
		}
		s.Stop()
		got[kind] = strings.Join(lines, "\n")
	}
	if testing.Verbose() {
		t.Logf("nginx:\n%s", got["nginx"])
	}
	if got["nginx"] != got["ngxsockify"] {
		t.Errorf("nginx:\n%s\nngxsockify:\n%s", got["nginx"], got["ngxsockify"])
	}
}
