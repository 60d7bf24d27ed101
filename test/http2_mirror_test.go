package test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHTTP2MirrorEnd: over HTTP/2, as over HTTP/1.1, a request with a
// mirror ends its stream (END_STREAM, the client's response complete) as
// soon as its own output has ended, while the mirror subrequest runs on:
// nginx sends the last DATA frame with the response's last buffer and only
// frees the stream once its background subrequests end. The mirror here
// sleeps 3 s; both servers must complete the response (a static file with
// its length, and one SSI streams without) well before that, and the
// access-log line comes once the mirror ended. A graceful quit meanwhile
// does not wait for the mirror (nor log the request), as nginx's.
func TestHTTP2MirrorEnd(t *testing.T) {
	dir := t.TempDir()
	_, crt, key := writeCert(t, dir, "h2.test")
	body := `log_format m '$request|$server_protocol|$status|$body_bytes_sent';
ssl_certificate ` + crt + `;
ssl_certificate_key ` + key + `;
server {
    listen 127.0.0.1:{{PORT}} http2;
    listen 127.0.0.1:{{PORT2}} ssl http2;
    server_name h2.test;
    access_log {{DIR}}/m.log m;
    location = /main { mirror /slow; root {{DIR}}; }
    location = /ssi.html { mirror /slow; ssi on; root {{DIR}}; }
    location = /slow { internal; content_by_lua_block { ngx.sleep(3) } }
}`
	a := startServer(t, "nginx", ServerOptions{HTTP: body})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: body})
	for _, s := range []*Server{a, b} {
		for name, text := range map[string]string{"main": "main\n", "ssi.html": "ssi <!--#echo var=\"uri\" -->\n"} {
			if err := os.WriteFile(filepath.Join(s.Dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	const quick = 1500 * time.Millisecond
	for _, s := range []*Server{a, b} {
		for _, tls := range []bool{false, true} {
			scheme, port := "http", s.Port
			if tls {
				scheme, port = "https", s.Ports[1]
			}
			for _, p := range []string{"/main", "/ssi.html"} {
				path := fmt.Sprintf("%s?tls=%v", p, tls)
				c := h2Client(tls)
				start := time.Now()
				resp, err := c.Get(fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, port, path))
				if err != nil {
					t.Fatalf("%s %s %s: %v", s.Kind, scheme, path, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				took := time.Since(start)
				t.Logf("%s %s %s: %q in %v", s.Kind, scheme, path, b, took)
				if data, _ := os.ReadFile(filepath.Join(s.Dir, "m.log")); strings.Contains(string(data), "GET "+path+" ") {
					t.Errorf("%s %s %s: logged before the mirror ended: %q", s.Kind, scheme, path, data)
				}
				if took > quick {
					t.Errorf("%s %s %s: the response ended after %v, with the mirror (want < %v)", s.Kind, scheme, path, took, quick)
				}
			}
		}
	}
	// curl --http2 -k, as a client would ask
	if curl, err := exec.LookPath("curl"); err == nil {
		for _, s := range []*Server{a, b} {
			start := time.Now()
			out, err := exec.Command(curl, "-sk", "--http2", "-w", " %{http_version}",
				fmt.Sprintf("https://127.0.0.1:%d/ssi.html", s.Ports[1])).Output()
			took := time.Since(start)
			t.Logf("%s curl: %q %v in %v", s.Kind, out, err, took)
			if err != nil || string(out) != "ssi /ssi.html\n 2" {
				t.Errorf("%s curl: %q %v", s.Kind, out, err)
			}
			if took > quick {
				t.Errorf("%s curl: the response ended after %v (want < %v)", s.Kind, took, quick)
			}
		}
	}
	// the log lines, once the mirrors ended, are nginx's
	read := func(s *Server) []string {
		var lines []string
		waitFor(t, func() bool {
			data, _ := os.ReadFile(filepath.Join(s.Dir, "m.log"))
			lines = strings.Split(strings.TrimSpace(string(data)), "\n")
			return len(lines) >= 5
		}, s.Kind+" m.log")
		sort.Strings(lines)
		return lines
	}
	want, got := read(a), read(b)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("m.log:\n got %q\nwant %q (nginx)", got, want)
	}
	// a graceful quit while a mirror runs: nginx ends the HTTP/2
	// connection (its stream's output has ended) and exits without
	// waiting for the mirror; the request is not logged
	for _, s := range []*Server{a, b} {
		resp, err := h2Client(false).Get(fmt.Sprintf("http://127.0.0.1:%d/main?quit", s.Port))
		if err != nil {
			t.Fatalf("%s: %v", s.Kind, err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		s.Signal(syscall.SIGQUIT)
	}
	quit := time.Now()
	for _, s := range []*Server{a, b} {
		waitFor(t, s.Exited, s.Kind+" to exit")
		took := time.Since(quit)
		t.Logf("%s exited %v after the quit", s.Kind, took)
		if took > 2500*time.Millisecond { // the mirror takes 3 s; ngxsockify's quit about 1 s
			t.Errorf("%s: exited %v after the quit, having waited for the mirror", s.Kind, took)
		}
		data, _ := os.ReadFile(filepath.Join(s.Dir, "m.log"))
		if strings.Contains(string(data), "GET /main?quit ") {
			t.Errorf("%s: logged the request whose mirror ran at the quit: %q", s.Kind, data)
		}
		s.Stop()
	}
}
