package test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
)

// The corpus end-to-end test: a real site config from the development
// corpus (../shared/corpus, outside the repository: the test skips without
// it), read unchanged except for its ports and its install directory, served
// by nginx and by ngxsockify in front of the same loopback backends, as its
// authors deploy it. Clients must get the same answers and the backends must
// receive the same requests.

// corpusDirs are where the corpus is looked for: beside the worktree (as
// nginxconf's tests find it) and at its usual absolute place.
var corpusDirs = []string{"../../shared/corpus", "/work/shared/corpus"}

// readCorpus returns the text of the corpus file rel ("b/x.conf"), or skips.
func readCorpus(t *testing.T, rel string) string {
	t.Helper()
	for _, d := range corpusDirs {
		if data, err := os.ReadFile(filepath.Join(d, rel)); err == nil {
			return string(data)
		}
	}
	t.Skipf("corpus file %s not found in %v", rel, corpusDirs)
	return ""
}

// fcwuSite is fcwu/docker-ubuntu-vnc-desktop's sites-enabled/default
// (b/fcwu-ubuntu-vnc-desktop-sites-default.conf) laid out as the image
// deploys it: the site included in http{} after mime.types (Debian's
// nginx.conf), the web frontend in frontend (a directory prepared by
// newFcwuFrontend), the Python web app ("@api", 127.0.0.1:6079 in the
// image) at apiAddr and websockify ("@apiwebsocket", 127.0.0.1:6081) at
// wsAddr. Only the listen port, the frontend path and the two backend
// addresses are changed; the startup script's commented-out markers stay
// commented out (no TLS, no password), as in the image's default run.
func fcwuSite(t *testing.T, frontend, apiAddr, wsAddr string) string {
	t.Helper()
	conf := readCorpus(t, "b/fcwu-ubuntu-vnc-desktop-sites-default.conf")
	for _, want := range []string{"listen 80 default_server;", "/usr/local/lib/web/frontend/", "127.0.0.1:6079", "127.0.0.1:6081"} {
		if !strings.Contains(conf, want) {
			t.Fatalf("corpus config changed: %q not found", want)
		}
	}
	conf = strings.NewReplacer(
		"listen 80 default_server;", "listen 127.0.0.1:{{PORT}} default_server;",
		"/usr/local/lib/web/frontend/", frontend+"/",
		"127.0.0.1:6079", apiAddr,
		"127.0.0.1:6081", wsAddr,
	).Replace(conf)
	return "include /etc/nginx/mime.types;\n" + conf
}

// newFcwuFrontend makes the image's /usr/local/lib/web/frontend: the web
// app's index.html and static/novnc (the image ships noVNC there; here a
// link to Debian's /usr/share/novnc).
func newFcwuFrontend(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(novncDir + "/vnc_lite.html"); err != nil {
		requireTool(t, "novnc") // skips (or fails under CI) without Debian's novnc
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "static"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(novncDir, filepath.Join(dir, "static", "novnc")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html><title>desktop</title><div id=app>web app</div>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// 0755 all the way down: a server that drops to nobody can read it
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startWebsockifyAt runs Debian's Python websockify (no web files) on a free
// port of 127.0.0.1, relaying to 127.0.0.1:target.
func startWebsockifyAt(t *testing.T, target int) *Server {
	t.Helper()
	bin := requireTool(t, "websockify")
	var lastErr error
	for i := 0; i < 3; i++ {
		port := freePort(t)
		s, err := launch(t, "websockify", bin, []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", target)}, t.TempDir(), []int{port})
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return nil
}

// corpusAnswer is what one request got, with the server's own port masked
// (it is in Host, which the web app echoes).
type corpusAnswer struct {
	Status                 int
	ContentType, Location  string
	AcceptRanges, Encoding string
	CacheControl           string
	Body                   string
}

func askCorpus(t *testing.T, s *Server, raw string) corpusAnswer {
	t.Helper()
	raw = strings.ReplaceAll(raw, "HOST", s.Addr)
	res, err := rawRequest(s.Addr, raw, 10*time.Second)
	if err != nil {
		t.Fatalf("%s: %q: %v\n%s", s.Kind, raw, err, tail(s.ErrorLog(), 20))
	}
	// The server's port, not digits that happen to contain it (noVNC's
	// page cites Firefox bug 1419039; port 41903 once matched inside it).
	port := regexp.MustCompile(`(^|[^0-9])` + strconv.Itoa(s.Port) + `([^0-9]|$)`)
	return corpusAnswer{
		Status:       res.Status,
		ContentType:  res.Header.Get("Content-Type"),
		Location:     port.ReplaceAllString(res.Header.Get("Location"), "${1}PORT${2}"),
		AcceptRanges: res.Header.Get("Accept-Ranges"),
		Encoding:     res.Header.Get("Content-Encoding"),
		CacheControl: strings.Join(res.Header.Values("Cache-Control"), ", "),
		Body:         port.ReplaceAllString(res.Body, "${1}PORT${2}"),
	}
}

// TestProxyCorpusFcwu serves fcwu's desktop site on nginx and ngxsockify:
// the frontend and noVNC's files, the /approot/ rewrite, the web app's
// API through "try_files $uri @api$http_upgrade" (request line, Host,
// X-Real-IP, X-Forwarded-For and the body as the app receives them;
// max_ranges 0), and the console's WebSocket through @apiwebsocket to
// Python websockify and a TCP echo target, 256 KiB byte for byte.
func TestProxyCorpusFcwu(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	frontend := newFcwuFrontend(t)
	app := startProxyBackend(t)
	echo := startEcho(t)
	ws := startWebsockifyAt(t, echo.port())
	site := fcwuSite(t, frontend, app.addr(), ws.Addr)
	servers := []*Server{startNginx(t, site), startNgxsockify(t, site)}
	for _, l := range strings.Split(servers[1].Output()+servers[1].ErrorLog(), "\n") {
		if (strings.Contains(l, "not supported") || strings.Contains(l, "ignored")) && !strings.Contains(l, `"load_module"`) {
			t.Errorf("ngxsockify warns about the corpus config: %s", l)
		}
	}
	vncLite, err := os.ReadFile(novncDir + "/vnc_lite.html")
	if err != nil {
		t.Fatal(err)
	}

	requests := []struct {
		name, raw string
		want      int    // status both must give
		body      string // a substring both bodies must hold
	}{
		{"frontend index", "GET / HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n", 200, "web app"},
		{"approot rewrite", "GET /approot/index.html HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n", 200, "web app"},
		{"novnc page", "GET /static/novnc/vnc_lite.html HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n", 200, string(vncLite)},
		{"novnc module", "GET /static/novnc/core/rfb.js HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n", 200, "RFB"},
		{"novnc directory", "GET /static/novnc HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n", 301, ""},
		{"missing file", "GET /nope.html HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n", 404, ""},
		{"api get", "GET /api/state?id=7&x=%20y HTTP/1.1\r\nHost: HOST\r\nUser-Agent: test\r\nAccept: */*\r\nConnection: close\r\n\r\n", 200, "GET /api/state?id=7&x=%20y HTTP/1.0"},
		{"api under a prefix", "GET /approot/api/health HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n", 200, "GET /approot/api/health HTTP/1.0"},
		{"api post", "POST /api/resize?w=1024 HTTP/1.1\r\nHost: HOST\r\nContent-Type: application/json\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{\"w\":1024}\r\n\r\n", 200, "{\"w\":1024}"},
		{"api chunked post", "POST /api/reset HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 200, "abcde"},
		{"api range (max_ranges 0)", "GET /api/state HTTP/1.1\r\nHost: HOST\r\nRange: bytes=0-3\r\nConnection: close\r\n\r\n", 200, "Range: bytes=0-3"},
		{"api forged forwarding", "GET /api/me HTTP/1.1\r\nHost: HOST\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n", 200, "X-Real-Ip: 127.0.0.1"},
		{"hop-by-hop from the client", "GET /api/hop HTTP/1.1\r\nHost: HOST\r\nKeep-Alive: 300\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nConnection: close, TE\r\n\r\n", 200, "GET /api/hop HTTP/1.0"},
		{"expect on a body", "POST /api/up HTTP/1.1\r\nHost: HOST\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", 100, ""}, // rawRequest reads the interim answer
		{"expect without a body", "GET /api/x HTTP/1.1\r\nHost: HOST\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n", 100, ""},                     // both send 100 at once, as nginx does
		{"other upgrade: no such named location", "GET /api/x HTTP/1.1\r\nHost: HOST\r\nUpgrade: h2c\r\nConnection: close, Upgrade\r\n\r\n", 500, ""},
		{"websockify without upgrade", "GET /websockify HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n", 200, "GET /websockify HTTP/1.0"},
		{"head of the frontend", "HEAD / HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n", 200, ""},
	}
	for _, rq := range requests {
		t.Run(rq.name, func(t *testing.T) {
			got := make([]corpusAnswer, len(servers))
			for i, s := range servers {
				got[i] = askCorpus(t, s, rq.raw)
				if got[i].Status != rq.want || !strings.Contains(got[i].Body, rq.body) {
					t.Errorf("%s: status %d, want %d; body %.300q does not hold %.100q", s.Kind, got[i].Status, rq.want, got[i].Body, rq.body)
				}
			}
			if diff := cmp.Diff(got[0], got[1]); diff != "" {
				t.Errorf("answers differ (-nginx +ngxsockify):\n%s", diff)
			}
		})
	}

	payload := make([]byte, 256<<10)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		t.Run("console websocket "+s.Kind, func(t *testing.T) {
			c, resp, err := wsDial(t, s, "/websockify", "binary")
			if err != nil {
				status := 0
				if resp != nil {
					status = resp.StatusCode
				}
				t.Fatalf("dial through %s: %v (HTTP %d)\n%s\n%s", s.Kind, err, status, tail(s.ErrorLog(), 20), tail(ws.Output(), 20))
			}
			defer c.Close()
			if c.Subprotocol() != "binary" {
				t.Errorf("subprotocol %q, want websockify's binary", c.Subprotocol())
			}
			echo.waitOpen(t, 1)
			if got := wsEchoBytes(t, c, payload, 1000); !bytes.Equal(got, payload) {
				t.Fatalf("echo of %d bytes came back as %d different bytes", len(payload), len(got))
			}
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			c.Close()
			echo.waitOpen(t, 0) // the close reached websockify through the proxy
		})
	}
}

// wsEchoBytes sends payload in binary messages of up to size bytes while reading
// the echo back concurrently, and returns what came back (within 20s).
func wsEchoBytes(t *testing.T, c *websocket.Conn, payload []byte, size int) []byte {
	t.Helper()
	done := make(chan []byte, 1)
	go func() {
		var buf bytes.Buffer
		for buf.Len() < len(payload) {
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, msg, err := c.ReadMessage()
			if err != nil {
				break
			}
			buf.Write(msg)
		}
		done <- buf.Bytes()
	}()
	for off := 0; off < len(payload); off += size {
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.WriteMessage(websocket.BinaryMessage, payload[off:min(off+size, len(payload))]); err != nil {
			t.Fatalf("write at %d: %v", off, err)
		}
	}
	select {
	case b := <-done:
		return b
	case <-time.After(25 * time.Second):
		t.Fatal("echo not complete after 25s")
		return nil
	}
}

// startFcwu serves fcwu's site on kind ("nginx" or "ngxsockify").
func startFcwu(t *testing.T, kind string, frontend, apiAddr, wsAddr string) *Server {
	t.Helper()
	return startServer(t, kind, ServerOptions{HTTP: fcwuSite(t, frontend, apiAddr, wsAddr)})
}

// qemusSite is qemus/qemu's web/conf/nginx.conf
// (b/qemus-qemu-web-nginx.conf): the container's page server on port 8006,
// where /run/shm holds the boot status page (index.html, while QEMU
// starts) and the sockets of the console, status and audio WebSocket
// servers. Here shm is a temporary directory and only the listen port and
// that path change; the site is included in http{} as the image does.
func qemusSite(t *testing.T, shm string) string {
	t.Helper()
	conf := readCorpus(t, "b/qemus-qemu-web-nginx.conf")
	for _, want := range []string{"listen 8006 default_server;", "/run/shm"} {
		if !strings.Contains(conf, want) {
			t.Fatalf("corpus config changed: %q not found", want)
		}
	}
	return strings.NewReplacer("listen 8006 default_server;", "listen 127.0.0.1:{{PORT}} default_server;",
		"/run/shm", shm).Replace(conf)
}

// startUnixWebSocket serves WebSocket on the unix socket path, standing in
// for the image's console, status and audio servers: the first message
// names the path the request came with, then every message is echoed.
func startUnixWebSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		if err := c.WriteMessage(websocket.TextMessage, []byte("path "+r.URL.RequestURI())); err != nil {
			return
		}
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(typ, msg); err != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// TestProxyCorpusQemus serves qemus/qemu's page server on nginx and
// ngxsockify: noVNC from /usr/share/novnc through "try_files /index.html
// @vnc" when there is no boot status page, the status page while there is
// one ("if (-f ...) { break; }": the if block has no try_files, so other
// paths get 404), Cache-Control from a server-level if/set/add_header
// always, and the three WebSocket endpoints proxied to unix sockets with
// the URI part "/" (the location's prefix replaced).
func TestProxyCorpusQemus(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	if _, err := os.Stat(novncDir + "/vnc.html"); err != nil {
		requireTool(t, "novnc")
	}
	shm, err := os.MkdirTemp("", "qemus-shm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	if err := os.Chmod(shm, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"vnc-ws.sock", "status-ws.sock", "audio-ws.sock"} {
		startUnixWebSocket(t, filepath.Join(shm, s))
	}
	site := qemusSite(t, shm)
	servers := []*Server{startNginx(t, site), startNgxsockify(t, site)}
	for _, l := range strings.Split(servers[1].Output()+servers[1].ErrorLog(), "\n") {
		if strings.Contains(l, "not supported") {
			t.Errorf("ngxsockify refuses part of the corpus config: %s", l)
		}
	}
	vnc, err := os.ReadFile(novncDir + "/vnc.html")
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n"
	}
	compare := func(t *testing.T, raw string, want int, body string) {
		t.Helper()
		got := make([]corpusAnswer, len(servers))
		for i, s := range servers {
			got[i] = askCorpus(t, s, raw)
			if got[i].Status != want || !strings.Contains(got[i].Body, body) {
				t.Errorf("%s: status %d, want %d; body %.200q does not hold %.100q", s.Kind, got[i].Status, want, got[i].Body, body)
			}
		}
		if diff := cmp.Diff(got[0], got[1]); diff != "" {
			t.Errorf("answers differ (-nginx +ngxsockify):\n%s", diff)
		}
	}
	booting := "<html><body>Booting the VM...</body></html>\n"
	for _, step := range []struct {
		name   string
		status bool // the boot status page exists
		raw    string
		want   int
		body   string
	}{
		{"novnc page", false, get("/"), 200, string(vnc)},
		{"novnc module", false, get("/core/rfb.js"), 200, "RFB"},
		{"novnc missing", false, get("/nope.js"), 404, ""},
		{"msg.html no-store", false, get("/msg.html"), 404, ""},
		{"head", false, "HEAD /vnc.html HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n", 200, ""},
		{"status page", true, get("/"), 200, booting},
		// the if that matches has no try_files (nginx does not inherit
		// it): while the VM boots, only / answers, with the status page
		{"while booting, other paths", true, get("/core/rfb.js"), 404, ""},
		{"while booting, msg.html no-store", true, get("/msg.html"), 404, ""},
		{"websockify without upgrade", false, get("/websockify"), 0, ""},
	} {
		t.Run(step.name, func(t *testing.T) {
			page := filepath.Join(shm, "index.html")
			if step.status {
				if err := os.WriteFile(page, []byte(booting), 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				os.Remove(page)
			}
			want := step.want
			if want == 0 { // what nginx answers is the reference
				want = askCorpus(t, servers[0], step.raw).Status
			}
			compare(t, step.raw, want, step.body)
		})
	}

	payload := make([]byte, 256<<10)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		for _, ep := range []struct{ path, backend string }{
			{"/websockify", "path /"}, {"/websockify?token=x", "path /?token=x"}, {"/status", "path /"}, {"/audio", "path /"},
		} {
			t.Run(s.Kind+" "+ep.path, func(t *testing.T) {
				c, resp, err := wsDial(t, s, ep.path)
				if err != nil {
					status := 0
					if resp != nil {
						status = resp.StatusCode
					}
					t.Fatalf("dial: %v (HTTP %d)\n%s", err, status, tail(s.ErrorLog(), 10))
				}
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, first, err := c.ReadMessage(); err != nil || string(first) != ep.backend {
					t.Fatalf("first message %q (%v), want %q", first, err, ep.backend)
				}
				if got := wsEchoBytes(t, c, payload, 4096); !bytes.Equal(got, payload) {
					t.Fatalf("echo of %d bytes came back as %d different bytes", len(payload), len(got))
				}
			})
		}
	}
}
