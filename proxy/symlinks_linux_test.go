package proxy

import (
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
	"ngxsockify/nginxconf"
)

// TestOpenSymlinksChecked: the file served under disable_symlinks is opened
// through the walk that checks it, so what is checked is what is read.
func TestOpenSymlinksChecked(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte("plain"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "secret"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "sub"), filepath.Join(dir, "sublink")); err != nil {
		t.Fatal(err)
	}
	read := func(path string, mode int) (string, error) {
		f, err := openSymlinksChecked(path, mode, 0)
		if err != nil {
			return "", err
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		return string(b), err
	}
	for _, tt := range []struct {
		path string
		mode int
		want string
		err  error
	}{
		{"file", nginxconf.SymlinksOn, "plain", nil},
		{"link", nginxconf.SymlinksOn, "", unix.ELOOP},
		{"link", nginxconf.SymlinksIfNotOwner, "secret", nil}, // same owner
		{"sublink/x", nginxconf.SymlinksOn, "", unix.ENOTDIR},
		{"missing", nginxconf.SymlinksOn, "", unix.ENOENT},
	} {
		got, err := read(filepath.Join(dir, tt.path), tt.mode)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%s mode %d: %v, want %v", tt.path, tt.mode, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s mode %d: %q, %v; want %q", tt.path, tt.mode, got, err, tt.want)
		}
	}
	// a directory path ("/" at the end) opens the directory itself
	f, err := openSymlinksChecked(filepath.Join(dir, "sub")+"/", nginxconf.SymlinksOn, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil || !fi.IsDir() {
		t.Errorf("sub/: %v, %v", fi, err)
	}
	if _, err := openSymlinksChecked(filepath.Join(dir, "sublink")+"/", nginxconf.SymlinksOn, 0); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("sublink/: %v, want ENOTDIR", err)
	}
	// from= leaves its prefix unchecked: a symlink there is followed
	if _, err := read(filepath.Join(dir, "sublink"), nginxconf.SymlinksOn); !errors.Is(err, unix.ELOOP) {
		t.Errorf("sublink: %v, want ELOOP", err)
	}
	f, err = openSymlinksChecked(filepath.Join(dir, "sublink")+"/", nginxconf.SymlinksOn, len(filepath.Join(dir, "sublink")))
	if err != nil {
		t.Fatalf("sublink/ with from=: %v", err)
	}
	f.Close()
}

// TestStaticOneWalk: under disable_symlinks the static handler serves a file
// through one walk, which both checks the path and opens the file, and
// still refuses a symlink (403) and redirects a directory (301).
func TestStaticOneWalk(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte("plain"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "file"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	var walks int
	walkHook = func(string) { walks++ }
	defer func() { walkHook = nil }()
	for _, mode := range []string{"on", "if_not_owner"} {
		s, ctx := newBenchServer(t, "server {\n listen 127.0.0.1:18080;\n root "+dir+";\n disable_symlinks "+mode+";\n location / {}\n}")
		for _, tt := range []struct {
			path  string
			code  int
			body  string
			walks int
		}{
			{"/file", 200, "plain", 1},
			{"/link", 403, "", 1},
			{"/sub", 301, "", 1},
			{"/missing", 404, "", 1},
		} {
			if mode == "if_not_owner" && tt.path == "/link" {
				tt.code, tt.body = 200, "plain" // same owner
			}
			walks = 0
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest("GET", "http://localhost"+tt.path, nil).WithContext(ctx))
			if w.Code != tt.code || (tt.body != "" && w.Body.String() != tt.body) || walks != tt.walks {
				t.Errorf("%s %s: %d %q after %d walks; want %d %q after %d", mode, tt.path, w.Code, w.Body.String(), walks, tt.code, tt.body, tt.walks)
			}
		}
		s.Close()
	}
}
