package nginxconf

import (
	"strconv"
	"strings"
	"time"

	"ngxsockify/nginxconf/vars"
)

// logModule is ngx_http_log_module: access_log, log_format and
// open_log_file_cache.
var logModule = module{name: "ngx_http_log_module", directives: []directive{
	{name: "access_log", inherit: inheritReplace, field: "AccessLogSet", set: func(c *compiler, lv *level, d *Directive) { c.accessLog(lv.conf, d) }},
	{name: "log_format", set: func(c *compiler, _ *level, d *Directive) { c.logFormat(d) }},
	{name: "open_log_file_cache", dup: "open_log_file_cache", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.OpenLogFileCache = c.openLogFileCache(d)
	}},
}}

// LogConf is the log module's part of a location's settings.
type LogConf struct {
	AccessLogSet
	// OpenLogFileCache keeps the files of access_log paths with variables
	// open; nil (nginx's default, and "off"): open and close them for
	// every line.
	OpenLogFileCache *LogFileCache
}

// AccessLogSet is the access_log directives of one level, which replace
// the inherited ones together.
type AccessLogSet struct {
	AccessLogs   []AccessLog // empty and AccessLogOff false: inherit default
	AccessLogOff bool
}

// LogFileCache is open_log_file_cache.
type LogFileCache struct {
	Max      int
	Inactive time.Duration // default 10s
	MinUses  int           // default 1
	Valid    time.Duration // default 60s
}

// combinedFormat is nginx's predefined "combined" log format.
const combinedFormat = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`

func (c *compiler) logFormat(d *Directive) {
	name := d.Args[0]
	if _, dup := c.cfg.HTTP.LogFormats[name]; dup {
		c.fail(d, `duplicate "log_format" name "%s"`, name)
		return
	}
	args := d.Args[1:]
	esc := vars.LogEscapeDefault
	if len(args) > 0 && strings.HasPrefix(args[0], "escape=") {
		switch v := args[0][len("escape="):]; v {
		case "default":
		case "json":
			esc = vars.LogEscapeJSON
		case "none":
			esc = vars.LogEscapeNone
		default:
			c.fail(d, `unknown log format escaping "%s"`, v)
			return
		}
		args = args[1:]
	}
	t, err := c.reg.CompileLog(strings.Join(args, ""))
	if err != nil {
		c.fail(d, "%s", err.Error())
	}
	c.cfg.HTTP.LogFormats[name] = &LogFormat{Name: name, Template: t, Escape: esc}
}

// accessLog compiles `access_log path [format [buffer=size] [gzip[=level]]
// [flush=time] [if=condition]]` | `access_log off` as nginx 1.22 does:
// the parameters come after the format name, which is therefore required
// with them.
func (c *compiler) accessLog(lc *LocConf, d *Directive) {
	a := d.Args
	if a[0] == "off" {
		lc.AccessLogOff = true
		lc.AccessLogs = nil
		if len(a) > 1 {
			c.fail(d, `invalid parameter "%s"`, a[1])
		}
		return
	}
	var peer *SyslogPeer
	if strings.HasPrefix(a[0], "syslog:") {
		peer = c.syslogPeer(d, a[0])
	}
	path := a[0]
	hasVars := peer == nil && strings.Contains(path, "$")
	if path != "/dev/stdout" && path != "/dev/stderr" && peer == nil {
		path = fullName(c.cfg.Prefix, path)
	}
	name := "combined"
	if len(a) > 1 {
		name = a[1]
	}
	f, ok := c.cfg.HTTP.LogFormats[name]
	if !ok {
		// log_format may come later in the http block; nginx requires it earlier.
		c.fail(d, `unknown log format "%s"`, name)
		return
	}
	al := AccessLog{Format: f, Syslog: peer, File: d.File, Line: d.EndLine}
	if peer == nil {
		al.Path = c.template(d, path)
	}
	var flush time.Duration
	for _, p := range a[min(len(a), 2):] {
		switch {
		case strings.HasPrefix(p, "buffer="):
			n, err := ParseSize(p[len("buffer="):])
			if err != nil || n == 0 {
				c.fail(d, `invalid buffer size "%s"`, p[len("buffer="):])
				return
			}
			al.Buffer = n
		case strings.HasPrefix(p, "flush="):
			t, err := parseMsec(p[len("flush="):])
			if err != nil || t == 0 {
				c.fail(d, `invalid flush time "%s"`, p[len("flush="):])
				return
			}
			flush = t
		case p == "gzip":
			al.Gzip = 1
		case strings.HasPrefix(p, "gzip="):
			n, err := atoiNginx(p[len("gzip="):])
			if err != nil || n < 1 || n > 9 {
				c.fail(d, `invalid compression level "%s"`, p[len("gzip="):])
				return
			}
			al.Gzip = n
		case strings.HasPrefix(p, "if="):
			al.If = c.template(d, p[len("if="):])
		default:
			c.fail(d, `invalid parameter "%s"`, p)
			return
		}
		if al.Gzip != 0 && al.Buffer == 0 {
			al.Buffer = 64 << 10 // gzip buffers, 64k unless buffer= says
		}
	}
	if peer != nil && al.Buffer != 0 {
		c.fail(d, "logs to syslog cannot be buffered")
		return
	}
	if flush != 0 && al.Buffer == 0 {
		c.fail(d, `no buffer is defined for access_log "%s"`, a[0])
		return
	}
	if al.Buffer != 0 && hasVars {
		c.fail(d, "buffered logs cannot have variables in name")
		return
	}
	lc.AccessLogs = append(lc.AccessLogs, al)
}

// parseMsec is ngx_parse_time for milliseconds: a bare number is
// milliseconds.
func parseMsec(s string) (time.Duration, error) {
	if n, err := strconv.ParseUint(s, 10, 31); err == nil {
		return time.Duration(n) * time.Millisecond, nil
	}
	return ParseTime(s)
}

// openLogFileCache compiles `open_log_file_cache max=N [inactive=time]
// [min_uses=N] [valid=time]` | `off`.
func (c *compiler) openLogFileCache(d *Directive) *LogFileCache {
	lfc := &LogFileCache{Inactive: 10 * time.Second, MinUses: 1, Valid: 60 * time.Second}
	off := false
	for _, p := range d.Args {
		var err error
		key, val, _ := strings.Cut(p, "=")
		switch key + "=" {
		case "max=":
			lfc.Max, err = atoiNginx(val)
		case "inactive=":
			lfc.Inactive, err = ParseTime(val)
		case "min_uses=":
			lfc.MinUses, err = atoiNginx(val)
		case "valid=":
			lfc.Valid, err = ParseTime(val)
		default:
			if p != "off" {
				err = errBadValue
			}
			off = true
		}
		if err != nil {
			c.fail(d, `invalid "open_log_file_cache" parameter "%s"`, p)
			return nil
		}
	}
	if off {
		return nil
	}
	if lfc.Max == 0 {
		c.fail(d, `"open_log_file_cache" must have "max" parameter`)
		return nil
	}
	return lfc
}

// atoiNginx is ngx_atoi: decimal digits only.
func atoiNginx(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errBadValue
	}
	return strconv.Atoi(s)
}
