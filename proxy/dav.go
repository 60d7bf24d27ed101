package proxy

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"syscall"

	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
)

// davModule is nginx's ngx_http_dav_module: PUT, DELETE, MKCOL, COPY and
// MOVE, those dav_methods lists. Its content handler runs before the
// static one, as in nginx, and declines the methods the location does not
// list.
var davModule = module{
	name: "dav",
	register: func(e *engine) {
		e.add(phaseContent, func(rq *request) rc {
			m := rq.conf.DavMethods
			switch {
			case rq.r.Method == "PUT" && m&nginxconf.DavPut != 0:
				rq.davPut()
			case rq.r.Method == "DELETE" && m&nginxconf.DavDelete != 0:
				rq.finalize(rq.davDelete())
			case rq.r.Method == "MKCOL" && m&nginxconf.DavMkcol != 0:
				rq.finalize(rq.davMkcol())
			case rq.r.Method == "COPY" && m&nginxconf.DavCopy != 0:
				rq.finalize(rq.davCopyMove(true))
			case rq.r.Method == "MOVE" && m&nginxconf.DavMove != 0:
				rq.finalize(rq.davCopyMove(false))
			default:
				return rcDeclined
			}
			return rcDone
		})
	},
}

// davInfinity is the Depth header's "infinity"; davBadDepth, an invalid one.
const (
	davInfinity = -1
	davBadDepth = -2
)

// davDepth is the Depth header (ngx_http_dav_depth): def when absent.
func (rq *request) davDepth(def int) int {
	vals := rq.r.Header.Values("Depth")
	if len(vals) == 0 {
		return def
	}
	switch vals[0] {
	case "0":
		return 0
	case "1":
		return 1
	case "infinity":
		return davInfinity
	}
	rq.logf(ngxlog.Err, `client sent invalid "Depth" header: "%s"`, vals[0])
	return davBadDepth
}

// davHasBody: nginx's DAV handlers refuse a body they would not use.
func (rq *request) davHasBody() bool {
	if rq.r.ContentLength > 0 || len(rq.r.TransferEncoding) > 0 {
		if m := rq.r.Method; m == "COPY" || m == "MOVE" {
			rq.logf(ngxlog.Err, "COPY and MOVE with body are unsupported")
		} else {
			rq.logf(ngxlog.Err, "%s with body is unsupported", m)
		}
		return true
	}
	return false
}

// davError is ngx_http_dav_error: the status and log level of a failed
// file operation.
func (rq *request) davError(err error, notFound int, failed, path string) int {
	errno := unwrapErrno(err)
	level, code := ngxlog.Crit, http.StatusInternalServerError
	switch {
	case errors.Is(errno, syscall.ENOENT), errors.Is(errno, syscall.ENOTDIR), errors.Is(errno, syscall.ENAMETOOLONG):
		level, code = ngxlog.Err, notFound
	case errors.Is(errno, syscall.EACCES), errors.Is(errno, syscall.EPERM):
		level, code = ngxlog.Err, http.StatusForbidden
	case errors.Is(errno, syscall.EEXIST):
		level, code = ngxlog.Err, http.StatusMethodNotAllowed
	case errors.Is(errno, syscall.ENOSPC):
		code = http.StatusInsufficientStorage
	}
	rq.logf(level, `%s "%s" failed (%v)`, failed, path, errnoError{errno})
	return code
}

// davDelete is ngx_http_dav_delete_handler: a file, or a collection
// (its URI ends in "/") with everything in it.
func (rq *request) davDelete() int {
	if rq.davHasBody() {
		return http.StatusUnsupportedMediaType
	}
	uri := rq.v.URI
	if min := rq.conf.MinDeleteDepth; min > 0 {
		deep, d := false, 0
		for i := 0; i < len(uri); {
			i++
			if uri[i-1] == '/' {
				if d++; d >= min && i < len(uri) {
					deep = true
					break
				}
			}
		}
		if !deep {
			rq.logf(ngxlog.Err, "insufficient URI depth:%d to DELETE", d)
			return http.StatusConflict
		}
	}
	path := rq.mapPath(uri)
	fi, err := os.Lstat(path)
	if err != nil {
		notFound := http.StatusNotFound
		if errors.Is(unwrapErrno(err), syscall.ENOTDIR) {
			notFound = http.StatusConflict
		}
		return rq.davError(err, notFound, "lstat()", path)
	}
	collection := strings.HasSuffix(uri, "/")
	if fi.IsDir() {
		if !collection {
			rq.logf(ngxlog.Err, `DELETE "%s" failed (%v)`, path, errnoError{syscall.EISDIR})
			return http.StatusConflict
		}
		if rq.davDepth(davInfinity) != davInfinity {
			rq.logf(ngxlog.Err, `"Depth" header must be infinity`)
			return http.StatusBadRequest
		}
		if err := os.RemoveAll(strings.TrimSuffix(path, "/")); err != nil {
			return rq.davError(err, http.StatusNotFound, "rmdir()", path)
		}
		return http.StatusNoContent
	}
	if collection {
		rq.logf(ngxlog.Err, `DELETE "%s" failed (%v)`, path, errnoError{syscall.ENOTDIR})
		return http.StatusConflict
	}
	if d := rq.davDepth(0); d != 0 && d != davInfinity {
		rq.logf(ngxlog.Err, `"Depth" header must be 0 or infinity`)
		return http.StatusBadRequest
	}
	if err := os.Remove(path); err != nil {
		return rq.davError(err, http.StatusNotFound, "unlink()", path)
	}
	return http.StatusNoContent
}

// davCopyMove is ngx_http_dav_copy_move_handler: the Destination header
// names a URI of this server (a path, or an absolute URL with the
// request's host), mapped with this location's root or alias.
func (rq *request) davCopyMove(copying bool) int {
	if rq.davHasBody() {
		return http.StatusUnsupportedMediaType
	}
	dests := rq.r.Header.Values("Destination")
	if len(dests) == 0 {
		rq.logf(ngxlog.Err, `client sent no "Destination" header`)
		return http.StatusBadRequest
	}
	dest := dests[0]
	durl, ok := rq.davDestination(dest)
	if !ok {
		rq.logf(ngxlog.Err, `client sent invalid "Destination" header: "%s"`, dest)
		return http.StatusBadRequest
	}
	if durl == "" {
		rq.logf(ngxlog.Err, `"Destination" URI "%s" is handled by different repository than the source URI`, dest)
		return http.StatusBadRequest
	}
	uri := rq.v.URI
	duri, _, _ := strings.Cut(durl, "?")
	duri = percentDecode(duri)
	if unsafeURI(duri) {
		rq.logf(ngxlog.Err, `client sent invalid "Destination" header: "%s"`, dest)
		return http.StatusBadRequest
	}
	collection := strings.HasSuffix(uri, "/")
	if collection != strings.HasSuffix(duri, "/") {
		rq.logf(ngxlog.Err, `both URI "%s" and "Destination" URI "%s" should be either collections or non-collections`, uri, dest)
		return http.StatusConflict
	}
	if d := rq.davDepth(davInfinity); d != davInfinity {
		switch {
		case !copying:
			rq.logf(ngxlog.Err, `"Depth" header must be infinity`)
			return http.StatusBadRequest
		case d != 0:
			rq.logf(ngxlog.Err, `"Depth" header must be 0 or infinity`)
			return http.StatusBadRequest
		}
	}
	overwrite := true
	if vals := rq.r.Header.Values("Overwrite"); len(vals) > 0 {
		switch vals[0] {
		case "T", "t":
		case "F", "f":
			overwrite = false
		default:
			rq.logf(ngxlog.Err, `client sent invalid "Overwrite" header: "%s"`, vals[0])
			return http.StatusBadRequest
		}
	}
	to := strings.TrimSuffix(rq.mapPath(duri), "/")
	from := strings.TrimSuffix(rq.mapPath(uri), "/")
	dfi, err := os.Lstat(to)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		overwrite = false // nothing to replace
	case err != nil:
		return rq.davError(err, http.StatusNotFound, "lstat()", to)
	case dfi.IsDir() && !collection:
		rq.logf(ngxlog.Err, `"%s" could not be %sed to collection "%s"`, uri, rq.r.Method, dest)
		return http.StatusConflict
	case !overwrite:
		rq.logf(ngxlog.Err, `"%s" could not be created (%v)`, to, errnoError{syscall.EEXIST})
		return http.StatusPreconditionFailed
	}
	fi, err := os.Lstat(from)
	if err != nil {
		return rq.davError(err, http.StatusNotFound, "lstat()", from)
	}
	if fi.IsDir() && !collection {
		rq.logf(ngxlog.Err, `"%s" is collection`, uri)
		return http.StatusBadRequest
	}
	if overwrite && fi.IsDir() {
		if err := os.RemoveAll(to); err != nil {
			return rq.davError(err, http.StatusNotFound, "rmdir()", to)
		}
	}
	if fi.IsDir() {
		if !copying {
			if err := os.Rename(from, to); err == nil {
				return http.StatusCreated
			}
		}
		// a directory MOVE cannot rename is copied, then removed
		if err := os.Mkdir(to, fi.Mode().Perm()); err != nil {
			return rq.davError(err, http.StatusNotFound, "mkdir()", to)
		}
		rq.davCopyTree(from, to)
		if !copying {
			if err := os.RemoveAll(from); err != nil {
				return rq.davError(err, http.StatusNotFound, "rmdir()", from)
			}
		}
		return http.StatusCreated
	}
	if !copying {
		if !rq.davRename(from, to, 0, rq.conf.DavAccess, true, false) {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	}
	if !rq.davCopyFile(from, to, fi) {
		return http.StatusInternalServerError
	}
	return http.StatusNoContent
}

// davCopyTree copies what the directory from holds into to (made already)
// as nginx's tree walk does: directories with their modes (x where r is),
// files with their modes and times, the directories' times set after
// their contents; symbolic links and special files are skipped, failures
// only logged.
func (rq *request) davCopyTree(from, to string) {
	entries, err := os.ReadDir(from)
	if err != nil {
		rq.logf(ngxlog.Crit, `opendir() "%s" failed (%v)`, from, errnoError{unwrapErrno(err)})
		return
	}
	for _, e := range entries {
		src, dst := from+"/"+e.Name(), to+"/"+e.Name()
		fi, err := os.Stat(src)
		if err != nil {
			rq.logf(ngxlog.Crit, `stat() "%s" failed (%v)`, src, errnoError{unwrapErrno(err)})
			continue
		}
		switch {
		case e.Type()&fs.ModeSymlink != 0 || !fi.Mode().IsRegular() && !fi.IsDir():
		case fi.IsDir():
			if err := os.Mkdir(dst, dirAccess(fi.Mode().Perm())); err != nil {
				rq.davError(err, 0, "mkdir()", dst)
			}
			rq.davCopyTree(src, dst)
			if err := os.Chtimes(dst, fi.ModTime(), fi.ModTime()); err != nil {
				rq.logf(ngxlog.Alert, `utimes() "%s" failed (%v)`, dst, errnoError{unwrapErrno(err)})
			}
		default:
			rq.davCopyFile(src, dst, fi)
		}
	}
}

// davCopyFile is nginx's ngx_copy_file: to, created with from's mode or
// truncated, gets from's bytes and time.
func (rq *request) davCopyFile(from, to string, fi fs.FileInfo) bool {
	in, err := os.Open(from)
	if err != nil {
		rq.logf(ngxlog.Crit, `open() "%s" failed (%v)`, from, errnoError{unwrapErrno(err)})
		return false
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		rq.logf(ngxlog.Crit, `open() "%s" failed (%v)`, to, errnoError{unwrapErrno(err)})
		return false
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		rq.logf(ngxlog.Crit, `write() "%s" failed (%v)`, to, errnoError{unwrapErrno(err)})
		return false
	}
	if err := os.Chtimes(to, fi.ModTime(), fi.ModTime()); err != nil {
		rq.logf(ngxlog.Alert, `utimes() "%s" failed (%v)`, to, errnoError{unwrapErrno(err)})
	}
	return true
}

// davRename is nginx's ngx_ext_rename_file: src gets mode access (0:
// kept), then is renamed to to; missing directories of to are made (with
// pathAccess, x where r is) when createPath allows; across file systems
// the file is copied. On failure src is removed when deleteFile says so.
func (rq *request) davRename(src, to string, access, pathAccess os.FileMode, createPath, deleteFile bool) bool {
	fail := func(err error) bool {
		if deleteFile {
			if rerr := os.Remove(src); rerr != nil {
				rq.logf(ngxlog.Crit, `unlink() "%s" failed (%v)`, src, errnoError{unwrapErrno(rerr)})
			}
		}
		if err != nil {
			rq.logf(ngxlog.Crit, `rename() "%s" to "%s" failed (%v)`, src, to, errnoError{err})
		}
		return false
	}
	if access != 0 {
		if err := os.Chmod(src, access); err != nil {
			rq.logf(ngxlog.Crit, `chmod() "%s" failed (%v)`, src, errnoError{unwrapErrno(err)})
			return fail(nil)
		}
	}
	err := unwrapLinkErr(os.Rename(src, to))
	if err == nil {
		return true
	}
	if errors.Is(err, syscall.ENOENT) {
		if !createPath {
			return fail(err)
		}
		if perr := davCreateFullPath(to, dirAccess(pathAccess)); perr != nil {
			rq.logf(ngxlog.Crit, `mkdir() "%s" failed (%v)`, to, errnoError{perr})
			return fail(nil)
		}
		if err = unwrapLinkErr(os.Rename(src, to)); err == nil {
			return true
		}
	}
	if errors.Is(err, syscall.EXDEV) {
		fi, serr := os.Stat(src)
		if serr == nil {
			tmp := to + ".ngxsockify-copy"
			if rq.davCopyFile(src, tmp, fi) {
				if rerr := os.Rename(tmp, to); rerr == nil {
					os.Remove(src)
					return true
				}
				os.Remove(tmp)
			}
		}
	}
	return fail(err)
}

// davCreateFullPath is ngx_create_full_path: every directory of path
// (not its last element) is made; existing ones and those it may not
// make (EACCES) are passed.
func davCreateFullPath(path string, mode os.FileMode) error {
	var last error
	for i := 1; i < len(path); i++ {
		if path[i] != '/' {
			continue
		}
		last = nil
		if err := syscall.Mkdir(path[:i], uint32(mode)); err != nil {
			switch err {
			case syscall.EEXIST:
			case syscall.EACCES:
				last = err
			default:
				return err
			}
		}
	}
	return last
}

// davMkcol is ngx_http_dav_mkcol_handler: a directory for a URI ending in
// "/", with dav_access's mode (x where r is).
func (rq *request) davMkcol() int {
	if rq.davHasBody() {
		return http.StatusUnsupportedMediaType
	}
	uri := rq.v.URI
	if !strings.HasSuffix(uri, "/") {
		rq.logf(ngxlog.Err, "MKCOL can create a collection only")
		return http.StatusConflict
	}
	path := strings.TrimSuffix(rq.mapPath(uri), "/")
	if err := os.Mkdir(path, dirAccess(rq.conf.DavAccess)); err != nil {
		return rq.davError(err, http.StatusConflict, "mkdir()", path)
	}
	rq.davLocation()
	return http.StatusCreated
}

// davLocation sets the Location of a 201: the URI, escaped, made absolute
// by absolute_redirect as nginx's header filter does.
func (rq *request) davLocation() {
	loc := vars.Escape(rq.v.URI, uriEscaped)
	rq.absLocation = rq.conf.AbsoluteRedirect
	rq.w.Header().Set("Location", loc)
	rq.w.note("Location") // absolute_redirect off: an entry of nginx's list
}

// davPut is ngx_http_dav_put_handler: the body is written to a temporary
// file in client_body_temp_path, which gets dav_access's mode (and the
// Date header's time) and is renamed to the file (201 with Location when
// it is new, 204 when it replaced one).
func (rq *request) davPut() {
	uri := rq.v.URI
	if strings.HasSuffix(uri, "/") {
		rq.logf(ngxlog.Err, "cannot PUT to a collection")
		rq.finalize(http.StatusConflict)
		return
	}
	if len(rq.r.Header.Values("Content-Range")) > 0 {
		rq.logf(ngxlog.Err, "PUT with range is unsupported")
		rq.finalize(http.StatusNotImplemented)
		return
	}
	if rq.r.ProtoMajor < 2 && rq.r.ContentLength == 0 && len(rq.r.TransferEncoding) == 0 && len(rq.r.Header.Values("Content-Length")) == 0 {
		// nginx reads no body then, and keeps none in a file
		rq.logf(ngxlog.Err, "PUT request body must be in a file")
		rq.finalize(http.StatusInternalServerError)
		return
	}
	temp, code := rq.davBodyFile()
	if code != 0 {
		rq.finalize(code)
		return
	}
	path := rq.mapPath(uri)
	status := http.StatusCreated
	if fi, err := os.Stat(path); err == nil {
		status = http.StatusNoContent
		if fi.IsDir() {
			rq.logf(ngxlog.Err, `"%s" could not be created (%v)`, path, errnoError{syscall.EISDIR})
			if err := os.Remove(temp); err != nil {
				rq.logf(ngxlog.Crit, `unlink() "%s" failed (%v)`, temp, errnoError{unwrapErrno(err)})
			}
			rq.finalize(http.StatusConflict)
			return
		}
	}
	if vals := rq.r.Header.Values("Date"); len(vals) > 0 {
		if t, err := http.ParseTime(vals[0]); err == nil {
			if err := os.Chtimes(temp, t, t); err != nil {
				rq.logf(ngxlog.Crit, `utimes() "%s" failed (%v)`, temp, errnoError{unwrapErrno(err)})
				os.Remove(temp)
				rq.finalize(http.StatusInternalServerError)
				return
			}
		}
	}
	if !rq.davRename(temp, path, rq.conf.DavAccess, rq.conf.DavAccess, rq.conf.CreateFullPutPath, true) {
		rq.finalize(http.StatusInternalServerError)
		return
	}
	if status == http.StatusCreated {
		rq.davLocation()
		rq.w.Header().Set("Content-Length", "0")
	}
	rq.writeHeader(status)
}

// davBodyFile reads the request body (within client_max_body_size) into a
// new file in client_body_temp_path and returns its name, or the status
// to answer with.
func (rq *request) davBodyFile() (string, int) {
	f, err := rq.conf.ClientBodyTempPath.Create()
	if err != nil {
		rq.logf(ngxlog.Crit, "%v", err)
		return "", http.StatusInternalServerError
	}
	name := f.Name()
	var src io.Reader = http.NoBody
	switch {
	case rq.bodyRead:
		src = bytes.NewReader(rq.body)
	case rq.r.Body != nil:
		src = rq.r.Body
	}
	max := rq.conf.ClientMaxBodySize
	if max > 0 {
		src = io.LimitReader(src, max+1)
	}
	n, err := io.Copy(f, src)
	if cerr := f.Close(); err == nil && cerr != nil {
		rq.logf(ngxlog.Crit, `write() "%s" failed (%v)`, name, errnoError{unwrapErrno(cerr)})
		os.Remove(name)
		return "", http.StatusInternalServerError
	}
	if err != nil {
		os.Remove(name)
		rq.logf(ngxlog.Info, "client prematurely closed connection")
		return "", http.StatusBadRequest
	}
	if max > 0 && n > max {
		os.Remove(name)
		rq.logf(ngxlog.Err, "client intended to send too large chunked body: %d bytes", n)
		rq.w.Header().Set("Connection", "close")
		return "", http.StatusRequestEntityTooLarge
	}
	rq.bodyRead = true
	return name, 0
}

// davDestination returns the URI part of a Destination header: the header
// itself when it is a path, else what follows the host of an absolute URL
// whose scheme is the connection's and whose host starts with the
// request's. ok is false for an invalid header; the URI is "" for another
// host.
func (rq *request) davDestination(dest string) (uri string, ok bool) {
	if strings.HasPrefix(dest, "/") {
		return dest, true
	}
	host := hostOf(rq.r)
	if host == "" {
		return "", false
	}
	scheme := "http://"
	if rq.r.TLS != nil {
		scheme = "https://"
	}
	rest, ok := strings.CutPrefix(dest, scheme)
	if !ok {
		return "", false
	}
	if !strings.HasPrefix(rest, host) {
		return "", true
	}
	i := strings.IndexByte(rest[len(host):], '/')
	if i < 0 {
		return "", false
	}
	return rest[len(host)+i:], true
}
