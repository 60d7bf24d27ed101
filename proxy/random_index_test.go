package proxy

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRandomIndexNames: regular files only, symbolic links followed (a
// dangling one skipped), names beginning with "." skipped; a missing
// directory or a file is 404.
func TestRandomIndexNames(t *testing.T) {
	d := t.TempDir()
	for _, f := range []string{"a.html", ".hidden", "b"} {
		if err := os.WriteFile(filepath.Join(d, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{"sub", ".git"} {
		if err := os.Mkdir(filepath.Join(d, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{"to-file": "a.html", "to-dir": "sub", "dangling": "nothing", ".to-file": "b"}
	for name, target := range links {
		if err := os.Symlink(filepath.Join(d, target), filepath.Join(d, name)); err != nil {
			t.Fatal(err)
		}
	}
	rq := &request{st: &state{}, r: httptest.NewRequest("GET", "/", nil)}
	names, code := rq.randomIndexNames(d)
	slices.Sort(names)
	if code != 0 || !slices.Equal(names, []string{"a.html", "b", "to-file"}) {
		t.Errorf("names %q, code %d", names, code)
	}
	for _, p := range []string{filepath.Join(d, "missing"), filepath.Join(d, "a.html")} {
		if _, code := rq.randomIndexNames(p); code != http.StatusNotFound {
			t.Errorf("%s: code %d, want 404", p, code)
		}
	}
	empty := filepath.Join(d, "sub")
	if names, code := rq.randomIndexNames(empty); code != 0 || len(names) != 0 {
		t.Errorf("empty: names %q, code %d", names, code)
	}
}
