package test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ngxBin is the ngxsockify binary built once by TestMain. It is set even when
// the build failed; requireNgxsockify reports the build output then.
var ngxBin string

// buildErr holds the failure of TestMain's build (with the compiler output),
// nil when ngxBin is usable.
var buildErr error

// nginxPath is where requireNginx looks first; PATH is searched after it.
const nginxPath = "/usr/sbin/nginx"

// luaModules are the load_module lines every generated main config starts
// with (headers-more after Lua, whose header filter then runs after its). ngxsockify accepts load_module and ignores it with a warning.
const luaModules = "load_module /usr/lib/nginx/modules/ndk_http_module.so;\n" +
	"load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;\n" +
	"load_module /usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so;\n"

// startTimeout bounds how long a server may take to accept connections.
const startTimeout = 30 * time.Second

// stopTimeout bounds a graceful stop before the process group is killed.
const stopTimeout = 5 * time.Second

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ngxsockify-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if bin := os.Getenv("NGX_TEST_BIN"); bin != "" {
		// A prebuilt binary (e.g. bin/ngxsockify), or a stand-in to test
		// the harness itself.
		if !filepath.IsAbs(bin) {
			bin = filepath.Join("..", bin) // relative to the module root
		}
		bin, _ = filepath.Abs(bin)
		ngxBin, buildErr = bin, nil
		if _, err := os.Stat(bin); err != nil {
			buildErr = fmt.Errorf("NGX_TEST_BIN: %v", err)
		}
		return m.Run()
	}
	ngxBin = filepath.Join(dir, "ngxsockify")
	buildErr = buildBinary(ngxBin)
	return m.Run()
}

// buildBinary runs `go build -o out ./cmd/ngxsockify` in the module root (the
// parent of this directory). NGX_TEST_BUILDFLAGS adds flags, e.g. "-race".
func buildBinary(out string) error {
	args := []string{"build", "-o", out}
	args = append(args, strings.Fields(os.Getenv("NGX_TEST_BUILDFLAGS"))...)
	args = append(args, "./cmd/ngxsockify")
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = ".."
	output, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, output)
	}
	return nil
}

// goTool is the go command: go on PATH, else Go's default install.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// requireNgxsockify returns ngxBin, or fails the test with the build output
// when TestMain could not build it.
func requireNgxsockify(t testing.TB) string {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("ngxsockify did not build:\n%v", buildErr)
	}
	return ngxBin
}

// requireNginx returns the path of real nginx (the oracle). When it is
// missing the test is skipped, or fails when CI=true.
func requireNginx(t testing.TB) string {
	t.Helper()
	path := nginxPath
	if _, err := os.Stat(path); err != nil {
		p, lerr := exec.LookPath("nginx")
		if lerr != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("nginx not found (%s, PATH) and CI=true: install nginx libnginx-mod-http-lua", nginxPath)
			}
			t.Skipf("nginx not found (%s, PATH): install nginx libnginx-mod-http-lua", nginxPath)
		}
		path = p
	}
	for m, pkg := range map[string]string{"ndk_http_module.so": "libnginx-mod-http-lua", "ngx_http_lua_module.so": "libnginx-mod-http-lua",
		"ngx_http_headers_more_filter_module.so": "libnginx-mod-http-headers-more-filter"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/nginx/modules", m)); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("nginx module %s missing and CI=true: install %s", m, pkg)
			}
			t.Skipf("nginx module %s missing: install %s", m, pkg)
		}
	}
	return path
}

// requireTool returns the path of an external program the test needs; it is
// skipped when missing, or fails when CI=true.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found and CI=true", name)
		}
		t.Skipf("%s not found", name)
	}
	return p
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago: it
// binds port 0, reads the port back and closes the listener.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("freePort: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freePorts returns n distinct ports as freePort does: the listeners stay
// open until all n are bound, so that the kernel cannot hand out one
// port twice (a config with a duplicate listen fails to load).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("freePorts: %v", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// wrapHTTP returns a complete main config around an http{} body: pid and
// error_log (level info) inside {{DIR}}, the Lua modules, events {} and
// http { body }. Placeholders are left for expand.
func wrapHTTP(httpBody string) string {
	return "pid {{DIR}}/nginx.pid;\n" +
		"error_log {{DIR}}/error.log info;\n" +
		luaModules +
		"events {}\n" +
		"http {\n" + httpBody + "\n}\n"
}

// expand substitutes {{DIR}} and {{PORT}}, {{PORT2}}, ... {{PORT<n>}}
// (ports[0] is {{PORT}}).
func expand(text, dir string, ports []int) string {
	text = strings.ReplaceAll(text, "{{DIR}}", dir)
	for i := len(ports) - 1; i >= 1; i-- { // {{PORT10}} before {{PORT1}}
		text = strings.ReplaceAll(text, "{{PORT"+strconv.Itoa(i+1)+"}}", strconv.Itoa(ports[i]))
	}
	if len(ports) > 0 {
		text = strings.ReplaceAll(text, "{{PORT}}", strconv.Itoa(ports[0]))
	}
	return text
}

// portsUsed reports how many port placeholders text uses ({{PORT}} = 1,
// {{PORT2}} = 2, ...).
func portsUsed(text string) int {
	n := 0
	if strings.Contains(text, "{{PORT}}") {
		n = 1
	}
	for i := 2; i <= 9; i++ {
		if strings.Contains(text, "{{PORT"+strconv.Itoa(i)+"}}") {
			n = i
		}
	}
	return n
}

// Server is one running nginx or ngxsockify process serving a generated
// config in its own temporary directory.
type Server struct {
	Addr  string // "127.0.0.1:port" of {{PORT}}
	Port  int    // {{PORT}}
	Ports []int  // {{PORT}}, {{PORT2}}, ... in order
	Dir   string // temporary prefix directory: config, pid, error.log, Files
	Conf  string // path of the main config file
	Kind  string // "nginx" or "ngxsockify"

	cmd     *exec.Cmd
	out     *syncBuffer // stdout and stderr of the process
	done    chan struct{}
	waitErr error
	stopped bool
	mu      sync.Mutex
}

// ServerOptions describes a server for startServer. Exactly one of HTTP and
// Main is set.
type ServerOptions struct {
	HTTP  string            // http{} body, wrapped by wrapHTTP
	Main  string            // or a complete main config (placeholders allowed)
	Files map[string]string // extra files relative to Dir (placeholders expanded)
	Args  []string          // extra command-line arguments
}

// startNginx runs real nginx (single process, daemon off) on httpBody; the
// test is skipped when nginx is missing (fails when CI=true).
func startNginx(t testing.TB, httpBody string) *Server {
	t.Helper()
	return startServer(t, "nginx", ServerOptions{HTTP: httpBody})
}

// startNgxsockify runs the built ngxsockify on httpBody; the test fails when
// the binary did not build.
func startNgxsockify(t testing.TB, httpBody string) *Server {
	t.Helper()
	return startServer(t, "ngxsockify", ServerOptions{HTTP: httpBody})
}

// startServer starts kind ("nginx" or "ngxsockify") with o in a fresh
// temporary directory, waits until {{PORT}} accepts connections on a socket
// owned by that process, and registers a cleanup that stops it and fails the
// test if the process had died, panicked or reported a data race. A bind
// collision on a port picked by freePort is retried with new ports.
func startServer(t testing.TB, kind string, o ServerOptions) *Server {
	t.Helper()
	var bin string
	switch kind {
	case "nginx":
		bin = requireNginx(t)
	case "ngxsockify":
		bin = requireNgxsockify(t)
	default:
		t.Fatalf("startServer: unknown kind %q", kind)
	}
	main := o.Main
	if main == "" {
		main = wrapHTTP(o.HTTP)
	}
	n := portsUsed(main)
	if n == 0 {
		t.Fatalf("startServer: config has no {{PORT}} placeholder to listen on")
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := tryStart(t, kind, bin, main, n, o)
		if err == nil {
			return s
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	t.Fatalf("%v", lastErr)
	return nil
}

var errAddrInUse = errors.New("address already in use")

func tryStart(t testing.TB, kind, bin, main string, nports int, o ServerOptions) (*Server, error) {
	t.Helper()
	dir := t.TempDir()
	ports := freePorts(t, nports)
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(expand(main, dir, ports)), 0o644); err != nil {
		return nil, err
	}
	for name, body := range o.Files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, []byte(expand(body, dir, ports)), 0o644); err != nil {
			return nil, err
		}
	}
	args := []string{"-p", dir + "/", "-c", conf}
	// Both stay in the foreground (ngxsockify, as nginx, defaults to daemon on).
	args = append(args, "-g", "daemon off; master_process off;")
	args = append(args, o.Args...)
	s, err := launch(t, kind, bin, args, dir, ports)
	if err != nil {
		return nil, err
	}
	s.Conf = conf
	return s, nil
}

// launch starts bin with args in dir (its own process group), waits until
// ports[0] accepts connections on a socket the process holds, and registers
// the cleanup described at startServer. It is the harness for any server
// process (nginx, ngxsockify, Xvnc, websockify). A start failure's error
// holds the command, its output and dir/error.log; it wraps errAddrInUse when
// the output says the address is in use.
func launch(t testing.TB, kind, bin string, args []string, dir string, ports []int) (*Server, error) {
	t.Helper()
	s := &Server{
		Addr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		Port:  ports[0],
		Ports: ports,
		Dir:   dir,
		Kind:  kind,
		out:   &syncBuffer{},
		done:  make(chan struct{}),
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Dir = dir
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", kind, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(); err != nil {
		s.Stop()
		msg := fmt.Sprintf("%s did not start: %v\ncommand: %s %s\n--- output ---\n%s\n--- error.log ---\n%s",
			kind, err, bin, strings.Join(args, " "), s.Output(), s.ErrorLog())
		if strings.Contains(strings.ToLower(s.Output()+s.ErrorLog()), "in use") {
			return nil, fmt.Errorf("%w: %s", errAddrInUse, msg)
		}
		return nil, errors.New(msg)
	}
	t.Cleanup(func() { s.cleanup(t) })
	return s, nil
}

// waitReady polls until the process owns a listening socket on s.Port and
// a connection to s.Addr succeeds, the process exits, or startTimeout passes.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	stranger := false
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("process exited: %v", s.waitErr)
		default:
		}
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			if ownsListener(s.cmd.Process.Pid, s.Port) {
				return nil
			}
			stranger = true
		}
		time.Sleep(20 * time.Millisecond)
	}
	if stranger {
		return fmt.Errorf("port %d answers, but from a socket the process does not hold (address in use by another process?)", s.Port)
	}
	return fmt.Errorf("port %d not accepting after %v", s.Port, startTimeout)
}

// ownsListener reports whether process pid (or a process in its process
// group, for nginx with a master) holds the listening socket on port, so a
// stranger that grabbed the port cannot pass for our server.
func ownsListener(pid, port int) bool {
	inodes := listenInodes(port)
	if len(inodes) == 0 {
		return false
	}
	if holdsSocket(pid, inodes) {
		return true
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if pg, err := syscall.Getpgid(p); err == nil && pg == pid && holdsSocket(p, inodes) {
			return true
		}
	}
	return false
}

// holdsSocket reports whether process pid has one of the socket inodes open.
func holdsSocket(pid int, inodes map[string]bool) bool {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err != nil {
			continue
		}
		if strings.HasPrefix(link, "socket:[") && inodes[strings.TrimSuffix(link[len("socket:["):], "]")] {
			return true
		}
	}
	return false
}

// listenInodes returns the socket inodes listening on port (IPv4 or IPv6).
func listenInodes(port int) map[string]bool {
	hexPort := fmt.Sprintf(":%04X", port)
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 {
				continue
			}
			// fields: sl local rem st tx:rx tr:tm retrnsmt uid timeout inode
			if strings.HasSuffix(fields[1], hexPort) && fields[3] == "0A" {
				inodes[fields[9]] = true
			}
		}
	}
	return inodes
}

// Output returns what the process wrote to stdout and stderr so far.
func (s *Server) Output() string { return s.out.String() }

// ErrorLog returns the contents of <Dir>/error.log ("" if absent).
func (s *Server) ErrorLog() string {
	data, _ := os.ReadFile(filepath.Join(s.Dir, "error.log"))
	return string(data)
}

// URL returns "http://<Addr><path>".
func (s *Server) URL(path string) string { return "http://" + s.Addr + path }

// Exited reports whether the process has ended.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process (e.g. syscall.SIGHUP for a reload test).
func (s *Server) Signal(sig syscall.Signal) error {
	return s.cmd.Process.Signal(sig)
}

// Stop ends the process: SIGTERM to its process group, then SIGKILL after
// stopTimeout. It is idempotent and safe to call before the cleanup runs.
func (s *Server) Stop() {
	s.mu.Lock()
	already := s.stopped
	s.stopped = true
	s.mu.Unlock()
	if already {
		<-s.done
		return
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
	// Leftover children of a master process.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

func (s *Server) cleanup(t testing.TB) {
	s.mu.Lock()
	diedEarly := !s.stopped && s.Exited()
	s.mu.Unlock()
	s.Stop()
	out := s.Output()
	switch {
	case diedEarly:
		t.Errorf("%s exited during the test (%v)\n--- output ---\n%s\n--- error.log (tail) ---\n%s",
			s.Kind, s.waitErr, out, tail(s.ErrorLog(), 40))
	case strings.Contains(out, "panic:") || strings.Contains(out, "WARNING: DATA RACE"):
		t.Errorf("%s reported a panic or data race:\n%s", s.Kind, out)
	}
}

// tail returns the last n lines of text.
func tail(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkConf runs `<bin> -t -p <dir>/ -c <dir>/nginx.conf` and returns its
// combined output and exit code. <dir> is a fresh directory holding an empty
// logs/, as startServer's does. mainConf is the complete main config text
// (see wrapHTTP; {{DIR}} and {{PORT...}} are expanded), or the path of an
// existing file, which is then used in place.
func checkConf(t testing.TB, bin string, mainConf string) (out string, exit int) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := mainConf
	if strings.ContainsAny(mainConf, "\n;{") || !fileExists(mainConf) {
		ports := freePorts(t, portsUsed(mainConf))
		conf = filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(expand(mainConf, dir, ports)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-t", "-p", dir+"/", "-c", conf)
	cmd.Dir = dir
	done := make(chan struct{})
	var output []byte
	var err error
	go func() {
		output, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s -t did not finish in 30s:\n%s", bin, output)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(output), 0
	case errors.As(err, &ee):
		return string(output), ee.ExitCode()
	default:
		t.Fatalf("run %s -t: %v", bin, err)
		return "", -1
	}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// rawResponse is a parsed reply to rawRequest.
type rawResponse struct {
	Status int
	Header http.Header
	Body   string
	Names  []string // the header names as the server spelled them, in order
}

// rawRequest sends raw (one HTTP/1.x request, CRLF line ends, sent as is) to
// addr over a fresh TCP connection and reads one response, all within
// timeout. The connection is closed afterwards. A "HEAD " request reads no
// body.
func rawRequest(addr, raw string, timeout time.Duration) (*rawResponse, error) {
	return rawRequestDrain(addr, raw, timeout, false)
}

// rawRequestDrain is rawRequest; with drain, after the response it also
// reads (and drops) what comes until the server closes the connection,
// within the same timeout.
func rawRequestDrain(addr, raw string, timeout time.Duration, drain bool) (*rawResponse, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, raw); err != nil {
		return nil, err
	}
	method := "GET"
	if strings.HasPrefix(raw, "HEAD ") {
		method = "HEAD"
	}
	var head bytes.Buffer // what ReadResponse consumed: the head, maybe more
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(c, &head)), &http.Request{Method: method})
	if err != nil {
		return nil, err
	}
	var names []string
	lines, _, _ := strings.Cut(head.String(), "\r\n\r\n")
	for _, l := range strings.Split(lines, "\r\n")[1:] {
		if name, _, ok := strings.Cut(l, ":"); ok {
			names = append(names, name)
		}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if drain {
		if _, err := io.Copy(io.Discard, c); err != nil {
			return nil, fmt.Errorf("waiting for the close: %w", err)
		}
	}
	return &rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: string(body), Names: names}, nil
}

// syncBuffer is a bytes.Buffer safe for the process's writes and our reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestHarnessNginx checks the harness itself against real nginx: the server
// starts, answers on {{PORT}}, serves a file from {{DIR}}, writes its error
// log there, and checkConf reports a bad config with nginx's wording.
func TestHarnessNginx(t *testing.T) {
	s := startServer(t, "nginx", ServerOptions{
		HTTP: `server {
	listen 127.0.0.1:{{PORT}};
	location = /hello { return 200 "hello $server_port"; }
	location /files/ { alias {{DIR}}/www/; }
	location = /lua { content_by_lua_block { ngx.say("lua ", ngx.var.uri) } }
}
server { listen 127.0.0.1:{{PORT2}}; return 200 "second"; }`,
		Files: map[string]string{"www/a.txt": "file in {{DIR}}"},
	})
	if s.Kind != "nginx" || len(s.Ports) != 2 {
		t.Fatalf("server %+v", s)
	}
	cases := []struct{ addr, path, want string }{
		{s.Addr, "/hello", fmt.Sprintf("hello %d", s.Port)},
		{s.Addr, "/files/a.txt", "file in " + s.Dir},
		{s.Addr, "/lua", "lua /lua\n"},
		{fmt.Sprintf("127.0.0.1:%d", s.Ports[1]), "/", "second"},
	}
	for _, c := range cases {
		r, err := rawRequest(c.addr, "GET "+c.path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5*time.Second)
		if err != nil {
			t.Fatalf("GET %s: %v", c.path, err)
		}
		if r.Status != 200 || r.Body != c.want {
			t.Errorf("GET %s = %d %q, want 200 %q", c.path, r.Status, r.Body, c.want)
		}
	}
	if !strings.Contains(s.ErrorLog(), "start worker process") && !strings.Contains(s.ErrorLog(), "using the") {
		t.Errorf("error.log does not look like nginx's at level info:\n%s", s.ErrorLog())
	}
	s.Stop()
	if !s.Exited() {
		t.Fatal("Stop returned but the process is still running")
	}
	if _, err := rawRequest(s.Addr, "GET / HTTP/1.0\r\n\r\n", time.Second); err == nil {
		t.Error("server still answers after Stop")
	}

	nginx := requireNginx(t)
	out, code := checkConf(t, nginx, wrapHTTP("server { listen 127.0.0.1:{{PORT}}; bogus_directive on; }"))
	if code == 0 || !strings.Contains(out, `unknown directive "bogus_directive" in `) {
		t.Errorf("checkConf(bad) = %d %q", code, out)
	}
	out, code = checkConf(t, nginx, wrapHTTP("server { listen 127.0.0.1:{{PORT}}; }"))
	if code != 0 || !strings.Contains(out, "test is successful") {
		t.Errorf("checkConf(good) = %d %q", code, out)
	}
}

// TestHarnessStartFailure checks that a config nginx refuses is reported
// with nginx's message rather than hanging until the timeout.
func TestHarnessStartFailure(t *testing.T) {
	nginx := requireNginx(t)
	_, err := tryStart(t, "nginx", nginx, wrapHTTP("server { listen 127.0.0.1:{{PORT}}; nope; }"), 1, ServerOptions{})
	if err == nil || !strings.Contains(err.Error(), `unknown directive "nope"`) {
		t.Fatalf("want start failure naming the directive, got %v", err)
	}
}

// TestHarnessPortTaken checks that a stranger listening on the port does not
// pass for our server: ownsListener must say no for a listener we hold.
func TestHarnessPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if !ownsListener(os.Getpid(), port) {
		t.Fatalf("ownsListener(self, %d) = false for our own listener", port)
	}
	other := exec.Command("sleep", "10")
	other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Process.Kill(); _ = other.Wait() }()
	if ownsListener(other.Process.Pid, port) {
		t.Fatalf("ownsListener(other, %d) = true for a listener that process does not hold", port)
	}
}

// TestHarnessNgxsockifyStarts checks that the built binary starts on a
// minimal config and answers a return directive.
func TestHarnessNgxsockifyStarts(t *testing.T) {
	s := startNgxsockify(t, `server { listen 127.0.0.1:{{PORT}}; location / { return 200 "up"; } }`)
	r, err := rawRequest(s.Addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 200 || r.Body != "up" {
		t.Errorf("GET / = %d %q, want 200 \"up\"", r.Status, r.Body)
	}
}

// portPlaceholder replaces port, as a whole number (not inside a longer
// run of letters or digits, such as a hex digest), with "{{PORT}}": the
// two servers of a differential test listen on different ports.
func portPlaceholder(v string, port int) string {
	p := strconv.Itoa(port)
	var b strings.Builder
	for {
		i := strings.Index(v, p)
		if i < 0 {
			b.WriteString(v)
			return b.String()
		}
		end := i + len(p)
		if (i > 0 && isAlnum(v[i-1])) || (end < len(v) && isAlnum(v[end])) {
			b.WriteString(v[:end])
		} else {
			b.WriteString(v[:i])
			b.WriteString("{{PORT}}")
		}
		v = v[end:]
	}
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// checkExample reads examples/<dir>/nginx.conf with its listener on
// {{PORT}} and checks that ngxsockify accepts it as is (-t) and, when
// Debian's nginx is here, that nginx accepts it once nginxOnly has taken
// out what only ngxsockify has (the websockify directives). It returns
// the config, for startServer. checkConf's prefix has no logs/ directory:
// the log files go to its top.
func checkExample(t *testing.T, dir string, nginxOnly func(string) string) string {
	t.Helper()
	bin := requireNgxsockify(t)
	data, err := os.ReadFile(filepath.Join("../examples", dir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	main := strings.Replace(string(data), "listen 127.0.0.1:6080;", "listen 127.0.0.1:{{PORT}};", 1)
	flat := strings.ReplaceAll(main, " logs/", " ")
	if out, code := checkConf(t, bin, flat); code != 0 {
		t.Fatalf("ngxsockify -t on the example failed (%d):\n%s", code, out)
	}
	if ngx := "/usr/sbin/nginx"; fileExists(ngx) {
		if out, code := checkConf(t, ngx, nginxOnly(flat)); code != 0 {
			t.Errorf("nginx -t on the example failed (%d):\n%s", code, out)
		}
	}
	return main
}
