package proxy

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/proxy/static"
)

// content runs the content phase: a directive we do not implement, the
// websockify relay, content_by_lua, or static files.
func (rq *request) content() {
	conf := rq.conf
	switch {
	case conf.Unsupported != nil:
		u := conf.Unsupported
		rq.logf(LevelErr, `"%s" directive in %s:%d is not supported by ngxsockify`, u.Directive, u.File, u.Line)
		rq.finalize(http.StatusBadGateway)
	case conf.Websockify != nil:
		rq.websockify(conf.Websockify)
	case conf.ContentLua != nil:
		rq.runLuaContent(conf.ContentLua)
	default:
		rq.static()
	}
}

// mapPath turns the current URI into a file-system path with root or alias.
func (rq *request) mapPath(uri string) string {
	conf := rq.conf
	if conf.Alias != nil && rq.loc != nil {
		alias := conf.Alias.Eval(rq.v)
		if rq.loc.Regex != nil {
			return rq.st.cfg.FullName(alias)
		}
		rest := strings.TrimPrefix(uri, rq.loc.Path)
		return rq.st.cfg.FullName(alias + rest)
	}
	root := "html"
	if conf.Root != nil {
		root = conf.Root.Eval(rq.v)
	}
	return rq.st.cfg.FullName(root) + uri
}

func (rq *request) staticOptions() *static.Options {
	return &static.Options{
		Autoindex:   rq.conf.Autoindex,
		Types:       rq.conf.Types,
		DefaultType: rq.conf.DefaultType,
		Etag:        rq.conf.Etag,
	}
}

// static serves files: index files for directory URIs (as internal
// redirects, like nginx's index module), a 301 for a directory without
// its slash, 404/403 otherwise.
func (rq *request) static() {
	if rq.r.Method != http.MethodGet && rq.r.Method != http.MethodHead && rq.r.Method != http.MethodPost {
		rq.finalize(http.StatusMethodNotAllowed)
		return
	}
	uri := rq.v.URI
	path := rq.mapPath(uri)
	if strings.HasSuffix(uri, "/") {
		index := []string{"index.html"}
		if len(rq.conf.Index) > 0 {
			index = index[:0]
			for _, t := range rq.conf.Index {
				index = append(index, t.Eval(rq.v))
			}
		}
		for i, name := range index {
			if strings.HasPrefix(name, "/") {
				rq.internalRedirect(name)
				return
			}
			fi, err := os.Stat(path + name)
			if err == nil && !fi.IsDir() {
				rq.internalRedirect(uri + name)
				return
			}
			if err != nil && i == len(index)-1 && !errors.Is(err, fs.ErrNotExist) {
				rq.logf(LevelErr, `"%s" is forbidden (%v)`, path+name, errnoError{unwrapErrno(err)})
				rq.finalize(http.StatusForbidden)
				return
			}
		}
		fi, err := os.Stat(path)
		if err == nil && !fi.IsDir() {
			err = syscall.ENOTDIR
		}
		if err != nil {
			rq.logf(LevelErr, `"%s" is not found (%v)`, path, errnoError{unwrapErrno(err)})
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
		rq.logf(LevelErr, `directory index of "%s" is forbidden`, path)
		rq.finalize(http.StatusForbidden)
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		code := http.StatusNotFound
		if errors.Is(err, fs.ErrPermission) {
			code = http.StatusForbidden
		}
		rq.logf(LevelErr, `open() "%s" failed (%v)`, path, errnoError{unwrapErrno(err)})
		rq.finalize(code)
		return
	}
	if fi.IsDir() {
		loc := uri + "/"
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
	rq.serveFile(path, uri)
}

func (rq *request) serveFile(path, uri string) {
	status, _ := static.Serve(rq.w, rq.r, path, uri, rq.staticOptions())
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
		fi, err := os.Stat(path)
		if err != nil || fi.IsDir() != dir {
			continue
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
		rq.internalRedirect(last)
	}
	return false
}

func unwrapErrno(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func itoa(n int) string { return strconv.Itoa(n) }

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// setExpires adds Expires and Cache-Control as nginx's headers filter does.
func setExpires(h http.Header, e *nginxconf.Expires, v *vars.Request, now time.Time) {
	kind, off := e.Kind, e.Offset
	if kind == nginxconf.ExpiresVar {
		val := e.Value.Eval(v)
		switch val {
		case "off", "":
			return
		case "epoch":
			kind = nginxconf.ExpiresEpoch
		case "max":
			kind = nginxconf.ExpiresMax
		default:
			t, ok := nginxconf.ParseExpires(val)
			if !ok {
				return
			}
			kind, off = nginxconf.ExpiresAfter, t
			if strings.HasPrefix(val, "@") {
				kind = nginxconf.ExpiresDaily
			}
		}
	}
	const httpTime = "Mon, 02 Jan 2006 15:04:05 GMT"
	switch kind {
	case nginxconf.ExpiresEpoch:
		h.Set("Expires", "Thu, 01 Jan 1970 00:00:01 GMT")
		h.Set("Cache-Control", "no-cache")
		return
	case nginxconf.ExpiresMax:
		h.Set("Expires", "Thu, 31 Dec 2037 23:55:55 GMT")
		h.Set("Cache-Control", "max-age=315360000")
		return
	}
	base := now
	if e.Modified {
		if lm, err := http.ParseTime(h.Get("Last-Modified")); err == nil {
			base = lm
		}
	}
	var at time.Time
	if kind == nginxconf.ExpiresDaily {
		day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.Local)
		at = day.Add(off)
		if !at.After(now) {
			at = at.Add(24 * time.Hour)
		}
	} else {
		at = base.Add(off)
	}
	h.Set("Expires", at.UTC().Format(httpTime))
	maxAge := int64(at.Sub(now) / time.Second)
	if off < 0 || maxAge < 0 {
		h.Set("Cache-Control", "no-cache")
	} else {
		h.Set("Cache-Control", "max-age="+strconv.FormatInt(maxAge, 10))
	}
}
