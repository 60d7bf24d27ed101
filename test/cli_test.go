package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// runBin runs the ngxsockify binary with args and returns its combined
// output and exit code. The run is bounded: a process still running (or
// holding its output open) after 30s is killed and the test fails.
func runBin(t *testing.T, args ...string) (string, int) {
	t.Helper()
	bin := requireNgxsockify(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 2 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("run %v: no exit in 30s: %v\n%s", args, err, out.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), code
}

func TestCLIVersionHelpBadFlag(t *testing.T) {
	out, code := runBin(t, "-v")
	if code != 0 || !regexp.MustCompile(`^nginx version: nginx/1\.22\.1 \(ngxsockify/[0-9.]+\)\n$`).MatchString(out) {
		t.Errorf("-v: exit %d, %q", code, out)
	}
	out, code = runBin(t, "-h")
	if code != 0 || !strings.HasPrefix(out, "nginx version: nginx/1.22.1 (ngxsockify/") ||
		!strings.Contains(out, "-s signal") || !strings.Contains(out, "-g directives") || !strings.Contains(out, "-e filename") {
		t.Errorf("-h: exit %d, %q", code, out)
	}
	out, code = runBin(t, "-x")
	if code != 1 || !strings.Contains(out, `invalid option: "x"`) {
		t.Errorf("-x: exit %d, %q", code, out)
	}
	out, code = runBin(t, "-s", "bogus")
	if code != 1 || !strings.Contains(out, `invalid option: "-s bogus"`) {
		t.Errorf("-s bogus: exit %d, %q", code, out)
	}
}

// TestCLIFullVersion checks -V: nginx's first line (harnesses parse the
// version from it), SNI, and configure arguments that name only the modules
// ngxsockify has (nginx-tests' has_module reads them).
func TestCLIFullVersion(t *testing.T) {
	out, code := runBin(t, "-V")
	if code != 0 {
		t.Fatalf("-V: exit %d, %q", code, out)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "nginx version: nginx/1.22.1 (ngxsockify/") {
		t.Errorf("-V first line %q", lines[0])
	}
	if !strings.Contains(out, "\nTLS SNI support enabled\n") {
		t.Errorf("-V without SNI:\n%s", out)
	}
	// The TLS level tools gate on: nginx-tests' has("openssl:1.1.1") reads
	// "with OpenSSL 1.1.1", Test::Nginx::Socket and certbot "built with
	// OpenSSL X.Y.Z"; the same line says that no OpenSSL is inside.
	if !regexp.MustCompile(`built with OpenSSL 1\.1\.1 .*Go crypto/tls, no OpenSSL inside`).MatchString(out) {
		t.Errorf("-V TLS line:\n%s", out)
	}
	var configure string
	for _, l := range lines {
		if c, ok := strings.CutPrefix(l, "configure arguments: "); ok {
			configure = " " + c + " "
		}
	}
	for _, want := range []string{"--with-http_ssl_module", "--with-http_realip_module", "--with-http_auth_request_module", "--with-http_stub_status_module", "--with-http_secure_link_module", "--with-http_v2_module", "--with-debug"} {
		if !strings.Contains(configure, " "+want+" ") {
			t.Errorf("configure arguments lack %s: %q", want, configure)
		}
	}
	for _, absent := range []string{"--with-stream", "--with-mail", "--without-http_rewrite_module", "--without-http_map_module", "--without-http_access_module"} {
		if strings.Contains(configure, " "+absent) {
			t.Errorf("configure arguments have %s: %q", absent, configure)
		}
	}
}

// errorLogLineRE is one nginx error-log line at level emerg.
var errorLogLineRE = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[emerg\] \d+#\d+: `)

// TestCLIErrorLogFlag checks -e: a startup error goes to stderr and, in
// nginx's format, to the -e file (relative to the prefix); -e stderr
// writes no file; -e is the error log of a config without error_log.
func TestCLIErrorLogFlag(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "nginx.conf")
	os.WriteFile(main, []byte("events {}\nbogus on;\n"), 0o644)
	out, code := runBin(t, "-p", dir, "-c", "nginx.conf", "-e", "startup.log")
	msg := `unknown directive "bogus" in ` + main + ":2"
	if code != 1 || out != "ngxsockify: [emerg] "+msg+"\n" {
		t.Errorf("broken config: exit %d, %q", code, out)
	}
	logged, _ := os.ReadFile(filepath.Join(dir, "startup.log"))
	if !errorLogLineRE.Match(logged) || !strings.HasSuffix(string(logged), msg+"\n") || bytes.Count(logged, []byte("\n")) != 1 {
		t.Errorf("startup.log: %q", logged)
	}
	out, code = runBin(t, "-p", dir, "-c", "nginx.conf", "-e", "stderr")
	if code != 1 || out != "ngxsockify: [emerg] "+msg+"\n" {
		t.Errorf("-e stderr: exit %d, %q", code, out)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("-e stderr made a file: %v", entries)
	}

	// A config without error_log logs to the -e file.
	port := freePort(t)
	os.WriteFile(main, []byte(fmt.Sprintf("daemon off;\nmaster_process off;\nevents {}\nhttp { server { listen 127.0.0.1:%d; root %s/html; } }\n", port, dir)), 0o644)
	ls, err := launch(t, "ngxsockify", requireNgxsockify(t), []string{"-p", dir, "-c", "nginx.conf", "-e", "run.log"}, dir, []int{port})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := httpBody(t, ls.URL("/missing")); code != 404 {
		t.Errorf("GET /missing: %d", code)
	}
	waitFor(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "run.log"))
		return bytes.Contains(b, []byte(`[error]`)) && bytes.Contains(b, []byte(`/html/missing" failed`))
	}, "the 404 in the -e error log")
}

// TestCLIDaemon checks daemon on (the default when the config does not
// say): the command returns once a background process serves, that
// process wrote the pid file and answers, -s quit stops it; a second start
// on the same port fails with exit 1 and the bind error on stderr and in
// the error log.
func TestCLIDaemon(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	main := filepath.Join(dir, "nginx.conf")
	os.WriteFile(main, []byte(fmt.Sprintf(`pid %[1]s/nginx.pid;
master_process off;
error_log %[1]s/error.log info;
events {}
http { server { listen 127.0.0.1:%[2]d; location / { return 200 "daemon\n"; } } }
`, dir, port)), 0o644)
	pidFile := filepath.Join(dir, "nginx.pid")
	var pid int
	t.Cleanup(func() {
		if pid > 0 && alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("the daemon (pid %d) was still running at the end", pid)
		}
	})
	out, code := runBin(t, "-c", main)
	if code != 0 || out != "" {
		t.Fatalf("start: exit %d, %q", code, out)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("no pid file when the command returned: %v", err)
	}
	pid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
	if pid <= 0 || !ownsListener(pid, port) {
		t.Fatalf("pid file says %q; that process does not hold 127.0.0.1:%d", data, port)
	}
	if sid, _, _ := syscall.RawSyscall(syscall.SYS_GETSID, uintptr(pid), 0, 0); int(sid) != pid {
		t.Errorf("the daemon is not a session leader (sid %d)", sid)
	}
	if _, body := httpBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); body != "daemon\n" {
		t.Errorf("GET /: %q", body)
	}

	out, code = runBin(t, "-c", main)
	bindErr := fmt.Sprintf("bind() to 127.0.0.1:%d failed", port)
	if code != 1 || !strings.HasPrefix(out, "ngxsockify: [emerg] "+bindErr) {
		t.Errorf("second start: exit %d, %q", code, out)
	}
	logged, _ := os.ReadFile(filepath.Join(dir, "error.log"))
	if !regexp.MustCompile(`(?m)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[emerg\] \d+#\d+: ` + regexp.QuoteMeta(bindErr)).Match(logged) {
		t.Errorf("error.log lacks the bind error:\n%s", logged)
	}

	if out, code := runBin(t, "-c", main, "-s", "quit"); code != 0 {
		t.Fatalf("-s quit: exit %d, %q", code, out)
	}
	waitFor(t, func() bool { return !alive(pid) }, "the daemon to exit")
	if fileExists(pidFile) {
		t.Errorf("pid file left behind")
	}
}

// alive reports whether process pid exists and is not a zombie (a daemon's
// parent is whoever reaps orphans here, which may be slow to).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

// TestCLITestAndDump checks -t, -q and -T on a config with an include.
func TestCLITestAndDump(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "nginx.conf")
	os.WriteFile(main, []byte("events {}\nhttp {\n    include conf.d/*.conf;\n}\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "conf.d"), 0o755)
	inc := filepath.Join(dir, "conf.d", "vnc.conf")
	os.WriteFile(inc, []byte("server {\n    listen 127.0.0.1:1;\n    location /websockify { websockify_pass 127.0.0.1:5900; }\n    tcp_nopush on;\n}\n"), 0o644)

	out, code := runBin(t, "-t", "-c", main)
	want := "ngxsockify: [warn] \"tcp_nopush\" directive is ignored in " + inc + ":4\n" +
		"ngxsockify: the configuration file " + main + " syntax is ok\n" +
		"ngxsockify: configuration file " + main + " test is successful\n"
	if os.Geteuid() == 0 {
		// root without a user directive: nginx's default user serves
		want += "ngxsockify: serving as user nobody:nogroup (65534:65534) once the listeners and logs are open\n"
	}
	if code != 0 || out != want {
		t.Errorf("-t: exit %d\n got: %q\nwant: %q", code, out, want)
	}
	if out, code := runBin(t, "-t", "-q", "-c", main); code != 0 || out != "" {
		t.Errorf("-t -q: exit %d, %q", code, out)
	}
	out, code = runBin(t, "-T", "-q", "-c", main)
	if code != 0 || !strings.Contains(out, "# configuration file "+main+":\nevents {}") ||
		!strings.Contains(out, "# configuration file "+inc+":\nserver {") {
		t.Errorf("-T: exit %d, %q", code, out)
	}

	os.WriteFile(inc, []byte("server {\n    listen 127.0.0.1:1;\n    locaton / {}\n}\n"), 0o644)
	out, code = runBin(t, "-t", "-c", main)
	want = "ngxsockify: [emerg] unknown directive \"locaton\" in " + inc + ":3\n" +
		"ngxsockify: configuration file " + main + " test failed\n"
	if code != 1 || out != want {
		t.Errorf("-t broken: exit %d\n got: %q\nwant: %q", code, out, want)
	}
	out, code = runBin(t, "-t", "-c", main, "-g", "bogus on;")
	if code != 1 || !strings.Contains(out, "in "+inc+":3") {
		t.Errorf("-t -g: exit %d, %q", code, out)
	}
}

func TestCLIGlobalsError(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "nginx.conf")
	os.WriteFile(main, []byte("events {}\n"), 0o644)
	out, code := runBin(t, "-t", "-c", main, "-g", "bogus on;")
	if code != 1 || !strings.Contains(out, `[emerg] unknown directive "bogus" in command line`) {
		t.Errorf("exit %d, %q", code, out)
	}
}

// TestCLIDefaultConfig checks that the embedded default config passes -t
// and stays in the foreground (daemon off).
func TestCLIDefaultConfig(t *testing.T) {
	out, code := runBin(t, "-T")
	if code != 0 || !strings.Contains(out, "using the embedded default configuration") ||
		!strings.Contains(out, "websockify_pass 127.0.0.1:5900;") || !strings.Contains(out, "test is successful") ||
		!strings.Contains(out, "\ndaemon off;\n") {
		t.Errorf("exit %d, %q", code, out)
	}
}

// echoTarget is a TCP echo server on loopback standing in for a VNC server.
func echoTarget(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveEcho(t, ln)
	return ln.Addr().String()
}

// serveEcho echoes every connection ln accepts until the test ends.
func serveEcho(t *testing.T, ln net.Listener) {
	serveOn(t, ln, func(c net.Conn) { io.Copy(c, c) })
}

func wsEcho(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.BinaryMessage, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	var got []byte
	for len(got) < len(msg) {
		_, p, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read after %q: %v", got, err)
		}
		got = append(got, p...)
	}
	if string(got) != msg {
		t.Fatalf("echo %q, want %q", got, msg)
	}
}

func httpBody(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestCLISignals drives -s reload, reopen and quit through the pid file,
// and checks that a running tunnel survives a reload and a broken config.
func TestCLISignals(t *testing.T) {
	target := echoTarget(t)
	conf := func(version string) string {
		return `access_log {{DIR}}/access.log;
server {
    listen 127.0.0.1:{{PORT}};
    location = /v { return 200 "` + version + `"; }
    location /websockify { websockify_pass ` + target + `; }
}`
	}
	s := startServer(t, "ngxsockify", ServerOptions{HTTP: conf("one")})
	sig := func(name string) {
		t.Helper()
		if out, code := runBin(t, "-p", s.Dir, "-c", s.Conf, "-s", name); code != 0 {
			t.Fatalf("-s %s: exit %d, %s", name, code, out)
		}
	}
	if _, body := httpBody(t, s.URL("/v")); body != "one" {
		t.Fatalf("before reload: %q", body)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr+"/websockify", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	wsEcho(t, ws, "before reload")

	rewrite := func(text string) {
		t.Helper()
		main, err := os.ReadFile(s.Conf)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(main, []byte("http {"))
		full := string(main[:i]) + "http {\n" + expand(text, s.Dir, s.Ports) + "\n}\n"
		if err := os.WriteFile(s.Conf, []byte(full), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rewrite(conf("two"))
	sig("reload")
	waitFor(t, func() bool { _, b := httpBody(t, s.URL("/v")); return b == "two" }, "reload to take effect")
	wsEcho(t, ws, "after reload")

	// A broken config is refused; the old one stays. (-s reload itself
	// would refuse to run on it, as nginx's does, so signal directly.)
	rewrite("server { listen 127.0.0.1:{{PORT}}; location / { bogus; } }")
	if err := s.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(s.ErrorLog(), `unknown directive "bogus"`) }, "the error log to report the broken config")
	if _, body := httpBody(t, s.URL("/v")); body != "two" {
		t.Fatalf("after broken reload: %q", body)
	}
	wsEcho(t, ws, "after broken reload")
	rewrite(conf("two"))

	// reopen: the renamed access log stops growing, a new one is made.
	logPath := filepath.Join(s.Dir, "access.log")
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	sig("reopen")
	waitFor(t, func() bool { return fileExists(logPath) }, "reopen to create a new access.log")
	httpBody(t, s.URL("/v"))
	waitFor(t, func() bool { b, _ := os.ReadFile(logPath); return bytes.Contains(b, []byte(`"GET /v HTTP/1.1" 200 3`)) }, "the request in the new access.log")

	// quit is graceful, as nginx's: no new connection is accepted, the
	// tunnel runs on until it ends, then the process exits.
	sig("quit")
	waitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, "the listener to close after -s quit")
	wsEcho(t, ws, "after quit")
	if s.Exited() {
		t.Fatal("the process exited with a tunnel open")
	}
	ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(5*time.Second))
	waitFor(t, s.Exited, "the process to exit after -s quit and the tunnel's end")
	s.Stop() // the exit was asked for
	if s.waitErr != nil {
		t.Errorf("exit after -s quit: %v", s.waitErr)
	}
	if fileExists(filepath.Join(s.Dir, "nginx.pid")) {
		t.Errorf("pid file left behind after -s quit")
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCLIDefaultPidFile: without a pid directive the pid file is nginx's
// compiled-in default, logs/nginx.pid under the prefix, so -s works.
func TestCLIDefaultPidFile(t *testing.T) {
	bin := requireNgxsockify(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	conf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("daemon off;\nmaster_process off;\nevents {}\nhttp {\n access_log off;\n server { listen 127.0.0.1:%d; return 200 ok; }\n}\n", port)), 0o644)
	cmd := exec.Command(bin, "-p", dir, "-c", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	pidFile := filepath.Join(dir, "logs", "nginx.pid")
	waitFor(t, func() bool {
		b, _ := os.ReadFile(pidFile)
		return strings.TrimSpace(string(b)) == strconv.Itoa(cmd.Process.Pid)
	}, "logs/nginx.pid")
	if out, code := runBin(t, "-p", dir, "-c", conf, "-s", "quit"); code != 0 {
		t.Fatalf("-s quit: exit %d, %s", code, out)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("-s quit did not stop the server")
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left after quit: %v", err)
	}
}

// TestCLIDumpMatchesNginx compares `-T -p DIR/ -c nginx.conf`, run from
// another directory, with real nginx: the dump's bytes (each file as it is,
// one line feed after it, even when the file lacks a final one) and, once an
// include is missing, the name in "configuration file ... test failed"
// (-p joined with the relative -c).
func TestCLIDumpMatchesNginx(t *testing.T) {
	nginx := requireNginx(t)
	bin := requireNgxsockify(t)
	dir := t.TempDir()
	files := map[string]string{
		"nginx.conf": "daemon off;\ninclude inc.conf;\ninclude inc.conf;\nevents {}\nhttp {\n    map $args $x {\n        default 0;\n        include map.conf;\n    }\n}\n",
		"inc.conf":   "include inc2.conf;",
		"inc2.conf":  "#inc2.conf",
		"map.conf":   "#map.conf;\n",
	}
	for name, text := range files {
		os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644)
	}
	run := func(prog string) (stdout, stderr string, code int) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, prog, "-T", "-p", dir+"/", "-c", "nginx.conf",
			"-g", "pid "+dir+"/nginx.pid; error_log "+dir+"/error.log;")
		cmd.Dir = os.TempDir()
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", prog, err)
		}
		return o.String(), e.String(), code
	}
	wantOut, _, wantCode := run(nginx)
	gotOut, _, gotCode := run(bin)
	if gotCode != wantCode || gotOut != wantOut {
		t.Errorf("-T: exit %d, want %d\n got: %q\nwant: %q", gotCode, wantCode, gotOut, wantOut)
	}

	os.Remove(filepath.Join(dir, "inc.conf"))
	_, wantErr, _ := run(nginx)
	_, gotErr, gotCode := run(bin)
	lastLine := func(s string) string {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		_, msg, _ := strings.Cut(lines[len(lines)-1], ": ")
		return msg
	}
	if gotCode != 1 || lastLine(gotErr) != lastLine(wantErr) {
		t.Errorf("-T, include missing: exit %d\n got: %q\nwant: %q", gotCode, gotErr, wantErr)
	}
}
