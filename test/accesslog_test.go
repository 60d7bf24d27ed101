package test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestAccessLogLikeNginx sends the same requests to nginx and ngxsockify
// and compares their access-log lines (combined and a custom format): "-"
// for empty values, \xXX escapes, status and body sizes.
func TestAccessLogLikeNginx(t *testing.T) {
	body := `log_format custom '$request_method|$uri|$args|$status|$body_bytes_sent|$http_x_test|$remote_user|$host';
server {
    listen 127.0.0.1:{{PORT}};
    access_log {{DIR}}/combined.log combined;
    access_log {{DIR}}/custom.log custom;
    location / { return 200 "hello"; }
    location /missing { return 404; }
}`
	a := startServer(t, "nginx", ServerOptions{HTTP: body})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: body})
	reqs := []string{
		"GET /?a=1 HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n",
		"GET /missing HTTP/1.1\r\nHost: x.test\r\nUser-Agent: agent \"q\" \\ \xe2\x82\xac\r\nReferer: http://r/\r\nConnection: close\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: x.test\r\nX-Test: a\tb\r\nAuthorization: Basic dTpwdw==\r\nConnection: close\r\n\r\n",
	}
	for _, raw := range reqs {
		for _, s := range []*Server{a, b} {
			if _, err := rawRequest(s.Addr, raw, routingTimeout); err != nil {
				t.Fatalf("%s: %v", s.Kind, err)
			}
		}
	}
	stamp := regexp.MustCompile(`\[\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]`)
	read := func(s *Server, name string) []string {
		var lines []string
		waitFor(t, func() bool {
			data, _ := os.ReadFile(filepath.Join(s.Dir, name))
			lines = strings.Split(strings.TrimSpace(string(data)), "\n")
			return len(lines) == len(reqs)
		}, s.Kind+" "+name)
		for i, l := range lines {
			lines[i] = stamp.ReplaceAllString(l, "[TIME]")
		}
		return lines
	}
	for _, name := range []string{"combined.log", "custom.log"} {
		want, got := read(a, name), read(b, name)
		for i := range want {
			if want[i] != got[i] {
				t.Errorf("%s line %d:\n got %s\nwant %s (nginx)", name, i+1, got[i], want[i])
			}
		}
	}
}
