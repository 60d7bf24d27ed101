package proxy

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"

	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/static"
)

// staticModule is nginx's index, autoindex and static modules, with
// try_files (core in nginx) in the pre-content phase.
var staticModule = module{
	name: "static",
	register: func(e *engine) {
		e.add(phasePreContent, tryFilesPhase)
		e.add(phaseContent, func(rq *request) rc { rq.static(); return rcDone })
	},
}

func tryFilesPhase(rq *request) rc {
	if len(rq.conf.TryFiles) == 0 || rq.tryFiles() {
		return rcDeclined
	}
	return rcDone
}

func (rq *request) staticOptions() *static.Options {
	conf := rq.conf
	o := &static.Options{
		Autoindex:          conf.Autoindex,
		AutoindexFormat:    conf.AutoindexFormat,
		AutoindexExactSize: conf.AutoindexExactSize,
		AutoindexLocaltime: conf.AutoindexLocaltime,
		Types:              conf.Types,
		DefaultType:        conf.DefaultType,
		Etag:               conf.Etag,
		MaxRanges:          conf.MaxRanges,
		IfModifiedSince:    conf.IfModifiedSince,
		Status:             rq.w.override,
		Subrequest:         rq.subrequest,
		Log:                func(level ngxlog.Level, msg string) { rq.logf(level, "%s", msg) },
	}
	if conf.DisableSymlinks != nginxconf.SymlinksOff {
		o.Open = rq.openFile
	}
	for i := range conf.AddHeaders {
		switch ah := &conf.AddHeaders[i]; ah.Key {
		case "Last-Modified":
			v := ah.Value.Eval(rq.v)
			o.RangeLastModified = &v
		case "Etag":
			v := ah.Value.Eval(rq.v)
			o.RangeETag = &v
		}
	}
	if conf.Autoindex {
		// nginx measures names by characters when the listing goes out
		// as utf-8, which the charset filter decides
		plan, _ := rq.charsetPlanFor("text/html")
		o.UTF8Names = plan.log == "" && strings.EqualFold(plan.label, "utf-8")
		o.Callback, _ = vars.Arg(rq.v.Args, "callback")
	}
	return o
}

// static serves files: index files for directory URIs (as internal
// redirects, like nginx's index module), a 301 for a directory without
// its slash, 404/403 otherwise.
// logNotFound logs, at error level, that a file a request asked for does
// not exist, unless log_not_found is off (nginx's static and index modules).
func (rq *request) logNotFound(format, path string, errno error) {
	if rq.conf.LogNotFound {
		rq.logf(ngxlog.Err, format, path, errnoError{errno})
	}
}

func (rq *request) static() {
	if rq.r.Method != http.MethodGet && rq.r.Method != http.MethodHead && rq.r.Method != http.MethodPost {
		rq.finalize(http.StatusMethodNotAllowed)
		return
	}
	uri := rq.v.URI
	path := cutNUL(rq.mapPath(uri))
	if strings.HasSuffix(uri, "/") {
		index := []string{"index.html"}
		if len(rq.conf.Index) > 0 {
			index = index[:0]
			for _, t := range rq.conf.Index {
				index = append(index, t.Eval(rq.v))
			}
		}
		dirTested := false
		for _, name := range index {
			if strings.HasPrefix(name, "/") {
				rq.internalRedirect(name)
				return
			}
			fi, err := rq.statFile(path + name)
			if err == nil {
				if !fi.IsDir() {
					rq.internalRedirect(uri + name)
					return
				}
				continue
			}
			// as ngx_http_index_handler: a path that cannot hold the file
			// ends the search, a missing file goes on to the next name
			errno := unwrapErrno(err)
			switch errno {
			case syscall.ENOTDIR, syscall.ENAMETOOLONG:
				rq.logNotFound(`"%s" is not found (%v)`, path+name, errno)
				rq.finalize(http.StatusNotFound)
				return
			case syscall.ELOOP, syscall.EMLINK:
				// a symlink disable_symlinks refuses
				rq.logf(ngxlog.Err, `open() "%s" failed (%v)`, path+name, errnoError{errno})
				rq.finalize(http.StatusForbidden)
				return
			case syscall.EACCES:
				rq.logf(ngxlog.Err, `"%s" is forbidden (%v)`, path+name, errnoError{errno})
				rq.finalize(http.StatusForbidden)
				return
			case syscall.ENOENT:
			default:
				rq.logf(ngxlog.Crit, `stat() "%s" failed (%v)`, path+name, errnoError{errno})
				rq.finalize(http.StatusInternalServerError)
				return
			}
			if !dirTested {
				dirTested = true
				if _, err := rq.statFile(path); errors.Is(err, fs.ErrNotExist) {
					// nginx names the index file here: its directory test
					// cuts the path at the slash and puts it back before
					// logging (ngx_http_index_test_dir)
					rq.logNotFound(`"%s" is not found (%v)`, path+name, unwrapErrno(err))
					rq.finalize(http.StatusNotFound)
					return
				}
			}
		}
		fi, err := rq.statFile(path)
		if err == nil && !fi.IsDir() {
			err = syscall.ENOTDIR
		}
		if err != nil {
			rq.logNotFound(`"%s" is not found (%v)`, path, unwrapErrno(err))
			rq.finalize(http.StatusNotFound)
			return
		}
		if rq.conf.Autoindex {
			if rq.r.Method == http.MethodPost {
				rq.finalize(http.StatusMethodNotAllowed)
				return
			}
			rq.serveFile(path, uri)
			return
		}
		rq.logf(ngxlog.Err, `directory index of "%s" is forbidden`, path)
		rq.finalize(http.StatusForbidden)
		return
	}
	// one walk checks the path (disable_symlinks) and opens the file: the
	// file served is the file checked, and fstat tells what it is
	f, fi, err := rq.openStatic(path)
	if f != nil {
		defer f.Close()
	} else if err == nil {
		// the open failed where a look at the path may not have
		// (an unreadable directory answers 301): look as before
		fi, err = rq.statFile(path)
	}
	if err != nil {
		if errno := unwrapErrno(err); errors.Is(err, fs.ErrPermission) || errno == syscall.ELOOP || errno == syscall.EMLINK {
			rq.logf(ngxlog.Err, `open() "%s" failed (%v)`, path, errnoError{unwrapErrno(err)})
			rq.finalize(http.StatusForbidden)
			return
		}
		rq.logNotFound(`open() "%s" failed (%v)`, path, unwrapErrno(err))
		rq.finalize(http.StatusNotFound)
		return
	}
	if fi.IsDir() {
		loc := vars.Escape(uri, uriEscaped) + "/"
		if rq.v.Args != "" {
			loc += "?" + rq.v.Args
		}
		rq.redirect(http.StatusMovedPermanently, loc)
		return
	}
	if rq.r.Method == http.MethodPost {
		rq.finalize(http.StatusMethodNotAllowed)
		return
	}
	rq.serveOpened(path, uri, f, fi, nil)
}

// cutNUL ends path at its first NUL byte: nginx hands the path to open()
// and stat() as a C string, so a URI with a NUL in it (ngx.req.set_uri
// with binary true) names what comes before it (the document root for
// "\x00..."), where Go's calls would refuse the whole path.
func cutNUL(path string) string {
	if i := strings.IndexByte(path, 0); i >= 0 {
		return path[:i]
	}
	return path
}

func (rq *request) serveFile(path, uri string) { rq.serveOpened(path, uri, nil, nil, nil) }

// serveFileWith is serveFile with tune adjusting the static options (the
// flv module's start=N).
func (rq *request) serveFileWith(path, uri string, tune func(*static.Options)) {
	rq.serveOpened(path, uri, nil, nil, tune)
}

// serveOpened serves path, already open as f with fi its fstat, or opened
// here (by static.Serve) when f is nil; tune, when not nil, adjusts the
// static options.
func (rq *request) serveOpened(path, uri string, f *os.File, fi fs.FileInfo, tune func(*static.Options)) {
	size := func() int64 {
		if fi != nil {
			return fi.Size()
		}
		return fileSize(path)
	}
	if rq.w.override == http.StatusOK {
		// "error_page ... =200": nginx sets the status before its
		// not-modified and range filters, which may still answer 304 or 206
		rq.w.override = 0
	}
	o := rq.staticOptions()
	rq.staticFields = true
	if plan, _ := rq.charsetPlanFor(static.ContentType(uri, o)); plan.changesLength() {
		o.MaxRanges = 0 // recoding drops the length, and with it ranges
	} else if len(rq.conf.SubFilters) > 0 && rq.subFilters(static.ContentType(uri, o), size()) {
		o.MaxRanges = 0 // so does sub_filter
	} else if rq.additionApplies(static.ContentType(uri, o)) {
		o.MaxRanges = 0 // and add_before_body, add_after_body
	} else if rq.ssiApplies(static.ContentType(uri, o)) {
		o.MaxRanges = 0 // and ssi
	} else if rq.conf.Gzip && rq.gzipWill(static.ContentType(uri, o), size(), o.Etag) {
		o.MaxRanges = 0 // and compression
	} else if rq.moreNoRanges(static.ContentType(uri, o)) {
		o.MaxRanges = 0 // and more_clear_headers Accept-Ranges
	} else if plan.log == "" {
		o.PartCharset = plan.label
		if plan.recode != nil {
			o.PartRecode = plan.recode.recoder()
		}
	}
	if tune != nil {
		tune(o)
	}
	var status int
	if f != nil {
		status, _ = static.ServeOpened(rq.w, rq.r, f, fi, path, uri, o)
	} else {
		status, _ = static.Serve(rq.w, rq.r, path, uri, o)
	}
	if status == static.StatusDrop {
		rq.closeConn()
		rq.v.Status = http.StatusPartialContent // nginx's range filter had set it
		return
	}
	if !rq.w.wrote && status >= 300 {
		rq.finalize(status)
	}
}

// tryFiles runs try_files; it reports whether the request goes on to the
// content phase (with $uri set to the file found).
func (rq *request) tryFiles() bool {
	list := rq.conf.TryFiles
	for _, t := range list[:len(list)-1] {
		name := t.Eval(rq.v)
		// nginx decides at load whether an entry tests a directory: the
		// entry as written ends in "/" ($uri/), not the value it gives.
		dir := strings.HasSuffix(t.String(), "/")
		path := rq.mapPath(name)
		if rq.conf.Alias != nil && rq.conf.AliasRegex {
			// the alias of a regex location is the directory the entry is
			// looked up in
			path = rq.st.cfg.FullName(rq.conf.Alias.Eval(rq.v)) + name
		}
		fi, err := rq.statFile(path)
		if err != nil || fi.IsDir() != dir {
			continue
		}
		if rq.conf.Alias != nil && rq.conf.AliasRegex {
			if dir {
				return true // nginx keeps the URI
			}
			rq.addURIToAlias = true
		}
		// a directory entry gives the URI without its last "/" (so that
		// /dir answers 301 to /dir/), as nginx does
		if dir {
			name = name[:len(name)-1]
		}
		rq.v.URI = name
		rq.setPaths()
		return true
	}
	last := list[len(list)-1].Eval(rq.v)
	switch {
	case strings.HasPrefix(last, "="):
		code, err := strconv.Atoi(last[1:])
		if err != nil {
			code = http.StatusInternalServerError
		}
		rq.finalize(code)
	case strings.HasPrefix(last, "@"):
		rq.runNamed(last)
	default:
		rq.internalRedirectArgs(last, true)
	}
	return false
}

// fileSize is the size of the file at path, or -1 when it cannot be told
// (static.Serve then answers for it).
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}
