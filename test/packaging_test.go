package test

import (
	"bufio"
	"context"
	"debug/elf"
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
)

// TestCLIHelpLikeNginx compares -h with `nginx -h`: the same version line
// shape, the same usage line, and every option nginx lists, with nginx's
// words up to the defaults (which are ngxsockify's own); then the long
// option nginx does not have.
func TestCLIHelpLikeNginx(t *testing.T) {
	nginx := requireNginx(t)
	want, err := exec.Command(nginx, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -h: %v", err)
	}
	got, code := runBin(t, "-h")
	if code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
	if alt, _ := runBin(t, "-?"); alt != got {
		t.Errorf("-? differs from -h:\n%s", alt)
	}
	gotLines := strings.Split(got, "\n")
	wantLines := strings.Split(string(want), "\n")
	if !strings.HasPrefix(gotLines[0], "nginx version: nginx/1.22.1 ") {
		t.Errorf("version line %q", gotLines[0])
	}
	if w := strings.Replace(wantLines[1], "nginx", "ngxsockify", 1); gotLines[1] != w {
		t.Errorf("usage line:\n got %q\nwant %q", gotLines[1], w)
	}
	noDefault := regexp.MustCompile(` \(default: [^)]*\)$`)
	for _, line := range wantLines {
		if !strings.HasPrefix(line, "  -") {
			continue
		}
		line = noDefault.ReplaceAllString(line, "")
		found := false
		for _, g := range gotLines {
			if noDefault.ReplaceAllString(g, "") == line {
				found = true
			}
		}
		if !found {
			t.Errorf("nginx's option line %q missing from -h", line)
		}
	}
	if !strings.Contains(got, "  --ignore-stream : ") || !strings.Contains(gotLines[3], "[--ignore-stream]") {
		t.Errorf("-h does not document --ignore-stream:\n%s", got)
	}
}

// TestIgnoreStreamFlag: stream{} and mail{} fail -t unless --ignore-stream,
// which turns them into a warning (and the daemon child gets the flag too,
// since it re-runs the same arguments).
func TestIgnoreStreamFlag(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	text := fmt.Sprintf("pid %[1]s/nginx.pid; error_log %[1]s/error.log;\nevents {}\nstream {\n    server { listen 127.0.0.1:%[2]d; proxy_pass 127.0.0.1:9; }\n}\nmail {\n}\nhttp { server { listen 127.0.0.1:%[3]d; } }\n",
		dir, freePort(t), freePort(t))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runBin(t, "-t", "-c", conf)
	if code != 1 || !strings.Contains(out, `[emerg] "stream" directive is not supported by ngxsockify (ngxsockify serves http only; --ignore-stream drops the block) in `+conf+":3") ||
		!strings.Contains(out, `"mail" directive is not supported by ngxsockify`) {
		t.Errorf("-t without --ignore-stream: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"--ignore-stream", "-t", "-c", conf}, {"-t", "-c", conf, "--ignore-stream"}} {
		out, code = runBin(t, args...)
		if code != 0 || !strings.Contains(out, `[warn] "stream" block is ignored (--ignore-stream): ngxsockify does not serve its listeners in `+conf+":3") ||
			!strings.Contains(out, `[warn] "mail" block is ignored (--ignore-stream)`) || !strings.Contains(out, "test is successful") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
}

// TestSdNotify is the systemd readiness protocol without systemd (no
// systemd runs in this container): a unix datagram socket in NOTIFY_SOCKET
// receives READY=1 once the listener accepts, RELOADING=1 (with
// MONOTONIC_USEC) and READY=1 around a SIGHUP reload, and STOPPING=1 on
// SIGTERM; a reload that fails still ends with READY=1; the new binary of
// a USR2 upgrade sends MAINPID= with its READY=1.
func TestSdNotify(t *testing.T) {
	bin := requireNgxsockify(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	// As root the server serves as nobody (nginx's default user), and
	// notifies from there: systemd's socket is writable by all, so is this.
	// The upgrade below runs as nobody too: it renames the pid file in dir
	// and starts the binary again, so both are within its reach.
	for d, mode := range map[string]os.FileMode{filepath.Dir(dir): 0o755, dir: 0o777} {
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "ngxsockify")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o777); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	conf := filepath.Join(dir, "nginx.conf")
	good := fmt.Sprintf("daemon off; pid %[1]s/nginx.pid; error_log %[1]s/error.log info;\nevents {}\nhttp { access_log off; server { listen 127.0.0.1:%[2]d; location / { return 200 \"up\\n\"; } } }\n", dir, port)
	if err := os.WriteFile(conf, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	next := func(what string) string {
		t.Helper()
		buf := make([]byte, 4096)
		pc.SetReadDeadline(time.Now().Add(15 * time.Second))
		n, err := pc.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v\noutput:\n%s\nerror log:\n%s", what, err, out.String(), readFile(filepath.Join(dir, "error.log")))
		}
		return string(buf[:n])
	}
	if msg := next("READY=1"); msg != "READY=1" {
		t.Fatalf("first message %q, want READY=1", msg)
	}
	// Ready means serving: the listener answers at once.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("GET after READY=1: %v", err)
	}
	resp.Body.Close()

	reload := func(label string) {
		t.Helper()
		cmd.Process.Signal(syscall.SIGHUP)
		msg := next("RELOADING=1")
		if !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[0-9]+\n$`).MatchString(msg) {
			t.Errorf("%s: message %q, want RELOADING=1 and MONOTONIC_USEC", label, msg)
		}
		if msg := next("READY=1 after reload"); msg != "READY=1" {
			t.Errorf("%s: message %q, want READY=1", label, msg)
		}
	}
	reload("good reload")

	// A binary upgrade: the new process, a child of this one, names itself
	// the main process as it becomes ready; stopped, it says so.
	cmd.Process.Signal(syscall.SIGUSR2)
	msg := next("MAINPID= and READY=1 from the new binary")
	m := regexp.MustCompile(`^MAINPID=([0-9]+)\nREADY=1$`).FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("after USR2: message %q, want MAINPID=<new pid> and READY=1", msg)
	}
	newPID, _ := strconv.Atoi(m[1])
	if newPID == cmd.Process.Pid {
		t.Fatalf("MAINPID=%d is the old process", newPID)
	}
	syscall.Kill(newPID, syscall.SIGTERM)
	if msg := next("STOPPING=1 from the new binary"); msg != "STOPPING=1" {
		t.Errorf("new binary at SIGTERM: message %q, want STOPPING=1", msg)
	}
	for i := 0; syscall.Kill(newPID, 0) == nil; i++ {
		if i > 200 {
			t.Fatalf("the new binary (%d) did not exit", newPID)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := os.WriteFile(conf, []byte("events {} http { bogus; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reload("failed reload")
	cmd.Process.Signal(syscall.SIGTERM)
	if msg := next("STOPPING=1"); msg != "STOPPING=1" {
		t.Errorf("message %q, want STOPPING=1", msg)
	}
	select {
	case <-done:
		done <- nil // for the deferred Wait
	case <-time.After(10 * time.Second):
		t.Error("no exit within 10s of SIGTERM")
	}
}

// TestStaticBinaryInEmptyRoot checks the container recipe's premise
// (examples/container/Dockerfile builds FROM scratch): a CGO_ENABLED=0
// build has no ELF interpreter and no dynamic section, and runs from a
// root holding nothing but itself and the container's nginx.conf, where it
// serves a request and writes its access log. Docker is not available
// here, so chroot stands in for the image (root only).
func TestStaticBinaryInEmptyRoot(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "ngxsockify")
	build := exec.Command(goTool(), "build", "-o", bin, "./cmd/ngxsockify")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("CGO_ENABLED=0 binary has a %v program header: not static", p.Type)
		}
	}
	f.Close()
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	chroot := requireTool(t, "chroot")
	data, err := os.ReadFile("../examples/container/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	conf := strings.Replace(string(data), "listen 6080;", fmt.Sprintf("listen 127.0.0.1:%d;", port), 1)
	if conf == string(data) {
		t.Fatal("examples/container/nginx.conf no longer has `listen 6080;`")
	}
	if err := os.MkdirAll(filepath.Join(root, "etc/ngxsockify"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/ngxsockify/nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// As the image's USER, 65534: as root it would need an /etc/passwd
	// naming nobody, the user it drops to (nginx's default).
	out, err := exec.Command(chroot, "--userspec=65534:65534", root, "/ngxsockify", "-t", "-c", "/etc/ngxsockify/nginx.conf").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "test is successful") {
		t.Fatalf("-t in the empty root: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chroot, "--userspec=65534:65534", root, "/ngxsockify", "-c", "/etc/ngxsockify/nginx.conf")
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	var body string
	for i := 0; ; i++ {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if i > 200 {
			t.Fatalf("no answer from the chrooted server: %v\n%s", err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if body != "ngxsockify\n" {
		t.Errorf("body %q", body)
	}
	// /dev/stdout is the process's standard output, as docker logs reads it.
	for i := 0; !strings.Contains(log.String(), `"GET / HTTP/1.1" 200`); i++ {
		if i > 100 {
			t.Fatalf("no access log line on stdout:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMakeInstall runs `make install` into a DESTDIR for both prefixes and
// checks the files, the unit's paths, the man page (man's own warnings),
// the units with systemd-analyze verify (the drop-in over Debian's own
// nginx.service too), and the installed example configuration with -t.
func TestMakeInstall(t *testing.T) {
	bin := requireNgxsockify(t)
	requireTool(t, "make")
	for _, tc := range []struct{ prefix, sbin, etc, unit string }{
		{"/usr/local", "/usr/local/sbin", "/usr/local/etc", "/usr/local/lib/systemd/system"},
		{"/usr", "/usr/sbin", "/etc", "/lib/systemd/system"},
	} {
		dest := t.TempDir()
		out, err := exec.Command("make", "-C", "..", "--no-print-directory", "install", "DESTDIR="+dest, "PREFIX="+tc.prefix, "INSTALL_BIN="+bin).CombinedOutput()
		if err != nil {
			t.Fatalf("make install PREFIX=%s: %v\n%s", tc.prefix, err, out)
		}
		doc := tc.prefix + "/share/doc/ngxsockify"
		for _, f := range []string{tc.sbin + "/ngxsockify", tc.prefix + "/share/man/man8/ngxsockify.8",
			tc.etc + "/ngxsockify/nginx.conf", tc.unit + "/ngxsockify.service", doc + "/LICENSE",
			doc + "/examples/nginx.service.d/ngxsockify.conf", doc + "/examples/container/Dockerfile"} {
			if _, err := os.Stat(dest + f); err != nil {
				t.Errorf("PREFIX=%s: %v", tc.prefix, err)
			}
		}
		unit, _ := os.ReadFile(dest + tc.unit + "/ngxsockify.service")
		if want := "ExecStart=" + tc.sbin + "/ngxsockify -c " + tc.etc + "/ngxsockify/nginx.conf -g 'daemon off;'\n"; !strings.Contains(string(unit), want) {
			t.Errorf("PREFIX=%s: unit lacks %q", tc.prefix, want)
		}
		// A second install keeps an edited configuration.
		edited := dest + tc.etc + "/ngxsockify/nginx.conf"
		os.WriteFile(edited, []byte("# mine\n"), 0o644)
		if out, err := exec.Command("make", "-C", "..", "--no-print-directory", "install", "DESTDIR="+dest, "PREFIX="+tc.prefix, "INSTALL_BIN="+bin).CombinedOutput(); err != nil {
			t.Fatalf("second make install: %v\n%s", err, out)
		}
		if data, _ := os.ReadFile(edited); string(data) != "# mine\n" {
			t.Errorf("PREFIX=%s: make install overwrote the configuration", tc.prefix)
		}
		if tc.prefix == "/usr/local" {
			checkInstalled(t, dest, tc.unit, doc)
		}
	}
}

func checkInstalled(t *testing.T, dest, unitDir, doc string) {
	t.Helper()
	if man, err := exec.LookPath("man"); err == nil {
		cmd := exec.Command(man, "--warnings", "-l", "-Tutf8", dest+"/usr/local/share/man/man8/ngxsockify.8")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("man page: %v\n%s", err, stderr.String())
		}
	}
	// The example configuration as the unit runs it, its run and log
	// directories (systemd creates them) moved into a temporary one.
	data, _ := os.ReadFile(dest + doc + "/examples/nginx.conf")
	tmp := t.TempDir()
	conf := strings.NewReplacer("/run/ngxsockify", tmp, "/var/log/ngxsockify", tmp, "listen 6080;", fmt.Sprintf("listen 127.0.0.1:%d;", freePort(t))).Replace(string(data))
	os.WriteFile(filepath.Join(tmp, "nginx.conf"), []byte(conf), 0o644)
	if out, code := runBin(t, "-t", "-c", filepath.Join(tmp, "nginx.conf"), "-g", "daemon off;"); code != 0 {
		t.Errorf("installed example configuration: -t exit %d\n%s", code, out)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: units not verified")
		return
	}
	// verify checks that ExecStart's binary exists: point the units at the
	// installed one. Any complaint fails (it exits 0 on most of them).
	units := t.TempDir()
	sbin := dest + "/usr/local/sbin/ngxsockify"
	unit, _ := os.ReadFile(dest + unitDir + "/ngxsockify.service")
	os.WriteFile(filepath.Join(units, "ngxsockify.service"), []byte(strings.ReplaceAll(string(unit), "/usr/local/sbin/ngxsockify", sbin)), 0o644)
	verify := func(args ...string) {
		t.Helper()
		cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, args...)...)
		cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+units+":")
		out, err := cmd.CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %v: %v\n%s", args, err, out)
		}
	}
	verify(filepath.Join(units, "ngxsockify.service"))
	if debian, err := os.ReadFile("/lib/systemd/system/nginx.service"); err == nil {
		os.WriteFile(filepath.Join(units, "nginx.service"), debian, 0o644)
		os.MkdirAll(filepath.Join(units, "nginx.service.d"), 0o755)
		dropin, _ := os.ReadFile(dest + doc + "/examples/nginx.service.d/ngxsockify.conf")
		os.WriteFile(filepath.Join(units, "nginx.service.d", "ngxsockify.conf"), []byte(strings.ReplaceAll(string(dropin), "/usr/local/sbin/ngxsockify", sbin)), 0o644)
		verify(filepath.Join(units, "nginx.service"))
	}
	// The drop-in runs Debian's own nginx.conf: it must pass -t as the
	// drop-in's ExecStartPre runs it.
	if _, err := os.Stat("/etc/nginx/nginx.conf"); err == nil {
		dropin, _ := os.ReadFile(dest + doc + "/examples/nginx.service.d/ngxsockify.conf")
		sc := bufio.NewScanner(strings.NewReader(string(dropin)))
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "ExecStartPre=/usr/local/sbin/ngxsockify "); ok {
				args := strings.Fields(strings.ReplaceAll(line, "'daemon off;'", "daemon_off"))
				for i, a := range args {
					if a == "daemon_off" {
						args[i] = "daemon off;"
					}
				}
				if out, code := runBin(t, args...); code != 0 {
					t.Errorf("the drop-in's ExecStartPre on Debian's nginx.conf: exit %d\n%s", code, out)
				}
			}
		}
	}
}

func readFile(p string) string {
	data, _ := os.ReadFile(p)
	return string(data)
}
