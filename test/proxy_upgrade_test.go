package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// upgradedConn opens /up/upgrade through s (proxyConf's backend echoes
// after its 101) and checks one echo.
func upgradedConn(t *testing.T, s *Server) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, br, _ := upgradedConnHead(t, s)
	return c, br
}

// upgradedConnHead is upgradedConn that also says how long the 101's head
// was.
func upgradedConnHead(t *testing.T, s *Server) (net.Conn, *bufio.Reader, int) {
	t.Helper()
	c, br, head := upgradeAt(t, s, "/up/upgrade")
	return c, br, len(head)
}

// upgradeAt upgrades a new connection to s with GET path (a proxy_pass to
// startProxyBackend's echo), checks an echo through it, and returns it
// with the 101's head.
func upgradeAt(t *testing.T, s *Server, path string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(15 * time.Second))
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	var head strings.Builder
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%s %s: reading the 101: %v", s.Kind, path, err)
		}
		head.WriteString(l)
		if l == "\r\n" {
			break
		}
	}
	upgradedEcho(t, c, br, "first")
	return c, br, head.String()
}

func upgradedEcho(t *testing.T, c net.Conn, br *bufio.Reader, msg string) {
	t.Helper()
	io.WriteString(c, msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
		t.Fatalf("echo %q: %q, %v", msg, got, err)
	}
}

// TestProxyUpgradeLog: the access-log line of an upgraded proxy_pass
// connection (101, $body_bytes_sent: the bytes after the 101) is written
// when it ends, the same on both servers; $bytes_sent adds the 101's head
// (whose Server line differs between the two).
func TestProxyUpgradeLog(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	be := startProxyBackend(t)
	conf := upgradeLogConf + proxyConf(t, be)
	var lines [2]string
	for i, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: conf})
		c, br, head := upgradedConnHead(t, s)
		upgradedEcho(t, c, br, "second")
		path := filepath.Join(s.Dir, "access.log")
		if log, _ := os.ReadFile(path); len(log) != 0 {
			t.Errorf("%s: logged before the end: %q", kind, log)
		}
		c.Close()
		waitFor(t, func() bool { log, _ := os.ReadFile(path); return len(log) > 0 }, kind+"'s access-log line")
		log, _ := os.ReadFile(path)
		line, sent, _ := strings.Cut(strings.TrimSuffix(string(log), "\n"), " sent=")
		if want := strconv.Itoa(head + 11); sent != want {
			t.Errorf("%s: $bytes_sent %q, want %s (a %d-byte head and 11 bytes after it)", kind, sent, want, head)
		}
		lines[i] = line + "\n"
	}
	if want := "GET /up/upgrade HTTP/1.1 101 11\n"; lines[0] != want || lines[1] != lines[0] {
		t.Errorf("access.log lines: nginx %q, ngxsockify %q; want %q", lines[0], lines[1], want)
	}
}

// TestProxyUpgradeEndsRequest: an upgraded proxy_pass connection is a
// request until it ends, the same on both servers, although ngxsockify's
// handler returns once the relay runs: limit_conn counts it (a second
// upgrade is refused with 503 meanwhile, a third one after its end is
// let through), and its $upstream_response_time spans the connection.
func TestProxyUpgradeEndsRequest(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	be := startProxyBackend(t)
	conf := `limit_conn_zone $remote_addr zone=one:1m;
limit_conn one 1;
log_format up "$status $upstream_response_time";
access_log {{DIR}}/access.log up;
` + proxyConf(t, be)
	const upgrade = "GET /up/upgrade HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"
	const held = 300 * time.Millisecond
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: conf})
		c, _ := upgradedConn(t, s)
		if r, err := rawRequest(s.Addr, upgrade, 5*time.Second); err != nil || r.Status != 503 {
			t.Errorf("%s: a second upgrade while the first runs: %+v %v, want 503", kind, r, err)
		}
		time.Sleep(held)
		c.Close()
		path := filepath.Join(s.Dir, "access.log")
		waitFor(t, func() bool { log, _ := os.ReadFile(path); return strings.Count(string(log), "\n") >= 2 }, kind+"'s access-log line of the upgrade")
		upgradedConn(t, s) // limit_conn lets it through now
		log, _ := os.ReadFile(path)
		lines := strings.Split(string(log), "\n")
		var secs float64
		if _, err := fmt.Sscanf(lines[1], "101 %g", &secs); err != nil || secs < held.Seconds() || secs > 10 {
			t.Errorf("%s: access.log %q: the upgrade's line should be \"101 <seconds>\" with at least %v", kind, log, held)
		}
		if lines[0] != "503 -" {
			t.Errorf("%s: access.log %q: the refused upgrade's line should be \"503 -\"", kind, log)
		}
	}
}

const upgradeLogConf = `log_format up "$request $status $body_bytes_sent sent=$bytes_sent";
access_log {{DIR}}/access.log up;
`

// TestProxyUpgradeQuit: an upgraded proxy_pass connection is one of the
// tunnels a graceful stop waits for: on SIGQUIT it runs on until
// worker_shutdown_timeout closes it, then the process exits. (nginx's
// worker does the same with an active request; the harness runs nginx as
// a single process, which exits at once, so this is ngxsockify's alone.)
func TestProxyUpgradeQuit(t *testing.T) {
	be := startProxyBackend(t)
	s := startServer(t, "ngxsockify", ServerOptions{Main: "worker_shutdown_timeout 2s;\n" + wrapHTTP(proxyConf(t, be))})
	c, br := upgradedConn(t, s)
	begin := time.Now()
	s.Signal(syscall.SIGQUIT)
	waitFor(t, func() bool { return procRefused(s) }, "the listener to close")
	// echoes every 300 ms keep the connection under proxy_read_timeout (1s)
	// until worker_shutdown_timeout closes it
	msg := []byte("during the quit")
	got := make([]byte, len(msg))
	for i := 0; ; i++ {
		if _, err := c.Write(msg); err != nil {
			break
		}
		if _, err := io.ReadFull(br, got); err != nil {
			if i == 0 {
				t.Fatalf("no echo after SIGQUIT: %v", err)
			}
			break
		}
		if string(got) != string(msg) {
			t.Fatalf("echo %q, want %q", got, msg)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if d := time.Since(begin); d < 1800*time.Millisecond || d > 8*time.Second {
		t.Errorf("closed %v after SIGQUIT, want worker_shutdown_timeout (2s)", d)
	}
	waitFor(t, s.Exited, "the process to exit")
	s.Stop()
	if !strings.Contains(s.ErrorLog(), "1 tunnels stay open until they end") {
		t.Errorf("error.log:\n%s", s.ErrorLog())
	}
}
