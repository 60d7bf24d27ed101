package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMirrorSharedVars: a mirror subrequest shares its request's
// variables, as nginx's (ngx_http_subrequest hands it the parent's array
// of values), although it runs beside the request. nginx runs the mirror
// once the request's proxy_pass has made its request: the request's
// backend gets the request's `set` value and the mirror's backend the
// mirror's; the mirror's `set` then reaches the request's access-log
// line; a map the request read first keeps its value for the mirror, and
// one the mirror read first for the request's log line. The request's
// backend answers late, so that the mirror has run meanwhile. The other
// way, a `set` of the location the request's error_page goes to, while
// its mirror's backend is slow, is what the mirror's own log line
// (log_subrequest) reads.
func TestMirrorSharedVars(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	var mu sync.Mutex
	var seen []string
	backend := serveConns(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s X-X=%s X-M=%s", req.URL.Path, req.Header.Get("X-X"), req.Header.Get("X-M")))
		mu.Unlock()
		if strings.HasPrefix(req.URL.Path, "/slow") {
			time.Sleep(300 * time.Millisecond)
		}
		status := "200 OK"
		if req.URL.Path == "/404" {
			status = "404 Not Found"
		}
		io.WriteString(c, "HTTP/1.1 "+status+"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	})
	conf := fmt.Sprintf(`log_format t '$request_uri x=$x m=$m';
map $uri $m { default "map:$uri"; }
server {
    listen 127.0.0.1:{{PORT}};
    access_log {{DIR}}/t.log t;
    log_subrequest on;
    location /a { mirror /m; set $x main; proxy_set_header X-X $x; proxy_pass http://%[1]s/slow-a; }
    location /b { mirror /m; set $x main; proxy_set_header X-X $x; proxy_set_header X-M $m; proxy_pass http://%[1]s/slow-b; }
    location /c { mirror /mm; set $x main; proxy_set_header X-X $x; proxy_pass http://%[1]s/slow-c; }
    location /d { mirror /m2; set $x main; proxy_set_header X-X $x; proxy_intercept_errors on; error_page 404 = /e; proxy_pass http://%[1]s/404; }
    location /e { set $x e; return 200 "e $x"; }
    location /m2 { internal; proxy_set_header X-X $x; proxy_pass http://%[1]s/slow-m2; }
    location /m { internal; set $x mirror; proxy_set_header X-X $x; proxy_set_header X-M $m; proxy_pass http://%[1]s; }
    location /mm { internal; proxy_set_header X-X $x; proxy_set_header X-M $m; proxy_pass http://%[1]s; }
}`, backend)
	got := map[string]string{}
	for _, kind := range []string{"nginx", "ngxsockify"} {
		mu.Lock()
		seen = nil
		mu.Unlock()
		s := startServer(t, kind, ServerOptions{HTTP: conf})
		for _, path := range []string{"/a", "/b", "/c", "/d"} {
			res, err := rawRequest(s.Addr, "GET "+path+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 5*time.Second)
			if err != nil {
				t.Fatalf("%s %s: %v", kind, path, err)
			}
			_ = res
		}
		var log []byte
		for i := 0; i < 50; i++ {
			if log, _ = os.ReadFile(filepath.Join(s.Dir, "t.log")); strings.Count(string(log), "\n") >= 8 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		s.Stop()
		mu.Lock()
		lines := append([]string(nil), seen...)
		mu.Unlock()
		sort.Strings(lines)
		got[kind] = strings.Join(lines, "\n") + "\n" + string(log)
	}
	if got["nginx"] != got["ngxsockify"] {
		t.Errorf("nginx:\n%s\nngxsockify:\n%s", got["nginx"], got["ngxsockify"])
	}
}
