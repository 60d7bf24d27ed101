//go:build linux

package proxy

import (
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"
	"ngxsockify/nginxconf"
)

// readFlags open a checked file as the static handler opens files.
const readFlags = unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC

// walkSymlinks applies disable_symlinks (mode SymlinksOn or
// SymlinksIfNotOwner) to path, whose first `from` bytes are not checked: it
// opens the path one component at a time from "/" (or from its first
// `from` bytes, which are followed as usual) and answers the error nginx's
// open would give: ENOTDIR for a directory component that is a symlink
// (under "on"), ELOOP for a last component that is one, EACCES for a
// symlink owned by another user than what it points to (if_not_owner);
// otherwise the error of the component that cannot be opened, or nil. A
// path ending in "/" names a directory: every component is one.
func walkSymlinks(path string, mode int, from int) error {
	_, err := openNoSymlinks(path, mode, from, false)
	return err
}

// openSymlinksChecked opens path for reading through the same walk, so
// that the file served is the one checked: a symlink swapped in after a
// check of the path cannot be followed by a later open of it.
func openSymlinksChecked(path string, mode int, from int) (*os.File, error) {
	fd, err := openNoSymlinks(path, mode, from, true)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// walkHook, when set (by a test), is told of each walk.
var walkHook func(path string)

// openNoSymlinks is the walk; with open, the last component is opened for
// reading (non-blocking, as the static handler opens files) and its
// descriptor returned.
func openNoSymlinks(path string, mode int, from int, open bool) (int, error) {
	if walkHook != nil {
		walkHook(path)
	}
	start, rest := "/", path
	if from > 0 {
		start, rest = path[:from], path[from:]
	} else if !strings.HasPrefix(path, "/") {
		start = "."
	}
	dir, err := unix.Open(start, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer func() { unix.Close(dir) }()
	isDir := strings.HasSuffix(rest, "/")
	parts := strings.Split(rest, "/")
	last := len(parts) - 1
	for last >= 0 && parts[last] == "" {
		last--
	}
	for i := 0; i <= last; i++ {
		name := parts[i]
		if name == "" {
			continue
		}
		if i == last && !isDir {
			return openLast(dir, name, mode, open)
		}
		flags := unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC
		if mode == nginxconf.SymlinksOn {
			flags |= unix.O_NOFOLLOW // a symlink is then not a directory: ENOTDIR
		}
		fd, err := unix.Openat(dir, name, flags, 0)
		if err != nil {
			return -1, err
		}
		if mode == nginxconf.SymlinksIfNotOwner {
			var st, target unix.Stat_t
			err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW)
			if err == nil {
				err = unix.Fstat(fd, &target)
			}
			if err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK && st.Uid != target.Uid {
				err = unix.EACCES
			}
			if err != nil {
				unix.Close(fd)
				return -1, err
			}
		}
		unix.Close(dir)
		dir = fd
	}
	if !open {
		return -1, nil
	}
	return unix.Openat(dir, ".", readFlags|unix.O_DIRECTORY, 0)
}

// openLast checks (and with open, opens) the last component of a path
// that does not name a directory by its form.
func openLast(dir int, name string, mode int, open bool) (int, error) {
	if mode == nginxconf.SymlinksOn {
		if open {
			// a symlink fails with ELOOP, as the check below answers
			return unix.Openat(dir, name, readFlags|unix.O_NOFOLLOW, 0)
		}
		var st unix.Stat_t
		if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return -1, err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, unix.ELOOP
		}
		return -1, nil
	}
	// if_not_owner: what is opened (or would be) is compared with the
	// link, so the owner checked is the owner of the file served
	fd := -1
	var target unix.Stat_t
	var err error
	if open {
		if fd, err = unix.Openat(dir, name, readFlags, 0); err == nil {
			err = unix.Fstat(fd, &target)
		}
	} else {
		err = unix.Fstatat(dir, name, &target, 0)
	}
	var st unix.Stat_t
	if err == nil {
		err = unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK && st.Uid != target.Uid {
		err = unix.EACCES
	}
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, err
	}
	return fd, nil
}
