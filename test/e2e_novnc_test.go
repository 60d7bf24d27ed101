package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
)

// The end-to-end test: Debian noVNC's vnc_lite.html in headless Debian
// chromium, served by ngxsockify (static files from /usr/share/novnc), whose
// websockify_pass relays to a real Xvnc painted #336699 by xsetroot. It
// checks noVNC's status text and the colour of the canvas pixels.
//
// NGX_E2E_TARGET=websockify runs the same browser checks against Python
// websockify (--web /usr/share/novnc) instead, to validate the test itself.

const (
	novncDir    = "/usr/share/novnc"
	chromiumBin = "/usr/bin/chromium"
	// desktopColour is what `xsetroot -solid '#336699'` paints.
	desktopColour = "#336699"
	e2eTimeout    = 90 * time.Second
)

// startXvnc starts Xvnc on a free display (tried from :51 + pid%40 upwards)
// listening on 127.0.0.1:5900+N only, with no authentication, and paints its
// root window desktopColour. It returns the display number and the server.
func startXvnc(t *testing.T) (int, *Server) {
	t.Helper()
	xvnc := requireTool(t, "Xvnc")
	xsetroot := requireTool(t, "xsetroot")
	first := 51 + os.Getpid()%40
	var lastErr error
	for i := 0; i < 10; i++ {
		n := 51 + (first-51+i*7)%49
		if !displayFree(n) {
			continue
		}
		dir := t.TempDir()
		args := []string{fmt.Sprintf(":%d", n), "-interface", "127.0.0.1", "-nolisten", "tcp",
			"-SecurityTypes", "None", "-geometry", "800x600", "-depth", "24"}
		s, err := launch(t, "Xvnc", xvnc, args, dir, []int{5900 + n})
		if err != nil {
			lastErr = err
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, xsetroot, "-display", fmt.Sprintf(":%d", n), "-solid", desktopColour).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("xsetroot on :%d: %v\n%s\n--- Xvnc output ---\n%s", n, err, out, s.Output())
		}
		return n, s
	}
	t.Fatalf("no Xvnc display could start; last error: %v", lastErr)
	return 0, nil
}

// displayFree reports whether X display n looks unused: no lock file, no
// socket, and its VNC port free on 127.0.0.1.
func displayFree(n int) bool {
	for _, p := range []string{fmt.Sprintf("/tmp/.X%d-lock", n), fmt.Sprintf("/tmp/.X11-unix/X%d", n)} {
		if _, err := os.Stat(p); err == nil {
			return false
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(5900+n)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// novncConfig is the http{} body ngxsockify serves: noVNC's files, the
// websockify endpoint vnc_lite.html connects to by default, and /signed,
// where a Lua hook checks a token and chooses the target from the query.
func novncConfig(vncPort int) string {
	return fmt.Sprintf(`
    types {
        text/html                html;
        application/javascript   js;
        text/css                 css;
        image/svg+xml            svg;
        image/png                png;
        application/json         json;
    }
    server {
        listen 127.0.0.1:{{PORT}};
        location /websockify { websockify_pass 127.0.0.1:%d; }
        location /signed {
            set $vnc_addr '';
            access_by_lua_block {
                local args = ngx.req.get_uri_args()
                if args.token ~= "s3cret" then
                    ngx.exit(ngx.HTTP_FORBIDDEN)
                end
                ngx.var.vnc_addr = "127.0.0.1:" .. (args.port or "5900")
            }
            websockify_pass $vnc_addr;
        }
        location / { root %s; }
    }
`, vncPort, novncDir)
}

// startPythonWebsockify runs Python websockify serving noVNC and relaying to
// vncPort: the stand-in target selected by NGX_E2E_TARGET=websockify.
func startPythonWebsockify(t *testing.T, vncPort int) *Server {
	t.Helper()
	bin := requireTool(t, "websockify")
	var lastErr error
	for i := 0; i < 3; i++ {
		port := freePort(t)
		args := []string{"--web", novncDir, fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", vncPort)}
		s, err := launch(t, "websockify", bin, args, t.TempDir(), []int{port})
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return nil
}

// newBrowser starts headless chromium with a fresh profile; the browser
// lives until ctx ends or the test's cleanup runs.
func newBrowser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumBin); err != nil {
		requireTool(t, "chromium")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumBin),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 768),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	return bctx
}

// canvasProbe is the result of the canvas check run in the page.
type canvasProbe struct {
	Width, Height int
	Samples, Hits int
	First         []int // RGBA of the first sample
}

// canvasJS samples the noVNC canvas (about 600 pixels on a grid) and
// reports how many have the desktop colour; false while there is no canvas
// with a framebuffer yet or under 90% of the samples match.
const canvasJS = `(() => {
  const c = document.querySelector('#screen canvas, #noVNC_container canvas');
  if (!c || c.width < 100 || c.height < 100) return false;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let samples = 0, hits = 0, first = null;
  for (let y = 5; y < c.height; y += Math.floor(c.height / 24)) {
    for (let x = 5; x < c.width; x += Math.floor(c.width / 24)) {
      const i = (y * c.width + x) * 4;
      if (first === null) first = [d[i], d[i+1], d[i+2], d[i+3]];
      samples++;
      if (d[i] === 0x33 && d[i+1] === 0x66 && d[i+2] === 0x99 && d[i+3] === 255) hits++;
    }
  }
  if (hits < samples * 0.9) return false;
  return {Width: c.width, Height: c.height, Samples: samples, Hits: hits, First: first};
})()`

// novncScenario is one page load in TestNoVNCEndToEnd.
type novncScenario struct {
	name    string
	page    string // path and query of the page
	connect bool   // noVNC must connect and show the desktop; else it must fail
	ours    bool   // needs ngxsockify's config (skipped for Python websockify)
	refuse  string // for a failing scenario: a WebSocket path that must get 403
	full    bool   // the page is vnc.html (full client) rather than vnc_lite.html
}

// TestNoVNCEndToEnd drives noVNC through the websockify relay to Xvnc: the
// plain /websockify location, a tg123-style signed location (Lua checks a
// token and picks the target through a variable, the query travelling in
// noVNC's path= parameter), the same with a wrong token, and the full
// client vnc.html with autoconnect on the signed location.
func TestNoVNCEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end browser test skipped in -short mode")
	}
	target := os.Getenv("NGX_E2E_TARGET")
	if target == "" || target == "ngxsockify" {
		requireNgxsockify(t) // before starting Xvnc and the browser
	}
	display, xvnc := startXvnc(t)
	vncPort := 5900 + display

	var front *Server
	switch target {
	case "", "ngxsockify":
		front = startNgxsockify(t, novncConfig(vncPort))
	case "websockify":
		front = startPythonWebsockify(t, vncPort)
	default:
		t.Fatalf("NGX_E2E_TARGET=%q: want ngxsockify or websockify", target)
	}

	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	// The first context owns the browser; each page runs in a tab of its
	// own, so closing that tab is what a user closing noVNC does.
	root := newBrowser(t, ctx)
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	wsPath := func(token string) string { return fmt.Sprintf("signed?token=%s&port=%d", token, vncPort) }
	signed := func(token string) string { return "/vnc_lite.html?path=" + url.QueryEscape(wsPath(token)) }
	scenarios := []novncScenario{
		{"plain", "/vnc_lite.html", true, false, "", false},
		{"signed", signed("s3cret"), true, true, "", false},
		{"wrong token", signed("wrong"), false, true, "/" + wsPath("wrong"), false},
		{"full client signed", "/vnc.html?autoconnect=1&path=" + url.QueryEscape(wsPath("s3cret")), true, true, "", true},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			if sc.ours && front.Kind != "ngxsockify" {
				t.Skip("needs ngxsockify's config")
			}
			runNoVNCScenario(t, root, front, xvnc, vncPort, sc)
		})
	}
}

func runNoVNCScenario(t *testing.T, root context.Context, front, xvnc *Server, vncPort int, sc novncScenario) {
	browser, closeTab := chromedp.NewContext(root)
	defer closeTab()

	shot := filepath.Join(os.TempDir(), "ngxsockify-e2e-novnc-"+front.Kind+"-"+strings.ReplaceAll(sc.name, " ", "-")+".png")
	report := func(what string, err error) {
		t.Helper()
		status, _ := chromedp.Run(browser, chromedp.Evaluate[string](`(document.getElementById('status') || document.getElementById('noVNC_status') || {}).textContent || ''`))
		if png, serr := chromedp.Run(browser, chromedp.CaptureScreenshot()); serr == nil {
			_ = os.WriteFile(shot, png, 0o644)
		}
		t.Fatalf("%s: %v\nnoVNC status: %q (screenshot %s)\n--- %s output ---\n%s\n--- %s error.log ---\n%s\n--- Xvnc output ---\n%s",
			what, err, status, shot, front.Kind, tail(front.Output(), 40), front.Kind, tail(front.ErrorLog(), 40), tail(xvnc.Output(), 20))
	}

	page := front.URL(sc.page)
	if err := chromedp.Do(browser, chromedp.Navigate(page)); err != nil {
		report("navigate to "+page, err)
	}
	// vnc_lite.html shows "Connecting", then "Connected to <name>", or
	// "Disconnected" / "Something went wrong, connection is closed".
	// vnc.html marks the document noVNC_connected, or shows an error status.
	statusJS := `(() => { const s = document.getElementById('status').textContent; return /^(Connected|Disconnected|Something went wrong)/.test(s) ? s : false; })()`
	if sc.full {
		statusJS = `(() => {
			if (document.documentElement.classList.contains('noVNC_connected')) return 'Connected (vnc.html)';
			const s = document.getElementById('noVNC_status');
			if (s && s.classList.contains('noVNC_status_error')) return 'Something went wrong: ' + s.textContent;
			return false; })()`
	}
	status, err := chromedp.Run(browser, chromedp.Poll[string](statusJS,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		report("waiting for noVNC to connect or fail", err)
	}
	t.Logf("noVNC status: %q", status)
	if !sc.connect {
		if strings.HasPrefix(status, "Connected") {
			report("noVNC connected although the hook must refuse", errors.New(status))
		}
		if n := establishedTo(vncPort); n != 0 {
			t.Errorf("%d connection(s) to the VNC port after a refused handshake", n)
		}
		if sc.refuse != "" {
			c, resp, err := wsDial(t, front, sc.refuse)
			if err == nil {
				c.Close()
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Errorf("WebSocket handshake on %s: want 403 from the hook, got %v (%v)", sc.refuse, resp, err)
			}
		}
		return
	}
	if !strings.HasPrefix(status, "Connected") {
		report("noVNC did not connect", errors.New(status))
	}

	probe, err := chromedp.Run(browser, chromedp.Poll[canvasProbe](canvasJS,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		report("waiting for the canvas to show "+desktopColour, err)
	}
	if probe.Width != 800 || probe.Height != 600 {
		t.Errorf("canvas is %dx%d, want the Xvnc geometry 800x600", probe.Width, probe.Height)
	}
	t.Logf("canvas %dx%d: %d of %d samples are %s (first sample RGBA %v)", probe.Width, probe.Height, probe.Hits, probe.Samples, desktopColour, probe.First)

	png, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)

	// Closing the tab must end the tunnel: no established connection to
	// the VNC port remains, and the front end keeps running (its cleanup
	// checks that).
	if n := establishedTo(vncPort); n == 0 {
		t.Errorf("no established connection to the VNC port %d while noVNC is connected", vncPort)
	}
	closeTab()
	deadline := time.Now().Add(10 * time.Second)
	for establishedTo(vncPort) > 0 {
		if time.Now().After(deadline) {
			ss, _ := exec.Command("ss", "-tnp").CombinedOutput()
			t.Fatalf("%d connection(s) to the VNC port still established 10s after the tab closed\n%s", establishedTo(vncPort), ss)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// establishedTo counts ESTABLISHED IPv4 TCP sockets on this host whose
// remote port is port (the relay's side of each tunnel).
func establishedTo(port int) int {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return -1
	}
	suffix := fmt.Sprintf(":%04X", port)
	n := 0
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[2], suffix) && f[3] == "01" {
			n++
		}
	}
	return n
}

// echoServer is a TCP echo server on 127.0.0.1:0 standing in for a VNC
// server; it counts the connections that are still open.
type echoServer struct {
	ln    net.Listener
	mu    sync.Mutex
	open  int
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{ln: ln, conns: map[net.Conn]bool{}}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.open++
			e.conns[c] = true
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				_, _ = io.Copy(c, c)
				c.Close()
				e.mu.Lock()
				e.open--
				delete(e.conns, c)
				e.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		// Connections still open at the end are closed by the relay's stop;
		// wait for them with a bound.
		done := make(chan struct{})
		go func() { e.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("echo server: %d connection(s) still open 10s after the test", e.openConns())
		}
	})
	return e
}

func (e *echoServer) port() int { return e.ln.Addr().(*net.TCPAddr).Port }

func (e *echoServer) openConns() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.open
}

// closeAll closes every open connection, as a VNC server that quits.
func (e *echoServer) closeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for c := range e.conns {
		c.Close()
	}
}

// waitOpen waits up to 10s until the echo server has n open connections.
func (e *echoServer) waitOpen(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.openConns() != n {
		if time.Now().After(deadline) {
			t.Fatalf("echo server has %d open connection(s), want %d", e.openConns(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// relayFront starts the websockify front end selected by NGX_E2E_TARGET in
// front of targetPort: ngxsockify serves /websockify (and /refused, pointing
// at a closed port); Python websockify relays every path.
func relayFront(t *testing.T, targetPort int) *Server {
	t.Helper()
	switch target := os.Getenv("NGX_E2E_TARGET"); target {
	case "", "ngxsockify":
		closed := freePort(t)
		return startNgxsockify(t, fmt.Sprintf(`
    server {
        listen 127.0.0.1:{{PORT}};
        location /websockify { websockify_pass 127.0.0.1:%d; }
        location /refused { websockify_pass 127.0.0.1:%d; }
    }
`, targetPort, closed))
	case "websockify":
		bin := requireTool(t, "websockify")
		port := freePort(t)
		s, err := launch(t, "websockify", bin, []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", targetPort)}, t.TempDir(), []int{port})
		if err != nil {
			t.Fatal(err)
		}
		return s
	default:
		t.Fatalf("NGX_E2E_TARGET=%q: want ngxsockify or websockify", target)
		return nil
	}
}

func wsDial(t *testing.T, s *Server, path string, protocols ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: protocols}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.DialContext(ctx, "ws://"+s.Addr+path, nil)
}

// TestWebsockifyRelay checks the relay as a client sees it, through the
// binary: subprotocol choice, every byte of a 256 KiB random payload in
// messages of many sizes (binary and base64), refused targets, and that a
// client's close reaches the target.
func TestWebsockifyRelay(t *testing.T) {
	echo := startEcho(t)
	front := relayFront(t, echo.port())
	payload := make([]byte, 256<<10)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	sizes := []int{1, 2, 125, 126, 1000, 65535, 65536, 70000}

	// roundTrip sends payload in messages cycling through sizes, with a
	// reader collecting the echo concurrently, and compares the bytes.
	roundTrip := func(t *testing.T, c *websocket.Conn, encode bool) {
		t.Helper()
		got := make(chan []byte, 1)
		readErr := make(chan error, 1)
		go func() {
			var buf bytes.Buffer
			for buf.Len() < len(payload) {
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				typ, msg, err := c.ReadMessage()
				if err != nil {
					readErr <- fmt.Errorf("after %d bytes: %w", buf.Len(), err)
					return
				}
				if encode {
					if typ != websocket.TextMessage {
						readErr <- fmt.Errorf("base64: got message type %d, want text", typ)
						return
					}
					dec, err := base64.StdEncoding.DecodeString(string(msg))
					if err != nil {
						readErr <- fmt.Errorf("base64 frame from the relay: %v", err)
						return
					}
					msg = dec
				} else if typ != websocket.BinaryMessage {
					readErr <- fmt.Errorf("got message type %d, want binary", typ)
					return
				}
				buf.Write(msg)
			}
			got <- buf.Bytes()
		}()
		for off, i := 0, 0; off < len(payload); i++ {
			n := min(sizes[i%len(sizes)], len(payload)-off)
			chunk := payload[off : off+n]
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			var err error
			if encode {
				err = c.WriteMessage(websocket.TextMessage, []byte(base64.StdEncoding.EncodeToString(chunk)))
			} else {
				err = c.WriteMessage(websocket.BinaryMessage, chunk)
			}
			if err != nil {
				t.Fatalf("write at %d: %v", off, err)
			}
			off += n
		}
		select {
		case b := <-got:
			if !bytes.Equal(b, payload) {
				t.Fatalf("echoed %d bytes differ from the %d sent", len(b), len(payload))
			}
		case err := <-readErr:
			t.Fatalf("read: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatal("echo not complete after 20s")
		}
	}

	closeAndCheck := func(t *testing.T, c *websocket.Conn) {
		t.Helper()
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.Close()
		echo.waitOpen(t, 0)
	}

	cases := []struct {
		name      string
		protocols []string
		want      string // negotiated subprotocol
		encode    bool
		ours      bool // ngxsockify only: Python websockify 0.10 has no
		// base64 and does not trim "base64, binary"
	}{
		{"no subprotocol (noVNC >= 1.2)", nil, "", false, false},
		{"binary", []string{"binary"}, "binary", false, false},
		{"base64", []string{"base64"}, "base64", true, true},
		{"binary wins over base64", []string{"base64", "binary"}, "binary", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ours && front.Kind != "ngxsockify" {
				t.Skip("not supported by Python websockify 0.10")
			}
			c, resp, err := wsDial(t, front, "/websockify", tc.protocols...)
			if err != nil {
				status := 0
				if resp != nil {
					status = resp.StatusCode
				}
				t.Fatalf("dial: %v (HTTP %d)\n%s", err, status, tail(front.Output()+front.ErrorLog(), 20))
			}
			if got := c.Subprotocol(); got != tc.want {
				t.Errorf("subprotocol %q, want %q", got, tc.want)
			}
			echo.waitOpen(t, 1)
			roundTrip(t, c, tc.encode)
			closeAndCheck(t, c)
		})
	}

	t.Run("unsupported subprotocol is refused", func(t *testing.T) {
		c, resp, err := wsDial(t, front, "/websockify", "chat")
		if err == nil {
			c.Close()
			t.Fatal("handshake with only an unknown subprotocol succeeded")
		}
		if resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("want HTTP 400, got %v (%v)", resp, err)
		}
	})

	t.Run("target closes: client gets close 1000", func(t *testing.T) {
		if front.Kind != "ngxsockify" {
			t.Skip("close frames are ngxsockify's improvement over the C module")
		}
		c, _, err := wsDial(t, front, "/websockify")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		echo.waitOpen(t, 1)
		echo.closeAll()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err = c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
			t.Fatalf("want a close frame with code 1000, got %v", err)
		}
	})

	t.Run("refused target answers 502", func(t *testing.T) {
		if front.Kind != "ngxsockify" {
			t.Skip("Python websockify accepts and then closes")
		}
		c, resp, err := wsDial(t, front, "/refused")
		if err == nil {
			c.Close()
			t.Fatal("handshake to a refused target succeeded")
		}
		if resp == nil || resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("want HTTP 502, got %v (%v)", resp, err)
		}
	})
}
