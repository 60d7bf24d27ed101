package proxy

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"syscall"

	"ngxsockify/ngxlog"
)

// randomIndexModule is nginx's ngx_http_random_index_module: under
// random_index on, a GET, HEAD or POST of a directory URI (ending in "/")
// is redirected internally to one of the directory's files, picked at
// random, the arguments kept. Names beginning with "." are skipped, and so
// is whatever is not a regular file once symbolic links are followed. A
// directory without such a file goes on to the index module (so, without
// an index file, 403 "directory index ... is forbidden"); one that cannot
// be opened answers 404 (missing, not a directory), 403 (no permission) or
// 500. Its content handler runs before dav's and static's, as in nginx.
var randomIndexModule = module{
	name: "random_index",
	register: func(e *engine) {
		e.add(phaseContent, randomIndexPhase)
	},
}

func randomIndexPhase(rq *request) rc {
	uri := rq.v.URI
	if !rq.conf.RandomIndex || !strings.HasSuffix(uri, "/") {
		return rcDeclined
	}
	switch rq.r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		return rcDeclined
	}
	dir := strings.TrimSuffix(rq.mapPath(uri), "/")
	names, code := rq.randomIndexNames(dir)
	if code != 0 {
		rq.finalize(code)
		return rcDone
	}
	if len(names) == 0 {
		return rcDeclined
	}
	target := uri + names[rand.IntN(len(names))]
	rq.mainRequest().action.Store(nil)
	rq.redirectTo(target, target)
	return rcDone
}

// randomIndexNames lists the regular files of dir not beginning with ".",
// or returns the status of a failure (logged).
func (rq *request) randomIndexNames(dir string) ([]string, int) {
	f, err := os.Open(dir)
	if err == nil {
		var fi os.FileInfo
		if fi, err = f.Stat(); err == nil && !fi.IsDir() {
			err = syscall.ENOTDIR
		}
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		errno := unwrapErrno(err)
		switch errno {
		case syscall.ENOENT, syscall.ENOTDIR, syscall.ENAMETOOLONG:
			rq.logf(ngxlog.Err, `opendir() "%s" failed (%v)`, dir, errnoError{errno})
			return nil, http.StatusNotFound
		case syscall.EACCES:
			rq.logf(ngxlog.Err, `opendir() "%s" failed (%v)`, dir, errnoError{errno})
			return nil, http.StatusForbidden
		}
		rq.logf(ngxlog.Crit, `opendir() "%s" failed (%v)`, dir, errnoError{errno})
		return nil, http.StatusInternalServerError
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		rq.logf(ngxlog.Crit, `readdir() "%s" failed (%v)`, dir, errnoError{unwrapErrno(err)})
		return nil, http.StatusInternalServerError
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		t := e.Type()
		if t&fs.ModeSymlink != 0 {
			fi, err := os.Stat(dir + "/" + name)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // a dangling link: not a file
				}
				rq.logf(ngxlog.Crit, `stat() "%s" failed (%v)`, dir+"/"+name, errnoError{unwrapErrno(err)})
				return nil, http.StatusInternalServerError
			}
			t = fi.Mode().Type()
		}
		if t.IsRegular() {
			names = append(names, name)
		}
	}
	return names, 0
}
