package nginxconf

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestErrorShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{&Error{Msg: "m", File: "/a/nginx.conf", Line: 3}, "m in /a/nginx.conf:3"},
		{&Error{Msg: "m", File: "command line"}, "m in command line"},
		{&Error{Msg: `open() "/x" failed (2: No such file or directory)`}, `open() "/x" failed (2: No such file or directory)`},
		{Errors{{Msg: "a", File: "f", Line: 1}, {Msg: "b", File: "f", Line: 2}}, "a in f:1\nb in f:2"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	if got := (Warning{Msg: "w", File: "f", Line: 9}).String(); got != "w in f:9" {
		t.Errorf("Warning.String() = %q", got)
	}
}

func TestWithErrno(t *testing.T) {
	t.Parallel()
	_, err := os.Open("/nonexistent/x")
	if got := withErrno(`open() "/nonexistent/x" failed`, err); got != `open() "/nonexistent/x" failed (2: No such file or directory)` {
		t.Errorf("got %q", got)
	}
	long := strings.Repeat("a", 2000)
	got := withErrno(long, syscall.ENAMETOOLONG)
	want := strings.Repeat("a", maxConfErrStr-50) + "... (36: File name too long)"
	if got != want {
		t.Errorf("long message: got %d bytes %q...", len(got), got[len(got)-40:])
	}
	if got := errnoText(fmt.Errorf("wrapped: %w", syscall.EACCES)); got != "(13: Permission denied)" {
		t.Errorf("wrapped errno: %q", got)
	}
}
