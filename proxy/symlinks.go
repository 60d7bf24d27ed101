package proxy

import (
	"io/fs"
	"os"

	"ngxsockify/nginxconf"
)

// symlinkCheck applies the location's disable_symlinks to path (nil when
// it is off or the path passes). from= names a leading part of the path
// that is not checked, when the path starts with it: the whole path (no
// check), up to a "/" that follows it, or its own trailing "/".
func (rq *request) symlinkCheck(path string) error {
	c := rq.conf
	if c.DisableSymlinks == nginxconf.SymlinksOff {
		return nil
	}
	from := 0
	if c.DisableSymlinksFrom != nil {
		f := c.DisableSymlinksFrom.Eval(rq.v)
		if f != "" && len(f) <= len(path) && path[:len(f)] == f {
			switch {
			case len(f) == len(path):
				return nil
			case path[len(f)] == '/':
				from = len(f)
			case f[len(f)-1] == '/':
				from = len(f) - 1
			}
		}
	}
	return walkSymlinks(path, c.DisableSymlinks, from)
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
