package test

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// upgradeBackend answers every request with a 101 and then echoes.
func upgradeBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, ln, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if l == "\r\n" {
				break
			}
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(c, br)
	})
	return ln.Addr().String()
}

// reloadTunnelsConf is a whole main config: with master processes, so
// that nginx reloads as its old workers do; gen shows in /v which
// configuration answers.
func reloadTunnelsConf(kind, timeout, gen, backend, target string) string {
	ws := ""
	if kind == "ngxsockify" {
		ws = "location /websockify { websockify_pass " + target + "; }"
	}
	return timeout + `
pid {{DIR}}/nginx.pid;
error_log {{DIR}}/error.log info;
events {}
http {
    log_format t "$uri $status";
    access_log {{DIR}}/access.log t;
    server {
        listen 127.0.0.1:{{PORT}};
        location = /v { return 200 "` + gen + `"; }
        location /up {
            proxy_pass http://` + backend + `;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection upgrade;
            proxy_read_timeout 30s;
        }
        ` + ws + `
    }
}
`
}

// reloadTo writes conf to s's config file, sends SIGHUP and waits until
// /v answers gen.
func reloadTo(t *testing.T, s *Server, conf, gen string) {
	t.Helper()
	if err := os.WriteFile(s.Conf, []byte(expand(conf, s.Dir, s.Ports)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		r, err := rawRequest(s.Addr, "GET /v HTTP/1.0\r\n\r\n", time.Second)
		return err == nil && r.Status == 200 && r.Body == gen
	}, "the reload to "+gen)
}

// upgraded is a proxy_pass upgrade through s, echoing.
func upgraded(t *testing.T, s *Server) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /up HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "HTTP/1.1 101 ") {
		t.Fatalf("%s: the upgrade: %q %v", s.Kind, l, err)
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: the 101's head: %v", s.Kind, err)
		}
		if l == "\r\n" {
			break
		}
	}
	upgradedEcho(t, c, br, "first")
	return c, br
}

// upgradedOpen reports whether an upgraded connection still echoes.
func upgradedOpen(c net.Conn, br *bufio.Reader) bool {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		return false
	}
	got := make([]byte, 4)
	_, err := io.ReadFull(br, got)
	return err == nil && string(got) == "ping"
}

// upgradedClosed waits up to within for the server to close c, and says
// when it did (zero: it did not).
func upgradedClosed(c net.Conn, br *bufio.Reader, within time.Duration) time.Time {
	c.SetReadDeadline(time.Now().Add(within))
	_, err := br.ReadByte()
	if err == io.EOF || err != nil && strings.Contains(err.Error(), "reset") {
		return time.Now()
	}
	return time.Time{}
}

// wsOpen reports whether a websockify tunnel still echoes.
func wsOpen(ws *websocket.Conn) bool {
	ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	ws.SetWriteDeadline(time.Now().Add(3 * time.Second))
	if err := ws.WriteMessage(websocket.BinaryMessage, []byte("ping")); err != nil {
		return false
	}
	_, p, err := ws.ReadMessage()
	return err == nil && string(p) == "ping"
}

// TestReloadTunnels: after a reload, worker_shutdown_timeout closes the
// tunnels that started before it, as nginx's old workers close their
// connections, upgraded ones included, once it has passed: a proxied
// upgrade is closed, a websockify tunnel gets a close frame (1001;
// ngxsockify only: Debian's nginx has no websockify module), and each
// gets its access-log line; tunnels started after the reload go on.
// Without worker_shutdown_timeout in the configuration they started under,
// tunnels survive reloads (a reload to a configuration that sets it does
// not close them: the old worker's timer is its own configuration's), and
// a second reload does not move the first one's deadline. Differential
// for proxied upgrades: nginx runs with its master process here.
func TestReloadTunnels(t *testing.T) {
	backend := upgradeBackend(t)
	target := echoTarget(t)
	for _, kind := range []string{"nginx", "ngxsockify"} {
		conf := func(timeout, gen string) string {
			return reloadTunnelsConf(kind, timeout, gen, backend, target)
		}
		wsTunnel := func(s *Server) *websocket.Conn {
			if kind != "ngxsockify" {
				return nil
			}
			return procTunnel(t, s)
		}
		t.Run(kind+"/worker_shutdown_timeout", func(t *testing.T) {
			const timeout = time.Second
			s := procStart(t, kind, conf("worker_shutdown_timeout 1s;", "one"))
			oldUp, oldBR := upgraded(t, s)
			oldWS := wsTunnel(s)
			reloadTo(t, s, conf("worker_shutdown_timeout 1s;", "two"), "two")
			reloaded := time.Now()
			if kind == "nginx" {
				// a new worker answered /v, but nginx's master tells the
				// old ones to stop accepting only after starting the new
				// ones: a connection made at once can still reach an old one
				time.Sleep(200 * time.Millisecond)
			}
			newUp, newBR := upgraded(t, s)
			newWS := wsTunnel(s)

			closed := upgradedClosed(oldUp, oldBR, 6*time.Second)
			if closed.IsZero() {
				t.Fatalf("%s: the proxied upgrade older than the reload stayed open past worker_shutdown_timeout", kind)
			}
			if d := closed.Sub(reloaded); d < timeout*8/10 {
				t.Errorf("%s: the older proxied upgrade closed %v after the reload, before worker_shutdown_timeout (%v)", kind, d, timeout)
			}
			if oldWS != nil {
				oldWS.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _, err := oldWS.ReadMessage()
				if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
					t.Errorf("the older websockify tunnel: %v, want close 1001", err)
				}
			}
			if !upgradedOpen(newUp, newBR) {
				t.Errorf("%s: the proxied upgrade started after the reload was closed", kind)
			}
			if newWS != nil && !wsOpen(newWS) {
				t.Error("the websockify tunnel started after the reload was closed")
			}
			want := []string{"/up 101"}
			if kind == "ngxsockify" {
				want = append(want, "/websockify 101")
			}
			path := filepath.Join(s.Dir, "access.log")
			waitFor(t, func() bool {
				log, _ := os.ReadFile(path)
				for _, w := range want {
					if !strings.Contains(string(log), w+"\n") {
						return false
					}
				}
				return true
			}, kind+"'s access-log lines of the closed tunnels")
		})

		t.Run(kind+"/second_reload", func(t *testing.T) {
			const timeout = 2 * time.Second
			s := procStart(t, kind, conf("worker_shutdown_timeout 2s;", "one"))
			oldUp, oldBR := upgraded(t, s)
			reloadTo(t, s, conf("worker_shutdown_timeout 2s;", "two"), "two")
			reloaded := time.Now()
			time.Sleep(timeout * 6 / 10)
			reloadTo(t, s, conf("worker_shutdown_timeout 2s;", "three"), "three")
			closed := upgradedClosed(oldUp, oldBR, 6*time.Second)
			if closed.IsZero() {
				t.Fatalf("%s: the first generation's upgrade stayed open", kind)
			}
			// A reset deadline would close it at 3.2s.
			if d := closed.Sub(reloaded); d > timeout*14/10 {
				t.Errorf("%s: closed %v after the first reload: the second reload moved its worker_shutdown_timeout (%v)", kind, d, timeout)
			}
		})

		t.Run(kind+"/no_timeout", func(t *testing.T) {
			s := procStart(t, kind, conf("", "one"))
			oldUp, oldBR := upgraded(t, s)
			oldWS := wsTunnel(s)
			reloadTo(t, s, conf("", "two"), "two")
			reloadTo(t, s, conf("worker_shutdown_timeout 300ms;", "three"), "three")
			time.Sleep(time.Second)
			if !upgradedOpen(oldUp, oldBR) {
				t.Errorf("%s: a proxied upgrade did not survive reloads without worker_shutdown_timeout", kind)
			}
			if oldWS != nil && !wsOpen(oldWS) {
				t.Error("a websockify tunnel did not survive reloads without worker_shutdown_timeout")
			}
		})
	}
}
