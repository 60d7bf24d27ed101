package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
)

// ErrorLog writes nginx-style error-log lines:
//
//	2026/11/26 00:31:16 [error] 1234#1234: *5 message, client: 127.0.0.1, server: x, request: "GET / HTTP/1.1", host: "x"
type ErrorLog struct {
	targets []errorTarget
	pid     int
	// everything is the same targets taking every level, for the
	// requests of a debug_connection client (made on first use)
	everything     *ErrorLog
	everythingOnce sync.Once
}

type errorTarget struct {
	w      io.Writer
	level  ngxlog.Level
	syslog *syslogWriter // a syslog: target (w nil)
}

// openErrorLog builds the error log of a list of error_log targets, opening
// each file once through s.logs; memory: targets are left out. It returns
// nil when no target remains.
func (s *Server) openErrorLog(lfs []nginxconf.LogFile) (*ErrorLog, error) {
	el := &ErrorLog{pid: os.Getpid()}
	for _, lf := range lfs {
		if lf.Syslog != nil {
			el.targets = append(el.targets, errorTarget{level: lf.Level, syslog: newSyslogWriter(lf.Syslog)})
			continue
		}
		if strings.HasPrefix(lf.Path, "memory:") {
			continue
		}
		f, err := s.logs.open(lf.Path)
		if err != nil {
			return nil, err
		}
		el.targets = append(el.targets, errorTarget{w: f, level: lf.Level})
	}
	if len(el.targets) == 0 {
		return nil, nil
	}
	return el, nil
}

// provisionErrorLogs builds the error log of every level with error_log
// directives of its own (http, server, location; nested levels inherit
// the same *LocConf.ErrorLogs slice, and with it the same ErrorLog).
func provisionErrorLogs(s *Server, st *state) error {
	built := map[*nginxconf.LogFile]*ErrorLog{}
	for _, lc := range st.cfg.HTTP.Confs {
		if len(lc.ErrorLogs) == 0 {
			continue
		}
		key := &lc.ErrorLogs[0]
		el, ok := built[key]
		if !ok {
			var err error
			if el, err = s.openErrorLog(lc.ErrorLogs); err != nil {
				return err
			}
			built[key] = el
		}
		st.confs[lc.ID].errorLog = el
	}
	return nil
}

// errorLog is the error log of the request's current level: its
// error_log directives', else the main level's; for a client
// debug_connection names, the same files taking every level, as nginx's
// connection log then writes to all of them whatever their level.
func (rq *request) errorLog() *ErrorLog {
	el := rq.st.elog
	if rq.conf != nil {
		if own := rq.st.confs[rq.conf.ID].errorLog; own != nil {
			el = own
		}
	}
	if el != nil && len(rq.st.cfg.DebugConnections) > 0 && rq.debugConnection() {
		return el.debugAll()
	}
	return el
}

// debugConnection reports whether debug_connection names the request's
// peer (its socket's address, not the one realip sets).
func (rq *request) debugConnection() bool {
	addr := rq.v.RealIPRemote
	if addr == "" {
		addr = rq.r.RemoteAddr
	}
	var ip net.IP
	if host, _, err := net.SplitHostPort(addr); err == nil {
		ip = net.ParseIP(host)
	}
	for _, r := range rq.st.cfg.DebugConnections {
		if ruleMatches(r, ip) {
			return true
		}
	}
	return false
}

// debugAll is e with every target at level debug.
func (e *ErrorLog) debugAll() *ErrorLog {
	e.everythingOnce.Do(func() {
		all := &ErrorLog{pid: e.pid}
		for _, t := range e.targets {
			all.targets = append(all.targets, errorTarget{w: t.w, level: ngxlog.Debug, syslog: t.syslog})
		}
		e.everything = all
	})
	return e.everything
}

// NewErrorLog writes to w lines at level or more severe (lower numbers).
func NewErrorLog(w io.Writer, level ngxlog.Level) *ErrorLog {
	return &ErrorLog{targets: []errorTarget{{w: w, level: level}}, pid: os.Getpid()}
}

func (e *ErrorLog) enabled(level ngxlog.Level) bool {
	for _, t := range e.targets {
		if level <= t.level {
			return true
		}
	}
	return false
}

// Logf writes one line. conn is the connection number (0: none).
func (e *ErrorLog) Logf(level ngxlog.Level, conn uint64, format string, args ...any) {
	if e == nil || !e.enabled(level) {
		return
	}
	var b strings.Builder
	b.WriteString(time.Now().Format("2006/01/02 15:04:05"))
	name := level.String()
	if level == ngxlog.Stderr {
		name = "" // nginx's err_levels[0]: ngx.log(ngx.STDERR) writes "[]"
	}
	fmt.Fprintf(&b, " [%s] %d#%d: ", name, e.pid, e.pid)
	if conn != 0 {
		fmt.Fprintf(&b, "*%d ", conn)
	}
	fmt.Fprintf(&b, format, args...)
	b.WriteByte('\n')
	line := []byte(b.String())
	for _, t := range e.targets {
		switch {
		case level > t.level:
		case t.syslog != nil:
			// nginx's syslog writer: the line's own severity, not severity=
			t.syslog.send(int(level)-1, line[:len(line)-1])
		default:
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

func slogLevel(l slog.Level) ngxlog.Level {
	switch {
	case l >= slog.LevelError:
		return ngxlog.Err
	case l >= slog.LevelWarn:
		return ngxlog.Warn
	case l >= slog.LevelInfo:
		return ngxlog.Info
	default:
		return ngxlog.Debug
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

// unwrapPathErr turns *os.PathError into nginx's "(2: No such file or directory)" shape.
func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return errnoError{pe.Err}
	}
	return err
}

type errnoError struct{ err error }

// Error prints the errno inside err the way nginx does: "2: No such file
// or directory".
func (e errnoError) Error() string {
	if e.err == nil {
		return "unknown error"
	}
	return ngxlog.Errno(e.err)
}

func unwrapErrno(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
