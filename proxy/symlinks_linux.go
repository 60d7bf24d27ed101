//go:build linux

package proxy

import (
	"strings"

	"golang.org/x/sys/unix"
	"ngxsockify/nginxconf"
)

// symlinksSupported: the walk below needs openat, O_PATH and fstatat.
const symlinksSupported = true

// walkSymlinks applies disable_symlinks (mode SymlinksOn or
// SymlinksIfNotOwner) to path, whose first `from` bytes are not checked: it
// opens the path one component at a time from "/" (or from its first
// `from` bytes, which are followed as usual) and answers the error nginx's
// open would give: ENOTDIR for a directory component that is a symlink
// (under "on"), ELOOP for a last component that is one, EACCES for a
// symlink owned by another user than what it points to (if_not_owner);
// otherwise the error of the component that cannot be opened, or nil. A
// path ending in "/" names a directory: every component is one. The file
// is opened again by its user after the check, as a path.
func walkSymlinks(path string, mode int, from int) error {
	start, rest := "/", path
	if from > 0 {
		start, rest = path[:from], path[from:]
	} else if !strings.HasPrefix(path, "/") {
		start = "."
	}
	dir, err := unix.Open(start, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
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
			var st unix.Stat_t
			if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
			if st.Mode&unix.S_IFMT != unix.S_IFLNK {
				return nil
			}
			if mode == nginxconf.SymlinksOn {
				return unix.ELOOP
			}
			var target unix.Stat_t
			if err := unix.Fstatat(dir, name, &target, 0); err != nil {
				return err
			}
			if target.Uid != st.Uid {
				return unix.EACCES
			}
			return nil
		}
		flags := unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC
		if mode == nginxconf.SymlinksOn {
			flags |= unix.O_NOFOLLOW // a symlink is then not a directory: ENOTDIR
		}
		fd, err := unix.Openat(dir, name, flags, 0)
		if err != nil {
			return err
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
				return err
			}
		}
		unix.Close(dir)
		dir = fd
	}
	return nil
}
