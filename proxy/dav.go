package proxy

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"syscall"

	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
)

// davModule is nginx's ngx_http_dav_module for DELETE and MOVE (the
// methods dav_methods lists; nginxconf refuses the others). Its content
// handler runs before the static one, as in nginx, and declines the
// methods the location does not list.
var davModule = module{
	name: "dav",
	register: func(e *engine) {
		e.add(phaseContent, func(rq *request) rc {
			switch {
			case rq.r.Method == "DELETE" && rq.conf.DavMethods&nginxconf.DavDelete != 0:
				rq.finalize(rq.davDelete())
			case rq.r.Method == "MOVE" && rq.conf.DavMethods&nginxconf.DavMove != 0:
				rq.finalize(rq.davMove())
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
		rq.logf(ngxlog.Err, "%s with body is unsupported", rq.r.Method)
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

// davMove is ngx_http_dav_copy_move_handler for MOVE: the Destination
// header names a URI of this server (a path, or an absolute URL with the
// request's host), mapped with this location's root or alias.
func (rq *request) davMove() int {
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
	if rq.davDepth(davInfinity) != davInfinity {
		rq.logf(ngxlog.Err, `"Depth" header must be infinity`)
		return http.StatusBadRequest
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
		rq.logf(ngxlog.Err, `"%s" could not be MOVEd to collection "%s"`, uri, duri)
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
	if err := os.Rename(from, to); err != nil {
		return rq.davError(err, http.StatusConflict, "rename()", from)
	}
	if fi.IsDir() {
		return http.StatusCreated
	}
	return http.StatusNoContent
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
