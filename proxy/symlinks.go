package proxy

import (
	"io/fs"
	"os"
	"syscall"

	"ngxsockify/nginxconf"
)

// symlinkCheck applies the location's disable_symlinks to path (nil when
// it is off or the path passes). from= names a leading part of the path
// that is not checked, when the path starts with it: the whole path (no
// check), up to a "/" that follows it, or its own trailing "/".
func (rq *request) symlinkCheck(path string) error {
	mode, from, check := rq.symlinkMode(path)
	if !check {
		return nil
	}
	return walkSymlinks(path, mode, from)
}

// openFile opens path for the static handler (static.Options.Open) under
// disable_symlinks: through the walk that checks it.
func (rq *request) openFile(path string) (*os.File, error) {
	mode, from, check := rq.symlinkMode(path)
	if !check {
		return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	}
	return openSymlinksChecked(path, mode, from)
}

// openStatic opens path for the static handler through one walk that
// applies disable_symlinks and opens the file (openFile), and fstats it, in
// place of a check, a stat and an open. An error a look at the path gives
// as well (a missing or refused component, a symlink refused, ELOOP) is
// returned with f nil; for one only an open can give (EACCES of an
// unreadable directory or file, ENXIO, EMFILE ...) f and err are both nil,
// and the caller looks the way it did without opening.
func (rq *request) openStatic(path string) (f *os.File, fi fs.FileInfo, err error) {
	f, err = rq.openFile(path)
	if err != nil {
		switch unwrapErrno(err) {
		case syscall.ENOENT, syscall.ENOTDIR, syscall.ENAMETOOLONG, syscall.ELOOP, syscall.EMLINK:
			return nil, nil, err
		}
		return nil, nil, nil
	}
	if fi, err = f.Stat(); err != nil {
		f.Close()
		return nil, nil, nil
	}
	return f, fi, nil
}

// symlinkMode is the location's disable_symlinks mode for path and how
// many of its leading bytes from= leaves unchecked; check is false when
// nothing is checked.
func (rq *request) symlinkMode(path string) (mode, from int, check bool) {
	c := rq.conf
	if c.DisableSymlinks == nginxconf.SymlinksOff {
		return 0, 0, false
	}
	if c.DisableSymlinksFrom != nil {
		f := c.DisableSymlinksFrom.Eval(rq.v)
		if f != "" && len(f) <= len(path) && path[:len(f)] == f {
			switch {
			case len(f) == len(path):
				return 0, 0, false
			case path[len(f)] == '/':
				from = len(f)
			case f[len(f)-1] == '/':
				from = len(f) - 1
			}
		}
	}
	return c.DisableSymlinks, from, true
}

// statFile is os.Stat after the disable_symlinks check: the static
// handler, index, try_files, "if (-f ...)" and gzip_static look files up
// through it, as nginx's do through its open-file cache.
func (rq *request) statFile(path string) (fs.FileInfo, error) {
	if err := rq.symlinkCheck(path); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return os.Stat(path)
}
