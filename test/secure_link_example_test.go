package test

import (
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

var secureLinkURLRE = regexp.MustCompile(`^http://[^/]+/vnc_lite\.html\?path=(websockify%3F\S+)\n$`)

// TestSecureLinkExample checks examples/secure-link: ngxsockify and nginx
// (without the websockify directives) accept it, a URL from sign.sh passes
// secure_link, a tampered one answers 403 and an expired one 410.
func TestSecureLinkExample(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("sign.sh needs openssl")
	}
	main := checkExample(t, "secure-link", func(conf string) string {
		conf = strings.Replace(conf, "websockify_pass $arg_ip:$arg_port;", "return 200;", 1)
		return strings.Replace(conf, "websockify_allow 127.0.0.1:5900-5999;", "", 1)
	})
	s := startServer(t, "ngxsockify", ServerOptions{Main: main})
	sign := func(ttl string) string {
		t.Helper()
		cmd := exec.Command("../examples/secure-link/sign.sh", "127.0.0.1", "5901", "http://127.0.0.1:6080")
		cmd.Env = append(os.Environ(), "TTL="+ttl)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sign.sh: %v\n%s", err, out)
		}
		m := secureLinkURLRE.FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("sign.sh printed %q", out)
		}
		p, err := url.PathUnescape(m[1]) // what noVNC does with path=
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	status := func(p string) int {
		t.Helper()
		resp, err := rawRequest(s.Addr, "GET /"+p+" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", routingTimeout)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Status
	}
	good := sign("60")
	// a plain GET passes secure_link and reaches websockify_pass, which
	// refuses a request that is not a WebSocket handshake
	if st := status(good); st == 403 || st == 410 || st == 500 {
		t.Errorf("signed path /%s answered %d", good, st)
	} else {
		t.Logf("signed path: %d", st)
	}
	if st := status(strings.Replace(good, "port=5901", "port=5902", 1)); st != 403 {
		t.Errorf("tampered port answered %d, want 403", st)
	}
	if st := status(regexp.MustCompile(`&md5=.*`).ReplaceAllString(good, "")); st != 403 {
		t.Errorf("no md5 answered %d, want 403", st)
	}
	if st := status(sign("-60")); st != 410 {
		t.Errorf("expired link answered %d, want 410", st)
	}
}
