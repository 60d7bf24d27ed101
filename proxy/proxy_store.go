package proxy

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"

	"ngxsockify/ngxlog"
)

// storeFile is proxy_store's copy of a backend's 200 being received, in a
// temporary file beside its path (nginx writes it in proxy_temp_path,
// which ngxsockify does not read), renamed to the path once the whole
// body came, as nginx's ngx_http_upstream_store does: with
// proxy_store_access's mode, the response's Last-Modified as its time,
// the missing directories made. The body is read whole even when the
// client goes away, as nginx reads it for the store.
type storeFile struct {
	rq   *request
	f    *os.File
	path string
	n    int64
	err  error // a write failed: nothing is stored
}

// startStore opens the file for a response of status, or returns nil when
// nothing is stored (proxy_store off, not a 200). The caller stores only a
// buffered response (proxy_buffering, or the backend's X-Accel-Buffering).
func (rq *request) startStore(status int) *storeFile {
	ps := rq.conf.ProxyStore
	if ps == nil || status != http.StatusOK {
		return nil
	}
	path := ""
	if ps.Path != nil {
		path = ps.Path.Eval(rq.v)
	} else {
		path = rq.mapPath(rq.v.URI)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".ngxsockify-store-")
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(dir, dirAccess(rq.conf.ProxyStoreAccess)); err == nil {
			f, err = os.CreateTemp(dir, ".ngxsockify-store-")
		}
	}
	if err != nil {
		rq.logf(ngxlog.Crit, "%v", err)
		return nil
	}
	return &storeFile{rq: rq, f: f, path: path}
}

// Write keeps p; a failure only stops the store (the response goes on).
func (s *storeFile) Write(p []byte) (int, error) {
	if s.err == nil {
		var n int
		n, s.err = s.f.Write(p)
		s.n += int64(n)
	}
	return len(p), nil
}

// end renames the file to its path when the body came whole (length, -1
// for unknown, is what the backend announced), else removes it.
func (s *storeFile) end(whole bool, length int64, lastModified string) {
	rq := s.rq
	name := s.f.Name()
	ok := whole && s.err == nil && (length < 0 || s.n == length)
	if ok {
		if err := s.f.Chmod(rq.conf.ProxyStoreAccess); err != nil {
			rq.logf(ngxlog.Crit, `fchmod() "%s" failed (%v)`, name, errnoError{err})
		}
	}
	s.f.Close()
	if !ok {
		os.Remove(name)
		return
	}
	if t, err := http.ParseTime(lastModified); err == nil {
		os.Chtimes(name, t, t)
	}
	if err := os.Rename(name, s.path); err != nil {
		rq.logf(ngxlog.Crit, `rename() "%s" to "%s" failed (%v)`, name, s.path, errnoError{unwrapLinkErr(err)})
		os.Remove(name)
	}
}

// drain reads what the client did not take of src, for the store.
func (s *storeFile) drain(src io.Reader) error {
	_, err := io.Copy(io.Discard, src)
	return err
}

// dirAccess is nginx's ngx_dir_access: a file mode with x where r is.
func dirAccess(m os.FileMode) os.FileMode { return m | (m&0444)>>2 }

// unwrapLinkErr is the errno inside a rename's error.
func unwrapLinkErr(err error) error {
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
