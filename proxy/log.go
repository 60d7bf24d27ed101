package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"container/list"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/http1"
)

// logModule is nginx's ngx_http_log_module: access_log lines, written in
// the log phase.
var logModule = module{
	name: "log",
	// error_log of the http, server and location levels too (nginx's core
	// module has it; it is built here with the other log files)
	provision: func(s *Server, st *state) error {
		if err := provisionErrorLogs(s, st); err != nil {
			return err
		}
		return provisionAccessLogs(s, st)
	},
	register: func(e *engine) {
		e.add(phaseLog, logAccess)
	},
}

// $pipe reads the HTTP/1 layer's note of a pipelined request.
func init() { vars.PipelinedOf = http1.Pipelined }

// accessLogConf is a level's runtime part of the log module.
type accessLogConf struct {
	files []*logFile // by place in LocConf.AccessLogs; nil: a path with variables, or syslog
	// syslog are the syslog: targets, by the same place (nil: a file)
	syslog []*syslogWriter
	// cache is the level's open_log_file_cache for paths with variables
	// (levels that inherit the directive share it); nil: such files are
	// opened and closed for every line, as nginx does without the cache.
	cache *openLogCache
}

// provisionAccessLogs opens every access_log whose path holds no
// variables, and makes one cache per open_log_file_cache directive.
func provisionAccessLogs(s *Server, st *state) error {
	caches := map[*nginxconf.LogFileCache]*openLogCache{}
	for _, lc := range st.cfg.HTTP.Confs {
		if lc.AccessLogOff || len(lc.AccessLogs) == 0 {
			continue
		}
		rt := &st.confs[lc.ID]
		rt.logs = true
		rt.accessLog.files = make([]*logFile, len(lc.AccessLogs))
		for i, al := range lc.AccessLogs {
			if al.Syslog != nil {
				if rt.accessLog.syslog == nil {
					rt.accessLog.syslog = make([]*syslogWriter, len(lc.AccessLogs))
				}
				rt.accessLog.syslog[i] = newSyslogWriter(al.Syslog)
				continue
			}
			p, ok := al.Path.Const()
			if !ok {
				if c := lc.OpenLogFileCache; c != nil && rt.accessLog.cache == nil {
					if caches[c] == nil {
						caches[c] = newOpenLogCache(c)
					}
					rt.accessLog.cache = caches[c]
				}
				continue
			}
			f, err := s.logs.open(p)
			if err != nil {
				return fmt.Errorf("%v in %s:%d", err, al.File, al.Line)
			}
			rt.accessLog.files[i] = f
		}
	}
	return nil
}

// logAccess writes the request's line to each access_log of its level
// whose if= condition holds.
func logAccess(rq *request) rc {
	conf := rq.conf
	// nginx's log handler starts with this debug line (ngxsockify is
	// built --with-debug as Debian's nginx is: -V says so), the one a
	// request of every kind writes to an error_log at level debug
	if el := rq.errorLog(); el != nil && el.enabled(ngxlog.Debug) {
		el.Logf(ngxlog.Debug, rq.conn, "http log handler")
	}
	if conf.AccessLogOff {
		return rcDeclined
	}
	rt := &rq.st.confs[conf.ID].accessLog
	rootTested := false
	buf := lineBuffers.Get().(*[]byte)
	defer putLineBuffer(buf)
	for i := range conf.AccessLogs {
		al := &conf.AccessLogs[i]
		if al.If != nil {
			if v := al.If.Eval(rq.v); v == "" || v == "0" {
				continue
			}
		}
		line := al.Format.Template.AppendLog((*buf)[:0], rq.v, al.Format.Escape)
		*buf = line
		if al.Syslog != nil {
			rt.syslog[i].send(al.Syslog.Severity, line)
			continue
		}
		line = append(line, '\n')
		*buf = line
		if al.Gzip != 0 {
			line = gzipMember(line, al.Gzip)
		}
		f := rt.files[i]
		if f == nil {
			if !rootTested {
				if !rq.logRootExists() {
					return rcDeclined
				}
				rootTested = true
			}
			rq.writeVarLog(rt.cache, al.Path.Eval(rq.v), line)
			continue
		}
		if _, err := f.Write(line); err != nil && f.shouldReport() {
			rq.logf(ngxlog.Alert, `write() to "%s" failed (%v) while logging request`, f.path, errnoError{err})
		}
	}
	return rcDeclined
}

// lineBuffers hold access-log lines while they are written (a line is
// written before logAccess returns: nothing keeps it).
var lineBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// putLineBuffer gives buf back to lineBuffers, unless a long line grew it.
func putLineBuffer(buf *[]byte) {
	if cap(*buf) <= 16<<10 {
		lineBuffers.Put(buf)
	}
}

// logRootExists is nginx's check before the first access_log path with
// variables of a request: the location's root directory must exist, else
// nothing is logged there (an error says why).
func (rq *request) logRootExists() bool {
	docRoot, filename, lazy := rq.v.DocumentRoot, rq.v.RequestFilename, rq.v.LazyPaths
	saved := rq.paths
	rq.setPaths()
	rq.v.ResolvePaths()
	root := rq.v.DocumentRoot
	rq.v.DocumentRoot, rq.v.RequestFilename, rq.v.LazyPaths = docRoot, filename, lazy
	rq.paths = saved
	fi, err := os.Stat(root)
	switch {
	case err != nil:
		rq.logf(ngxlog.Err, `testing "%s" existence failed (%v)`, root, errnoError{unwrapErrno(err)})
		return false
	case !fi.IsDir():
		rq.logf(ngxlog.Err, `testing "%s" existence failed (%v)`, root, errnoError{syscall.ENOTDIR})
		return false
	}
	return true
}

// writeVarLog writes line to the access log at path (a path with
// variables): through the level's open_log_file_cache, else opened and
// closed for this line.
func (rq *request) writeVarLog(cache *openLogCache, path string, line []byte) {
	var err error
	if cache != nil {
		err = cache.write(path, line)
	} else {
		var f *os.File
		if f, err = openAccessLog(path); err == nil {
			_, err = f.Write(line)
			f.Close()
		}
	}
	if err != nil {
		rq.logf(ngxlog.Crit, "%v", err)
	}
}

func openAccessLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf(`open() "%s" failed (%v)`, path, errnoError{unwrapErrno(err)})
	}
	return f, nil
}

// gzipMember compresses line into one gzip member (a file of them is
// valid gzip, as nginx's flushed buffers are).
func gzipMember(line []byte, level int) []byte {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, level)
	if err != nil {
		return line
	}
	zw.Write(line)
	zw.Close()
	return b.Bytes()
}

// openLogCache is one open_log_file_cache: the files of access_log paths
// with variables, kept open once used min_uses times, at most max of
// them, each dropped when unused for inactive and checked against its
// path again after valid, as nginx's open file cache does for logs.
type openLogCache struct {
	conf    *nginxconf.LogFileCache
	mu      sync.Mutex
	entries map[string]*list.Element // of *cachedLog
	lru     list.List                // front: most recently used
}

type cachedLog struct {
	path              string
	f                 *os.File // nil: not kept open (fewer than min_uses uses)
	uses              int
	created, accessed time.Time
}

func newOpenLogCache(c *nginxconf.LogFileCache) *openLogCache {
	return &openLogCache{conf: c, entries: map[string]*list.Element{}}
}

func (c *openLogCache) write(path string, line []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	var e *cachedLog
	el := c.entries[path]
	if el != nil {
		e = el.Value.(*cachedLog)
		if e.f != nil && now.Sub(e.created) >= c.conf.Valid {
			// revalidate: keep the descriptor while the path names its file
			fi, err := os.Stat(path)
			cur, cerr := e.f.Stat()
			if err != nil || cerr != nil || !os.SameFile(fi, cur) {
				e.f.Close()
				e.f = nil
			} else {
				e.created = now
			}
		}
	}
	if e == nil || e.f == nil {
		f, err := openAccessLog(path)
		if err != nil {
			return err // a failed open is not cached
		}
		if e == nil {
			if len(c.entries) >= c.conf.Max {
				c.expire(now, true)
			}
			e = &cachedLog{path: path}
			el = c.lru.PushFront(e)
			c.entries[path] = el
		}
		e.f, e.created = f, now
	}
	e.uses++
	_, err := e.f.Write(line)
	e.accessed = now
	c.lru.MoveToFront(el)
	if e.uses < c.conf.MinUses {
		e.f.Close()
		e.f = nil
	}
	c.expire(now, false)
	return err
}

// expire drops up to two entries unused for longer than inactive, from the
// least recently used end; with force, the least recently used one first
// whatever its age (nginx's ngx_expire_old_cached_files).
func (c *openLogCache) expire(now time.Time, force bool) {
	n := 1
	if force {
		n = 0
	}
	for ; n < 3; n++ {
		el := c.lru.Back()
		if el == nil {
			return
		}
		e := el.Value.(*cachedLog)
		if n != 0 && now.Sub(e.accessed) <= c.conf.Inactive {
			return
		}
		if e.f != nil {
			e.f.Close()
		}
		c.lru.Remove(el)
		delete(c.entries, e.path)
	}
}

// logFiles opens each log path once (access and error logs) and can reopen them all (-s reopen).
type logFiles struct {
	mu    sync.Mutex
	files map[string]*logFile
}

type logFile struct {
	mu         sync.Mutex
	lastReport time.Time // last failed write reported (nginx: once a minute)
	path       string
	f          *os.File
	w          *bufio.Writer
	own        bool
}

func newLogFiles() *logFiles { return &logFiles{files: map[string]*logFile{}} }

// open returns the shared writer for path, opening it on first use.
func (lf *logFiles) open(path string) (*logFile, error) {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if f, ok := lf.files[path]; ok {
		return f, nil
	}
	l := &logFile{path: path}
	if err := l.openFile(); err != nil {
		return nil, err
	}
	lf.files[path] = l
	return l, nil
}

func (l *logFile) openFile() error {
	switch l.path {
	case "stderr", "/dev/stderr":
		l.f, l.own = os.Stderr, false
	case "/dev/stdout":
		l.f, l.own = os.Stdout, false
	default:
		f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf(`open() "%s" failed (%v)`, l.path, errnoError{unwrapErrno(err)})
		}
		l.f, l.own = f, true
	}
	l.w = bufio.NewWriterSize(l.f, 0)
	return nil
}

// Write writes one whole line; log lines are unbuffered so that nothing is
// lost when the process dies.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

func (lf *logFiles) reopen() error {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	var first error
	for _, l := range lf.files {
		l.mu.Lock()
		if l.own {
			old := l.f
			if err := l.openFile(); err != nil && first == nil {
				first = err
				l.f = old
			} else {
				old.Close()
			}
		}
		l.mu.Unlock()
	}
	return first
}

func (lf *logFiles) close() {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	for _, l := range lf.files {
		if l.own {
			l.f.Close()
		}
	}
	lf.files = map[string]*logFile{}
}

// shouldReport reports whether a failed write to this file should be
// logged now: at most once a minute, as nginx does.
func (l *logFile) shouldReport() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.lastReport) >= time.Minute {
		l.lastReport = now
		return true
	}
	return false
}
