//go:build !linux

package proxy

import (
	"errors"
	"os"
)

// walkSymlinks: disable_symlinks is enforced on Linux only; elsewhere a
// request it applies to fails (500).
func walkSymlinks(path string, mode int, from int) error {
	return errors.New("disable_symlinks is supported on Linux only")
}

func openSymlinksChecked(path string, mode int, from int) (*os.File, error) {
	return nil, walkSymlinks(path, mode, from)
}
