package test

// Process tests (TestProc*): privileges (the user directive), graceful quit
// and fast stop, black box on 127.0.0.1. The binary upgrade under load is
// upgrade_test.go's.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// procStart runs kind ("nginx" or "ngxsockify") on the complete main
// config mainConf with only `-g daemon off;`, so that the config's own
// master_process applies (startServer turns it off). The directory is
// world-readable, as a served tree would be.
func procStart(t *testing.T, kind, mainConf string) *Server {
	t.Helper()
	bin := requireNgxsockify(t)
	if kind == "nginx" {
		bin = requireNginx(t)
	}
	dir := procPublicDir(t)
	ports := []int{freePort(t)}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(expand(mainConf, dir, ports)), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := launch(t, kind, bin, []string{"-p", dir + "/", "-c", conf, "-g", "daemon off;"}, dir, ports)
	if err != nil {
		t.Fatal(err)
	}
	s.Conf = conf
	return s
}

// procPublicDir is a temporary directory other users may enter (the
// testing package makes the directories above it root's only).
func procPublicDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// procStatus returns the Uid, Gid and Groups lines of /proc/PID/status.
func procStatus(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "Uid:") || strings.HasPrefix(line, "Gid:") || strings.HasPrefix(line, "Groups:") {
			out = append(out, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(out, "; ")
}

// procWorker is the process that serves: nginx's worker (the master's
// child), or ngxsockify itself.
func procWorker(t *testing.T, s *Server) int {
	t.Helper()
	pid := s.cmd.Process.Pid
	if s.Kind != "nginx" {
		return pid
	}
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	var child int
	fmt.Sscan(string(data), &child)
	if child == 0 {
		t.Fatalf("nginx master %d has no worker", pid)
	}
	return child
}

// TestProcUser: started as root with `user nobody nogroup;`, the process
// serves as nobody (all of uid, gid and groups), so /etc/shadow answers 403
// as nginx's worker does; without a user directive root drops to nginx's
// default user too.
func TestProcUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, userLine := range []string{"user nobody nogroup;\n", ""} {
		conf := userLine + `pid {{DIR}}/nginx.pid;
error_log {{DIR}}/error.log info;
events {}
http {
    access_log {{DIR}}/access.log;
    server {
        listen 127.0.0.1:{{PORT}};
        location = /shadow { alias /etc/shadow; }
        location = /ok { return 200 "ok\n"; }
    }
}
`
		var statuses []string
		for _, kind := range []string{"nginx", "ngxsockify"} {
			s := procStart(t, kind, conf)
			// Answered only once serving began, so after the drop (the
			// port accepts into its backlog before).
			ok, _ := httpBody(t, s.URL("/ok"))
			status := procStatus(t, procWorker(t, s))
			const want = "Uid: 65534 65534 65534 65534; Gid: 65534 65534 65534 65534; Groups: 65534"
			if status != want {
				t.Errorf("%s %q: %s, want %s", kind, userLine, status, want)
			}
			if kind == "ngxsockify" {
				// every thread, not only the main one
				tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", s.cmd.Process.Pid))
				for _, task := range tasks {
					tid, _ := strconv.Atoi(task.Name())
					if got := procStatus(t, tid); got != status {
						t.Errorf("thread %d: %s, want %s", tid, got, status)
					}
				}
				if len(tasks) < 2 {
					t.Errorf("%d threads: the check needs several", len(tasks))
				}
			}
			shadow, _ := httpBody(t, s.URL("/shadow"))
			statuses = append(statuses, fmt.Sprintf("%s: /shadow %d, /ok %d", kind, shadow, ok))
			if kind == "ngxsockify" {
				waitFor(t, func() bool {
					return strings.Contains(s.ErrorLog(), `open() "/etc/shadow" failed (13: Permission denied)`)
				}, "the refused open in the error log")
				// The log files are the user's: reopen works as nobody.
				if err := s.Signal(syscall.SIGUSR1); err != nil {
					t.Fatal(err)
				}
				waitFor(t, func() bool { return strings.Contains(s.ErrorLog(), "reopening logs") }, "the reopen")
				if strings.Contains(s.ErrorLog(), "[alert]") {
					t.Errorf("reopen as nobody failed:\n%s", s.ErrorLog())
				}
			}
			s.Stop()
		}
		if statuses[0] != "nginx: /shadow 403, /ok 200" || strings.TrimPrefix(statuses[1], "ngxsockify") != strings.TrimPrefix(statuses[0], "nginx") {
			t.Errorf("%q: %v, want 403 and 200 from both", userLine, statuses)
		}
	}
}

// TestProcLowPortHint: binding a port below 1024 without root fails with
// nginx's bind() error and a hint about CAP_NET_BIND_SERVICE.
func TestProcLowPortHint(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start the binary as nobody")
	}
	if data, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); strings.TrimSpace(string(data)) != "1024" {
		t.Skipf("ip_unprivileged_port_start is %q here", strings.TrimSpace(string(data)))
	}
	bin := requireNgxsockify(t)
	dir := procPublicDir(t)
	// The binary's own directory is root's only: run a copy.
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "ngxsockify")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(conf, []byte("daemon off;\npid off;\nerror_log stderr;\nevents {}\nhttp { access_log off; server { listen 127.0.0.1:1023; } }\n"), 0o644)
	cmd := exec.Command(bin, "-p", dir+"/", "-c", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want 1\n%s", err, out)
	}
	for _, want := range []string{"[emerg] bind() to 127.0.0.1:1023 failed", "permission denied", "failed (bind: permission denied): ports below 1024 need root or CAP_NET_BIND_SERVICE"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// procTunnel opens a tunnel through s to an echo target.
func procTunnel(t *testing.T, s *Server) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr+"/websockify", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	wsEcho(t, ws, "hello")
	return ws
}

// procRefused reports whether new connections to s are refused.
func procRefused(s *Server) bool {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err != nil
}

// TestProcQuitTimeout: on SIGQUIT the listener closes at once, the tunnel
// runs on until worker_shutdown_timeout, then gets a close frame (1001) and
// the process exits.
func TestProcQuitTimeout(t *testing.T) {
	target := echoTarget(t)
	s := startServer(t, "ngxsockify", ServerOptions{Main: "worker_shutdown_timeout 2s;\n" + wrapHTTP(`
server {
    listen 127.0.0.1:{{PORT}};
    location /websockify { websockify_pass `+target+`; }
}`)})
	ws := procTunnel(t, s)
	begin := time.Now()
	s.Signal(syscall.SIGQUIT)
	waitFor(t, func() bool { return procRefused(s) }, "the listener to close")
	wsEcho(t, ws, "during the quit")
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("at worker_shutdown_timeout: %v, want close 1001", err)
	}
	if d := time.Since(begin); d < 1500*time.Millisecond {
		t.Errorf("closed after %v, before worker_shutdown_timeout (2s)", d)
	}
	waitFor(t, s.Exited, "the process to exit")
	s.Stop()
	if !strings.Contains(s.ErrorLog(), "shutting down gracefully") ||
		!strings.Contains(s.ErrorLog(), "graceful shutdown ended (context deadline exceeded): closing 1 tunnels") {
		t.Errorf("error.log:\n%s", s.ErrorLog())
	}
}

// TestProcQuitAnswersOrRefuses: once a graceful quit begins, connections
// are refused, as nginx's workers close their listening sockets; one that
// raced the signal is answered, never accepted and then closed unanswered.
// (The connection layer went on accepting on a duplicate of the listening
// socket for 500 ms after SIGQUIT, and could drop what it took last.)
func TestProcQuitAnswersOrRefuses(t *testing.T) {
	target := echoTarget(t)
	s := startServer(t, "ngxsockify", ServerOptions{Main: "worker_shutdown_timeout 3s;\n" + wrapHTTP(`
server {
    listen 127.0.0.1:{{PORT}};
    location /websockify { websockify_pass `+target+`; }
    location / { return 200 "ok"; }
}`)})
	ws := procTunnel(t, s)
	s.Signal(syscall.SIGQUIT)
	waitFor(t, func() bool { return strings.Contains(s.ErrorLog(), "shutting down gracefully") }, "the quit to begin")
	refused, answered := 0, 0
	for end := time.Now().Add(800 * time.Millisecond); time.Now().Before(end); {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			refused++
			continue
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		_, werr := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if werr != nil || errors.Is(err, syscall.ECONNRESET) {
			// The kernel had completed the connection but it was still
			// queued when the listening socket closed: it is reset, as
			// nginx's are when its master and workers close theirs (the
			// write meets the reset, the read then EOF). Not accepted.
			refused++
			continue
		}
		if !strings.HasPrefix(line, "HTTP/1.1 200") {
			t.Fatalf("a connection accepted after SIGQUIT: %q, %v; want an answer or a refused connect", line, err)
		}
		answered++
	}
	// the listeners close right after the quit is logged: a connection
	// that raced it may still be answered, not hundreds
	if refused == 0 || answered > 5 {
		t.Errorf("after SIGQUIT: %d connections answered, %d refused; want them refused", answered, refused)
	}
	wsEcho(t, ws, "during the quit")
}

// TestProcTermDuringQuit: SIGTERM during a graceful quit stops at once:
// the tunnel gets 1001.
func TestProcTermDuringQuit(t *testing.T) {
	target := echoTarget(t)
	s := startServer(t, "ngxsockify", ServerOptions{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location /websockify { websockify_pass ` + target + `; }
}`})
	ws := procTunnel(t, s)
	s.Signal(syscall.SIGQUIT)
	waitFor(t, func() bool { return procRefused(s) }, "the listener to close")
	wsEcho(t, ws, "during the quit")
	s.Signal(syscall.SIGTERM)
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("at SIGTERM: %v, want close 1001", err)
	}
	waitFor(t, s.Exited, "the process to exit")
	s.Stop()
}

// TestProcReloadAfterDrop: after the user directive dropped root, a reload
// reads the configuration as that user; one that needs a port below 1024
// fails with the hint and the old configuration stays.
func TestProcReloadAfterDrop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if data, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); strings.TrimSpace(string(data)) != "1024" {
		t.Skipf("ip_unprivileged_port_start is %q here", strings.TrimSpace(string(data)))
	}
	conf := func(body, extra string) string {
		return `user nobody nogroup;
pid {{DIR}}/nginx.pid;
error_log {{DIR}}/error.log info;
events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:{{PORT}};
        ` + extra + `
        location = /v { return 200 "` + body + `"; }
    }
}
`
	}
	s := procStart(t, "ngxsockify", conf("one", ""))
	reload := func(text, wantLog string) {
		t.Helper()
		if err := os.WriteFile(s.Conf, []byte(expand(text, s.Dir, s.Ports)), 0o644); err != nil {
			t.Fatal(err)
		}
		s.Signal(syscall.SIGHUP)
		waitFor(t, func() bool { return strings.Contains(s.ErrorLog(), wantLog) }, wantLog)
	}
	reload(conf("two", ""), "reconfiguring done")
	if _, body := httpBody(t, s.URL("/v")); body != "two" {
		t.Errorf("after reload: %q", body)
	}
	reload(conf("three", "listen 127.0.0.1:1023;"), "reconfiguration failed")
	if _, body := httpBody(t, s.URL("/v")); body != "two" {
		t.Errorf("after the failed reload: %q", body)
	}
	if !strings.Contains(s.ErrorLog(), "CAP_NET_BIND_SERVICE") {
		t.Errorf("no hint in the error log:\n%s", s.ErrorLog())
	}
}

// TestProcQuitFinishesRequests: a request whose body is still arriving when
// SIGQUIT comes is answered in full, an idle keep-alive connection is
// closed, and the process exits after; as nginx's workers do (nginx with
// master_process off exits at once on QUIT; ngxsockify quits gracefully
// either way).
func TestProcQuitFinishesRequests(t *testing.T) {
	for _, kind := range []string{"nginx", "ngxsockify"} {
		t.Run(kind, func(t *testing.T) {
			s := procStart(t, kind, wrapHTTP(`
server {
    listen 127.0.0.1:{{PORT}};
    location /echo { content_by_lua_block { ngx.req.read_body() ngx.print(ngx.req.get_body_data()) } }
    location /ok { return 200 "ok"; }
}`))
			idle, err := net.DialTimeout("tcp", s.Addr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			idle.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(idle, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
			buf := make([]byte, 4096)
			if n, err := idle.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "200 OK") {
				t.Fatalf("keep-alive request: %q %v", buf[:n], err)
			}

			c, err := net.DialTimeout("tcp", s.Addr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
			time.Sleep(200 * time.Millisecond)
			s.Signal(syscall.SIGQUIT)
			time.Sleep(300 * time.Millisecond)
			if s.Exited() {
				t.Fatal("exited with a request under way")
			}
			fmt.Fprintf(c, "56789")
			resp, _ := io.ReadAll(c)
			if !strings.HasPrefix(string(resp), "HTTP/1.1 200 OK\r\n") || !strings.Contains(string(resp), "\r\nConnection: close\r\n") ||
				!strings.Contains(string(resp), "0123456789") {
				t.Errorf("request under way at quit: %q", resp)
			}
			t0 := time.Now()
			if n, err := idle.Read(buf); err == nil {
				t.Errorf("idle keep-alive connection still open at quit: read %q", buf[:n])
			}
			t.Logf("idle connection closed %v after the request", time.Since(t0))
			waitFor(t, s.Exited, "the process to exit")
			t.Logf("exit %v after the request", time.Since(t0))
			s.Stop()
		})
	}
}

// TestProcDaemonUser: daemon on with a user: the background process
// reports ready, serves as the user, and on -s quit leaves no stale pid
// (the pid file's directory is root's: the file is emptied).
func TestProcDaemonUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := procPublicDir(t)
	port := freePort(t)
	main := filepath.Join(dir, "nginx.conf")
	os.WriteFile(main, []byte(fmt.Sprintf(`user nobody nogroup;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events {}
http { access_log off; server { listen 127.0.0.1:%[2]d; location / { return 200 "daemon\n"; } } }
`, dir, port)), 0o644)
	var pid int
	t.Cleanup(func() {
		if pid > 0 && alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("the daemon (pid %d) was still running at the end", pid)
		}
	})
	if out, code := runBin(t, "-c", main); code != 0 {
		t.Fatalf("start: exit %d, %q", code, out)
	}
	pid = readPID(filepath.Join(dir, "nginx.pid"))
	if pid <= 0 {
		t.Fatal("no pid file")
	}
	if got := procStatus(t, pid); !strings.HasPrefix(got, "Uid: 65534 65534 65534 65534; Gid: 65534") {
		t.Errorf("daemon: %s", got)
	}
	if _, body := httpBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); body != "daemon\n" {
		t.Errorf("GET /: %q", body)
	}
	if out, code := runBin(t, "-c", main, "-s", "quit"); code != 0 {
		t.Fatalf("-s quit: exit %d, %q", code, out)
	}
	waitFor(t, func() bool { return !alive(pid) }, "the daemon to exit")
	if readPID(filepath.Join(dir, "nginx.pid")) != 0 {
		t.Error("the pid file still names the process")
	}
}
