package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// nginx error-log levels.
const (
	LevelEmerg  = 1
	LevelAlert  = 2
	LevelCrit   = 3
	LevelErr    = 4
	LevelWarn   = 5
	LevelNotice = 6
	LevelInfo   = 7
	LevelDebug  = 8
)

var levelNames = [...]string{"stderr", "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"}

// logModule is nginx's ngx_http_log_module: access_log lines, written in
// the log phase.
var logModule = module{
	name: "log",
	register: func(e *engine) {
		e.add(phaseLog, logAccess)
	},
}

// logAccess writes the request's line to each access_log of its level. A
// path with variables is opened per request (then kept open).
func logAccess(rq *request) rc {
	conf := rq.conf
	if conf.AccessLogOff {
		return rcDeclined
	}
	logs := conf.AccessLogs
	for i := range logs {
		al := &logs[i]
		f := rq.st.access[al]
		if f == nil {
			p := al.Path.Eval(rq.v)
			var err error
			if f, err = rq.s.logs.open(p); err != nil {
				rq.logf(LevelErr, "%v", err)
				continue
			}
		}
		line := al.Format.Template.EvalLog(rq.v)
		if _, err := f.Write([]byte(line + "\n")); err != nil && f.shouldReport() {
			rq.logf(LevelAlert, `write() to "%s" failed (%v) while logging request`, f.path, errnoError{err})
		}
	}
	return rcDeclined
}

// logFiles opens each log path once and can reopen them all (-s reopen).
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

// ErrorLog writes nginx-style error-log lines:
//
//	2026/11/26 00:31:16 [error] 1234#1234: *5 message, client: 127.0.0.1, server: x, request: "GET / HTTP/1.1", host: "x"
type ErrorLog struct {
	targets []errorTarget
	pid     int
}

type errorTarget struct {
	w     io.Writer
	level int
}

// NewErrorLog writes to w lines at level or more severe (lower numbers).
func NewErrorLog(w io.Writer, level int) *ErrorLog {
	return &ErrorLog{targets: []errorTarget{{w, level}}, pid: os.Getpid()}
}

func (e *ErrorLog) enabled(level int) bool {
	for _, t := range e.targets {
		if level <= t.level {
			return true
		}
	}
	return false
}

// Logf writes one line. conn is the connection number (0: none).
func (e *ErrorLog) Logf(level int, conn uint64, format string, args ...any) {
	if e == nil || !e.enabled(level) {
		return
	}
	var b strings.Builder
	b.WriteString(time.Now().Format("2006/01/02 15:04:05"))
	fmt.Fprintf(&b, " [%s] %d#%d: ", levelNames[level], e.pid, e.pid)
	if conn != 0 {
		fmt.Fprintf(&b, "*%d ", conn)
	}
	fmt.Fprintf(&b, format, args...)
	b.WriteByte('\n')
	line := []byte(b.String())
	for _, t := range e.targets {
		if level <= t.level {
			t.w.Write(line)
		}
	}
}

// Slog returns a slog.Logger writing into this error log, for packages that
// log through slog (the websockify relay).
func (e *ErrorLog) Slog() *slog.Logger {
	return slog.New(&slogHandler{e: e})
}

type slogHandler struct {
	e     *ErrorLog
	attrs []slog.Attr
}

func slogLevel(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return LevelErr
	case l >= slog.LevelWarn:
		return LevelWarn
	case l >= slog.LevelInfo:
		return LevelInfo
	default:
		return LevelDebug
	}
}

func (h *slogHandler) Enabled(_ context.Context, l slog.Level) bool { return h.e.enabled(slogLevel(l)) }

func (h *slogHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	var conn uint64
	write := func(a slog.Attr) bool {
		if a.Key == "conn" {
			if n, ok := a.Value.Any().(uint64); ok {
				conn = n
				return true
			}
		}
		fmt.Fprintf(&b, ", %s: %v", a.Key, a.Value.Any())
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	h.e.Logf(slogLevel(r.Level), conn, "%s", b.String())
	return nil
}

func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &slogHandler{e: h.e, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *slogHandler) WithGroup(string) slog.Handler { return h }

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
