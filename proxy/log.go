package proxy

import (
	"bufio"
	"fmt"
	"ngxsockify/ngxlog"
	"os"
	"sync"
	"time"
)

// logModule is nginx's ngx_http_log_module: access_log lines, written in
// the log phase.
var logModule = module{
	name:      "log",
	provision: provisionAccessLogs,
	register: func(e *engine) {
		e.add(phaseLog, logAccess)
	},
}

// accessLogConf is a level's runtime part of the log module.
type accessLogConf struct {
	files []*logFile // by place in LocConf.AccessLogs; nil: a path with variables, opened per request
}

// provisionAccessLogs opens every access_log whose path holds no
// variables.
func provisionAccessLogs(s *Server, st *state) error {
	for _, lc := range st.cfg.HTTP.Confs {
		if lc.AccessLogOff || len(lc.AccessLogs) == 0 {
			continue
		}
		rt := &st.confs[lc.ID]
		rt.logs = true
		rt.accessLog.files = make([]*logFile, len(lc.AccessLogs))
		for i, al := range lc.AccessLogs {
			p, ok := al.Path.Const()
			if !ok {
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

// logAccess writes the request's line to each access_log of its level. A
// path with variables is opened per request (then kept open).
func logAccess(rq *request) rc {
	conf := rq.conf
	if conf.AccessLogOff {
		return rcDeclined
	}
	files := rq.st.confs[conf.ID].accessLog.files
	for i := range conf.AccessLogs {
		al := &conf.AccessLogs[i]
		f := files[i]
		if f == nil {
			p := al.Path.Eval(rq.v)
			var err error
			if f, err = rq.s.logs.open(p); err != nil {
				rq.logf(ngxlog.Err, "%v", err)
				continue
			}
		}
		line := al.Format.Template.EvalLog(rq.v)
		if _, err := f.Write([]byte(line + "\n")); err != nil && f.shouldReport() {
			rq.logf(ngxlog.Alert, `write() to "%s" failed (%v) while logging request`, f.path, errnoError{err})
		}
	}
	return rcDeclined
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
