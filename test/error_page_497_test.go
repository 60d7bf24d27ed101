package test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestErrorPage497 sends plain HTTP to TLS ports on nginx and ngxsockify:
// without error_page the special 400 page; with the usual
// `error_page 497 =307 https://$host:$server_port$request_uri;` a redirect
// to the https URL; without "=" a 497 page target answers 400 (nginx's
// implicit change of status), with "=" the code given; error_page at the
// http level applies too. The answers must be the same.
func TestErrorPage497(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	dir := t.TempDir()
	_, crt, key := writeCert(t, dir, "a.test")
	conf := fmt.Sprintf(`ssl_certificate %s;
ssl_certificate_key %s;
error_page 497 https://h.test/from-http;
server {
    listen 127.0.0.1:{{PORT}} ssl;
    error_page 497 =307 https://$host:$server_port$request_uri;
    location / { return 200 "tls\n"; }
}
server {
    listen 127.0.0.1:{{PORT2}} ssl;
    error_page 497 /plain.txt;
    location = /plain.txt { return 200 "use https\n"; }
}
server {
    listen 127.0.0.1:{{PORT3}} ssl;
}
server {
    listen 127.0.0.1:{{PORT4}} ssl;
    error_page 500 /x;
}
server {
    listen 127.0.0.1:{{PORT5}} ssl;
    error_page 497 =200 /plain.txt;
    location = /plain.txt { return 200 "use https\n"; }
}`, crt, key)
	type answer struct {
		Status   int
		Location string
		Body     string
		Conn     string
	}
	reqs := []struct {
		port int
		raw  string
	}{
		{0, "GET /a?b=1 HTTP/1.1\r\nHost: a.test\r\n\r\n"},
		{0, "GET /a HTTP/1.0\r\n\r\n"},
		{1, "GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n"},
		{2, "GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n"},
		{3, "GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n"},
		{4, "GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n"},
	}
	got := map[string][]answer{}
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: conf})
		for _, rq := range reqs {
			port := s.Ports[rq.port]
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			res, err := rawRequest(addr, rq.raw, 5*time.Second)
			if err != nil {
				t.Fatalf("%s: %q: %v", kind, rq.raw, err)
			}
			loc := strings.ReplaceAll(res.Header.Get("Location"), fmt.Sprint(port), "PORT")
			body := strings.ReplaceAll(strings.ReplaceAll(res.Body, "nginx/1.22.1", "nginx"), "ngxsockify", "nginx")
			got[kind] = append(got[kind], answer{res.Status, loc, body, res.Header.Get("Connection")})
		}
	}
	for i := range reqs {
		n, g := got["nginx"][i], got["ngxsockify"][i]
		if n != g {
			t.Errorf("%q on port %d:\nnginx:      %+v\nngxsockify: %+v", reqs[i].raw, reqs[i].port, n, g)
		}
	}
	if a := got["nginx"][0]; a.Status != 307 || a.Location != "https://a.test:PORT/a?b=1" {
		t.Errorf("the idiom: %+v", a)
	}
}
