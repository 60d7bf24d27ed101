package nginxconf

import "strings"

// logModule is ngx_http_log_module: access_log and log_format.
var logModule = module{name: "ngx_http_log_module", directives: []directive{
	{name: "access_log", inherit: inheritReplace, field: "LogConf", set: func(c *compiler, lv *level, d *Directive) { c.accessLog(lv.conf, d) }},
	{name: "log_format", set: func(c *compiler, _ *level, d *Directive) { c.logFormat(d) }},
}}

// LogConf is the log module's part of a location's settings.
type LogConf struct {
	AccessLogs   []AccessLog // empty and AccessLogOff false: inherit default
	AccessLogOff bool
}

// combinedFormat is nginx's predefined "combined" log format.
const combinedFormat = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`

func (c *compiler) logFormat(d *Directive) {
	name := d.Args[0]
	if _, dup := c.cfg.HTTP.LogFormats[name]; dup {
		c.fail(d, `duplicate "log_format" name "%s"`, name)
	}
	args := d.Args[1:]
	if len(args) > 0 && strings.HasPrefix(args[0], "escape=") {
		args = args[1:]
	}
	t := c.template(d, strings.Join(args, ""))
	c.cfg.HTTP.LogFormats[name] = &LogFormat{Name: name, Template: t}
}

func (c *compiler) accessLog(lc *LocConf, d *Directive) {
	a := d.Args
	if a[0] == "off" {
		lc.AccessLogOff = true
		lc.AccessLogs = nil
		return
	}
	if strings.HasPrefix(a[0], "syslog:") {
		c.warn(d, `syslog access logs are not supported, "access_log %s" is ignored`, a[0])
		return
	}
	name := "combined"
	if len(a) > 1 && !strings.Contains(a[1], "=") {
		name = a[1]
	}
	f, ok := c.cfg.HTTP.LogFormats[name]
	if !ok {
		// log_format may come later in the http block; nginx requires it earlier.
		c.fail(d, `unknown log format "%s"`, name)
	}
	path := a[0]
	if path != "/dev/stdout" && path != "/dev/stderr" && !strings.Contains(path, "$") {
		path = fullName(c.cfg.Prefix, path)
	}
	lc.AccessLogs = append(lc.AccessLogs, AccessLog{Path: c.template(d, path), Format: f, File: d.File, Line: d.EndLine})
}
