package ngxlog

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

func TestErrno(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{syscall.ENOENT, "2: No such file or directory"},
		{&fs.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, "13: Permission denied"},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), "111: Connection refused"},
		{syscall.ELOOP, "40: Too many levels of symbolic links"},
		{errors.New("no errno"), "no errno"},
	} {
		if got := Errno(tt.err); got != tt.want {
			t.Errorf("Errno(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
