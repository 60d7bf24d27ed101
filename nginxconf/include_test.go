package nginxconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNginxGlob(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"b.conf", "a.conf", "B.conf", ".hidden.conf", "c.txt", "sub/x.conf", "sub2/y.conf", ".dot/z.conf"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, "")
	}
	tests := []struct {
		pattern string
		want    []string
	}{
		{"*.conf", []string{"B.conf", "a.conf", "b.conf"}}, // bytewise order, no dotfiles
		{".*.conf", []string{".hidden.conf"}},              // a spelled dot matches
		{"[ab].conf", []string{"a.conf", "b.conf"}},
		{"[!a].conf", []string{"B.conf", "b.conf"}},
		{"*/*.conf", []string{"sub/x.conf", "sub2/y.conf"}},
		{"nothing*/x", nil},
		{"[.conf", nil}, // malformed bracket: literal, no such file
		{"./*.txt", []string{"./c.txt"}},
	}
	for _, tt := range tests {
		got, err := nginxGlob(dir + "/" + tt.pattern)
		if err != nil {
			t.Errorf("%s: %v", tt.pattern, err)
			continue
		}
		for i := range got {
			got[i] = strings.TrimPrefix(got[i], dir+"/")
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.pattern, diff)
		}
	}
}

func TestIncludeDirectoryAndDevice(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := ParseString(filepath.Join(dir, "nginx.conf"), "include d;\n", ParseOptions{})
	want := `pread() "` + dir + `/d" failed (21: Is a directory)`
	if err == nil || err.Error() != want {
		t.Errorf("directory include: %v, want %s", err, want)
	}
	// A device reads as empty (nginx reads fstat's size), not forever.
	if _, err := ParseString(filepath.Join(dir, "nginx.conf"), "include /dev/zero;\n", ParseOptions{}); err != nil {
		t.Errorf("include /dev/zero: %v", err)
	}
}
