//go:build !linux

package proxy

import (
	"errors"
	"os"
)

// symlinksSupported: disable_symlinks is enforced on Linux only; elsewhere
// a request it applies to answers 500 (symlinkCheck).
const symlinksSupported = false

func walkSymlinks(path string, mode int, from int) error {
	return errors.New("disable_symlinks is supported on Linux only")
}

func openSymlinksChecked(path string, mode int, from int) (*os.File, error) {
	return nil, walkSymlinks(path, mode, from)
}
