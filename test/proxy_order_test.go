package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestProxyHeaderOrder: a proxied response's headers go out in the order
// the backend sent them (after the ones nginx writes first), then
// add_header's, on nginx and ngxsockify alike (nginx-tests'
// proxy_pass_request.t reads them in order).
func TestProxyHeaderOrder(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	backend := serveConns(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.0 200 OK\r\nX-Zeta: 1\r\nCache-Control: no-store\r\nX-Body: b\r\n"+
			"ETag: \"e\"\r\nX-Header: h\r\nExpires: 0\r\nAccept-Ranges: bytes\r\nWWW-Authenticate: x\r\n"+
			"Content-Type: text/plain\r\nX-Alpha: 2\r\nContent-Length: 2\r\n\r\nok")
	})
	conf := fmt.Sprintf(`server {
    listen 127.0.0.1:{{PORT}};
    location / { proxy_pass http://%s; add_header X-Added 1; }
}`, backend)
	got := map[string][]string{}
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: conf})
		res, err := rawRequest(s.Addr, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		got[kind] = res.Names
	}
	if diff := cmp.Diff(got["nginx"], got["ngxsockify"]); diff != "" {
		t.Errorf("header order (-nginx +ngxsockify):\n%s", diff)
	}
}
