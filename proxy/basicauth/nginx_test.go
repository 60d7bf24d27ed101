package basicauth

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNginxDifferential runs real nginx with auth_basic over a file holding
// every scheme and compares its answer with ParseAuthorization + Verify.
func TestNginxDifferential(t *testing.T) {
	const bin = "/usr/sbin/nginx"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nginx required in CI: %v", err)
		}
		t.Skip("no nginx")
	}
	dir := t.TempDir()
	var file strings.Builder
	for name, h := range recorded {
		fmt.Fprintf(&file, "%s:%s\n", name, h)
	}
	for name, h := range unsupported {
		fmt.Fprintf(&file, "%s:%s\n", name, h)
	}
	// bady: a hash libxcrypt cannot compute either; its crypt() returns a
	// failure token, so nginx answers 401 (we log "unsupported hash format").
	file.WriteString("# c:{PLAIN}x\nnocolon\nsp:{PLAIN}a b \r\nbady:$y$jZZ$abc$def\n")
	htpasswd := filepath.Join(dir, "htpasswd")
	os.WriteFile(htpasswd, []byte(file.String()), 0o644)
	os.MkdirAll(filepath.Join(dir, "www"), 0o755)
	os.WriteFile(filepath.Join(dir, "www", "index.html"), []byte("hi\n"), 0o644)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers must read the htpasswd in a 0700 temp dir
	}
	conf := user + fmt.Sprintf(`pid %[1]s/pid; error_log %[1]s/error.log; events {}
http { access_log off; client_body_temp_path %[1]s/t; proxy_temp_path %[1]s/t; fastcgi_temp_path %[1]s/t; uwsgi_temp_path %[1]s/t; scgi_temp_path %[1]s/t;
server { listen %[2]s; root %[1]s/www; location / { auth_basic "r"; auth_basic_user_file %[3]s; } } }`, dir, addr, htpasswd)
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644)
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off; master_process off;")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i > 200 {
			t.Fatal("nginx did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	f, err := Load(htpasswd)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	headers := []string{"", "Basic !!!", "Basic " + b64("nocolon"), "Basic " + b64("nocolon:"), "basic  " + b64("sp:a b "),
		"Basic " + b64("sp:a b"), "Basic " + strings.TrimRight(b64("plain:secret"), "="), "Basic " + b64(":x"), "Basic " + b64("bady:secret")}
	for name := range unsupported {
		headers = append(headers, "Basic "+b64(name+":secret"))
	}
	for name := range recorded {
		headers = append(headers, "Basic "+b64(name+":secret"), "Basic "+b64(name+":wrong"))
	}
	for _, h := range headers {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if u, _, _ := ParseAuthorization(h); unsupported[u] != "" {
			// The known gap: nginx checks these, we refuse them all.
			if got := f.Verify(u, "secret"); got != Unsupported {
				t.Errorf("Authorization %q: Verify = %v, want Unsupported", h, got)
			}
			continue
		}
		want := 401
		if u, p, ok := ParseAuthorization(h); ok && f.Verify(u, p) == OK {
			want = 200
		}
		if resp.StatusCode != want {
			t.Errorf("Authorization %q: nginx %d, ours %d", h, resp.StatusCode, want)
		}
	}
}
