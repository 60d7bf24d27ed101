package vars

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const nginxBin = "/usr/sbin/nginx"

// requireNginx skips the test when real nginx is missing, unless CI=true.
func requireNginx(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(nginxBin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nginx required in CI: %v", err)
		}
		t.Skipf("no %s: %v", nginxBin, err)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// nginxConf wraps an http{} body into a complete configuration whose pid,
// logs and temp paths live in dir.
func nginxConf(dir, httpBody string, lua bool) string {
	var b strings.Builder
	if lua {
		b.WriteString("load_module /usr/lib/nginx/modules/ndk_http_module.so;\n")
		b.WriteString("load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;\n")
	}
	fmt.Fprintf(&b, "pid %s/nginx.pid;\nerror_log %s/error.log info;\nworker_processes 1;\nevents {}\n", dir, dir)
	fmt.Fprintf(&b, "http {\naccess_log off;\n")
	for _, p := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "%s_temp_path %s/%s;\n", p, dir, p)
	}
	b.WriteString(httpBody)
	b.WriteString("\n}\n")
	return b.String()
}

// nginxCheck runs `nginx -t` on httpBody and returns its emerg message
// ("" when the config is valid).
func nginxCheck(t *testing.T, httpBody string) string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConf(dir, httpBody, false)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginxBin, "-t", "-q", "-p", dir, "-c", conf).CombinedOutput()
	if err == nil {
		return ""
	}
	s := string(out)
	if i := strings.Index(s, "[emerg] "); i >= 0 {
		s = s[i+len("[emerg] "):]
		s = s[strings.Index(s, ": ")+2:]
	}
	s = strings.TrimSpace(strings.SplitN(s, "\n", 2)[0])
	return strings.TrimSuffix(s, " in "+conf+":"+lastLine(s))
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[i+1:]
	}
	return ""
}

// startNginx runs nginx in the foreground with httpBody (which may use
// {{PORT}}) and returns its address; it is stopped by t.Cleanup.
func startNginx(t *testing.T, httpBody string, lua bool) string {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	body := strings.ReplaceAll(httpBody, "{{PORT}}", fmt.Sprint(port))
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConf(dir, body, lua)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginxBin, "-p", dir, "-c", conf, "-g", "daemon off;")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "error.log")); err == nil {
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("nginx error.log (last lines):\n%s", strings.Join(lines[max(0, len(lines)-8):], "\n"))
			}
		}
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case <-done:
			t.Fatalf("nginx exited: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s: %s", addr, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawGet sends one request with the raw target and headers (no client-side
// normalisation) and returns status and body.
func rawGet(t *testing.T, addr, target string, headers []string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req := "GET " + target + " HTTP/1.1\r\n"
	hasHost := false
	for _, h := range headers {
		if strings.HasPrefix(strings.ToLower(h), "host:") {
			hasHost = true
		}
		req += h + "\r\n"
	}
	if !hasHost {
		req += "Host: localhost\r\n"
	}
	req += "Connection: close\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %q: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
