package nginxconf

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// coreModule is ngx_core_module and ngx_events_module: the main level.
var coreModule = module{name: "ngx_core_module", directives: []directive{
	{name: "include", set: handledElsewhere}, // read by the parser
	{name: "events", dup: "events", opens: ctxEvent, set: func(c *compiler, _ *level, d *Directive) {
		c.events = true
		c.block(&level{ctx: ctxEvents}, d.Block)
	}},
	{name: "debug_connection", set: func(c *compiler, _ *level, d *Directive) { c.debugConnection(d) }},
	{name: "http", dup: "http", opens: ctxHTTPMain, set: func(c *compiler, _ *level, d *Directive) {
		if c.httpBlock != nil {
			c.fail(d, `"http" directive is duplicate`)
		}
		c.httpBlock = d
	}},
	{name: "daemon", set: func(c *compiler, _ *level, d *Directive) { c.cfg.Daemon = d.Args[0] == "on" }},
	{name: "worker_processes", dup: "worker_processes", set: func(c *compiler, _ *level, d *Directive) {
		if d.Args[0] == "auto" {
			c.cfg.WorkerProcesses = 0
		} else if n, err := strconv.Atoi(d.Args[0]); err == nil && n >= 0 && d.Args[0][0] != '+' {
			c.cfg.WorkerProcesses = max(n, 1)
		} else {
			c.fail(d, `"worker_processes" directive invalid value`)
		}
	}},
	{name: "pid", dup: "pid", set: func(c *compiler, _ *level, d *Directive) {
		c.pidSet = true
		if d.Args[0] != "off" {
			c.cfg.PID = fullName(c.cfg.Prefix, d.Args[0])
		}
	}},
	{name: "error_log", inherit: inheritReplace, field: "ErrorLogs", set: func(c *compiler, lv *level, d *Directive) {
		switch {
		case lv.ctx == ctxTop:
			c.cfg.ErrorLog = append(c.cfg.ErrorLog, c.errorLog(d))
		case lv.conf != nil: // http, server, location
			lv.conf.ErrorLogs = append(lv.conf.ErrorLogs, c.errorLog(d))
		}
	}},
	// Processes and privileges (user.go).
	{name: "master_process", set: func(c *compiler, _ *level, d *Directive) { c.cfg.MasterProcess = d.Args[0] == "on" }},
	{name: "user", set: (*compiler).user}, // its own duplicate check: none without root
	{name: "worker_shutdown_timeout", dup: "worker_shutdown_timeout", set: func(c *compiler, _ *level, d *Directive) {
		c.cfg.WorkerShutdownTimeout = c.duration(d, d.Args[0])
	}},
	{name: "env", set: func(c *compiler, _ *level, d *Directive) {
		name, value, has := strings.Cut(d.Args[0], "=")
		c.cfg.Env = append(c.cfg.Env, EnvVar{Name: name, Value: value, HasValue: has})
	}},
	{name: "thread_pool", set: (*compiler).threadPool},
}}

// threadPool reads `thread_pool NAME threads=N [max_queue=N];` (nginx's
// ngx_thread_pool module; max_queue defaults to 65536). Lua's
// ngx.run_worker_thread runs on the pools it names.
func (c *compiler) threadPool(_ *level, d *Directive) {
	name := d.Args[0]
	if _, dup := c.cfg.ThreadPools[name]; dup {
		c.fail(d, `duplicate thread pool "%s"`, name)
		return
	}
	tp := ThreadPool{MaxQueue: 65536}
	for _, a := range d.Args[1:] {
		switch {
		case strings.HasPrefix(a, "threads="):
			n, err := strconv.Atoi(a[len("threads="):])
			if err != nil || n <= 0 || a[len("threads=")] == '+' || a[len("threads=")] == '-' {
				c.fail(d, `invalid threads value "%s"`, a)
				return
			}
			tp.Threads = n
		case strings.HasPrefix(a, "max_queue="):
			v := a[len("max_queue="):]
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || v == "" || v[0] == '+' || v[0] == '-' {
				c.fail(d, `invalid max_queue value "%s"`, a)
				return
			}
			tp.MaxQueue = n
		}
		// nginx passes over other parameters
	}
	if tp.Threads == 0 {
		c.fail(d, `"thread_pool" must have "threads" parameter`)
		return
	}
	if c.cfg.ThreadPools == nil {
		c.cfg.ThreadPools = map[string]ThreadPool{}
	}
	c.cfg.ThreadPools[name] = tp
}

// httpCoreModule is ngx_http_core_module: servers, listens, locations and
// the settings every location has.
var httpCoreModule = module{name: "ngx_http_core_module", create: func(lc *LocConf) {
	lc.DefaultType = "text/plain"
	lc.ServerTokens, lc.AbsoluteRedirect, lc.Etag, lc.LogNotFound = true, true, true, true
	lc.ClientMaxBodySize = 1 << 20
	lc.ClientBodyBufferSize = 8 << 10 // two memory pages on x86-64
	lc.PostponeOutput = 1460
	lc.KeepaliveTimeout = 75 * time.Second
	lc.KeepaliveRequests, lc.KeepaliveTime, lc.KeepaliveDisable = 1000, time.Hour, KeepaliveDisableMSIE6
	lc.ClientHeaderTimeout, lc.ClientBodyTimeout, lc.SendTimeout = 60*time.Second, 60*time.Second, 60*time.Second
	lc.LingeringTime, lc.LingeringTimeout = 30*time.Second, 5*time.Second
	lc.ClientHeaderBufferSize, lc.LargeHeaderBuffers, lc.LargeHeaderBufferSize = 1<<10, 4, 8<<10
	lc.MaxHeaders = 1000
	lc.SubrequestOutputBufferSize = 4 << 10 // one memory page on x86-64
	lc.ResolverTimeout = 30 * time.Second
}, directives: []directive{
	{name: "server", opens: ctxHTTPSrv, set: func(c *compiler, lv *level, d *Directive) {
		if lv.ctx == ctxHTTP {
			*lv.nested = append(*lv.nested, d) // compiled once the http block is complete
		}
	}},
	{name: "listen", set: func(c *compiler, lv *level, d *Directive) {
		for _, l := range c.listen(d) {
			for _, prev := range lv.srv.Listens {
				if prev.Network == l.Network && prev.Addr == l.Addr {
					c.fail(d, "a duplicate listen %s", listenName(l))
				}
			}
			lv.srv.Listens = append(lv.srv.Listens, l)
		}
	}},
	{name: "server_name", set: func(c *compiler, lv *level, d *Directive) {
		for _, a := range d.Args {
			lv.srv.Names = append(lv.srv.Names, c.serverName(d, a))
		}
	}},
	{name: "location", opens: ctxHTTPLoc, set: func(c *compiler, lv *level, d *Directive) {
		*lv.nested = append(*lv.nested, d) // compiled once the enclosing block is complete
	}},
	{name: "limit_except", opens: ctxHTTPLmt, inherit: inheritNone, field: "LimitExcept", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.LimitExcept = c.limitExcept(lv, d)
	}},
	{name: "internal", inherit: inheritNone, field: "Internal", set: func(c *compiler, lv *level, d *Directive) { lv.conf.Internal = true }},
	{name: "root", dup: rootAliasSlot, set: setRootAlias},
	{name: "alias", dup: rootAliasSlot, set: setRootAlias},
	{name: "try_files", inherit: inheritNot, field: "TryFiles", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.TryFiles = nil
		for _, v := range d.Args {
			lv.conf.TryFiles = append(lv.conf.TryFiles, c.template(d, v))
		}
	}},
	{name: "error_page", inherit: inheritReplace, field: "ErrorPages", set: func(c *compiler, lv *level, d *Directive) { c.errorPage(lv.conf, d) }},
	{name: "default_type", dup: "default_type", set: func(c *compiler, lv *level, d *Directive) { lv.conf.DefaultType = d.Args[0] }},
	{name: "types", custom: true, set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.Types = map[string]string{}
		for _, td := range d.Block {
			for _, ext := range td.Args {
				lv.conf.Types[strings.ToLower(ext)] = td.Name
			}
		}
	}},
	{name: "client_max_body_size", dup: "client_max_body_size", set: func(c *compiler, lv *level, d *Directive) {
		n, err := ParseOffset(d.Args[0])
		if err != nil {
			c.fail(d, `"client_max_body_size" directive invalid value`)
		}
		lv.conf.ClientMaxBodySize = n
	}},
	sized("postpone_output", func(lc *LocConf) *int64 { return &lc.PostponeOutput }),
	sized("client_body_buffer_size", func(lc *LocConf) *int64 { return &lc.ClientBodyBufferSize }),
	// The connection layer's timeouts and buffers (proxy/http1), together.
	{name: "keepalive_timeout", dup: "keepalive_timeout", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.KeepaliveTimeout = c.duration(d, d.Args[0])
		lv.conf.KeepaliveHeader = 0
		if len(d.Args) > 1 {
			lv.conf.KeepaliveHeader = c.duration(d, d.Args[1])
		}
	}},
	{name: "keepalive_requests", dup: "keepalive_requests", set: func(c *compiler, lv *level, d *Directive) {
		n, err := strconv.Atoi(d.Args[0])
		if err != nil || n < 0 {
			c.fail(d, `"keepalive_requests" directive invalid number`)
		}
		lv.conf.KeepaliveRequests = n
	}},
	timed("keepalive_time", func(lc *LocConf) *time.Duration { return &lc.KeepaliveTime }),
	{name: "keepalive_disable", dup: "keepalive_disable", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.KeepaliveDisable = 0
		for _, a := range d.Args {
			switch a {
			case "none":
				lv.conf.KeepaliveDisable = 0
			case "msie6":
				lv.conf.KeepaliveDisable |= KeepaliveDisableMSIE6
			case "safari":
				lv.conf.KeepaliveDisable |= KeepaliveDisableSafari
			default:
				c.fail(d, `invalid value "%s"`, a)
			}
		}
	}},
	timed("client_header_timeout", func(lc *LocConf) *time.Duration { return &lc.ClientHeaderTimeout }),
	timed("client_body_timeout", func(lc *LocConf) *time.Duration { return &lc.ClientBodyTimeout }),
	timed("send_timeout", func(lc *LocConf) *time.Duration { return &lc.SendTimeout }),
	timed("auth_delay", func(lc *LocConf) *time.Duration { return &lc.AuthDelay }),
	timed("lingering_time", func(lc *LocConf) *time.Duration { return &lc.LingeringTime }),
	timed("lingering_timeout", func(lc *LocConf) *time.Duration { return &lc.LingeringTimeout }),
	{name: "lingering_close", dup: "lingering_close", set: func(c *compiler, lv *level, d *Directive) {
		switch d.Args[0] {
		case "on":
			lv.conf.LingeringClose = 0
		case "off":
			lv.conf.LingeringClose = 1
		case "always":
			lv.conf.LingeringClose = 2
		default:
			c.fail(d, `invalid value "%s"`, d.Args[0])
		}
	}},
	sized("client_header_buffer_size", func(lc *LocConf) *int { return &lc.ClientHeaderBufferSize }),
	{name: "large_client_header_buffers", dup: "large_client_header_buffers", set: func(c *compiler, lv *level, d *Directive) {
		n, err := strconv.Atoi(d.Args[0])
		size, err2 := ParseSize(d.Args[1])
		if err != nil || n <= 0 || err2 != nil || size <= 0 {
			c.fail(d, `"large_client_header_buffers" directive invalid value`)
		}
		lv.conf.LargeHeaderBuffers, lv.conf.LargeHeaderBufferSize = n, int(size)
	}},
	// max_headers: Debian's 1.22.1 carries it (backported from nginx 1.29):
	// a request with more header lines answers 400 "Request Header Or
	// Cookie Too Large".
	{name: "max_headers", masks: []uint{ctxHTTPMain | ctxHTTPSrv | confTake1}, dup: "max_headers", set: func(c *compiler, lv *level, d *Directive) {
		n, err := strconv.Atoi(d.Args[0])
		if err != nil || n < 0 || d.Args[0][0] == '+' {
			c.fail(d, `"max_headers" directive invalid number`)
		}
		lv.conf.MaxHeaders = n
	}},
	sized("subrequest_output_buffer_size", func(lc *LocConf) *int { return &lc.SubrequestOutputBufferSize }),
	{name: "underscores_in_headers", dup: "underscores_in_headers", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.UnderscoresInHeaders = d.Args[0] == "on"
	}},
	{name: "ignore_invalid_headers", dup: "ignore_invalid_headers", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.KeepInvalidHeaders = d.Args[0] == "off"
	}},
	{name: "server_tokens", dup: "server_tokens", set: func(c *compiler, lv *level, d *Directive) { lv.conf.ServerTokens = d.Args[0] != "off" }},
	{name: "client_body_in_file_only", dup: "client_body_in_file_only", set: func(c *compiler, lv *level, d *Directive) {
		switch d.Args[0] {
		case "on", "clean":
			lv.conf.ClientBodyInFileOnly, lv.conf.ClientBodyFileKept = true, d.Args[0] == "on"
		case "off":
			lv.conf.ClientBodyInFileOnly, lv.conf.ClientBodyFileKept = false, false
		default:
			c.fail(d, `invalid value "%s"`, d.Args[0])
		}
	}},
	{name: "client_body_temp_path", dup: "client_body_temp_path", set: func(c *compiler, lv *level, d *Directive) {
		p := TempPath{Dir: fullName(c.cfg.Prefix, d.Args[0])}
		digits := 0
		for _, a := range d.Args[1:] {
			n, err := strconv.Atoi(a)
			digits += n
			if err != nil || n < 1 || digits > 10 {
				c.fail(d, `invalid value "%s"`, a)
			}
			p.Levels = append(p.Levels, n)
		}
		lv.conf.ClientBodyTempPath = p
	}},
	{name: "log_not_found", dup: "log_not_found", set: func(c *compiler, lv *level, d *Directive) { lv.conf.LogNotFound = d.Args[0] == "on" }},
	{name: "post_action", masks: []uint{ctxHTTPAll | ctxHTTPLif | confTake1}, dup: "post_action", set: func(c *compiler, lv *level, d *Directive) { lv.conf.PostAction = d.Args[0] }},
	{name: "msie_padding", set: func(c *compiler, lv *level, d *Directive) { lv.conf.NoMSIEPadding = d.Args[0] == "off" }},
	{name: "msie_refresh", set: func(c *compiler, lv *level, d *Directive) { lv.conf.MSIERefresh = d.Args[0] == "on" }},
	{name: "recursive_error_pages", set: func(c *compiler, lv *level, d *Directive) { lv.conf.RecursiveErrorPages = d.Args[0] == "on" }},
	{name: "merge_slashes", set: func(c *compiler, lv *level, d *Directive) { lv.conf.NoMergeSlashes = d.Args[0] == "off" }},
	{name: "log_subrequest", dup: "log_subrequest", set: func(c *compiler, lv *level, d *Directive) { lv.conf.LogSubrequest = d.Args[0] == "on" }},
	{name: "chunked_transfer_encoding", set: func(c *compiler, lv *level, d *Directive) { lv.conf.NoChunked = d.Args[0] == "off" }},
	{name: "absolute_redirect", set: func(c *compiler, lv *level, d *Directive) { lv.conf.AbsoluteRedirect = d.Args[0] == "on" }},
	{name: "server_name_in_redirect", set: func(c *compiler, lv *level, d *Directive) { lv.conf.ServerNameInRedirect = d.Args[0] == "on" }},
	{name: "port_in_redirect", set: func(c *compiler, lv *level, d *Directive) { lv.conf.NoPortInRedirect = d.Args[0] == "off" }},
	{name: "etag", set: func(c *compiler, lv *level, d *Directive) { lv.conf.Etag = d.Args[0] == "on" }},
	{name: "satisfy", dup: "satisfy", set: func(c *compiler, lv *level, d *Directive) {
		switch d.Args[0] {
		case "any":
			lv.conf.SatisfyAny = true
		case "all":
			lv.conf.SatisfyAny = false
		default:
			c.fail(d, `invalid value "%s" in "satisfy" directive, it must be "all" or "any"`, d.Args[0])
		}
	}},
	{name: "resolver", set: setResolver},
	timed("resolver_timeout", func(lc *LocConf) *time.Duration { return &lc.ResolverTimeout }),
	{name: "disable_symlinks", dup: "disable_symlinks", set: setDisableSymlinks},
}}

// CoreConf is the core module's part of a location's settings.
type CoreConf struct {
	Root  *vars.Template // root (nil: "html" under prefix, nginx's default)
	Alias *vars.Template // alias, when set instead of root
	// AliasPrefix is the prefix of the location whose alias this is (it
	// gives way to the alias); AliasRegex marks an alias written in a
	// regex location, which replaces the whole URI.
	AliasPrefix string
	AliasRegex  bool
	TryFiles    []*vars.Template
	ErrorPages  map[int]*ErrorPage
	// RecursiveErrorPages (recursive_error_pages on): an error page's own
	// errors go to error_page too, while internal redirects last.
	RecursiveErrorPages bool
	SatisfyAny          bool
	LimitExcept         *LimitExcept
	DefaultType         string
	Types               map[string]string // extension -> MIME type (nil: the built-in table)
	Internal            bool
	ServerTokens        bool
	LogNotFound         bool // log_not_found: log the files a request did not find
	LogSubrequest       bool // log_subrequest: subrequests write access-log lines too
	// PostAction is post_action's URI or named location, run once the
	// response went out ("": none; nginx has no "off": it names a
	// location too).
	PostAction string
	// NoMSIEPadding (msie_padding off): no padding after error pages for
	// MSIE and Chrome; MSIERefresh (msie_refresh on): MSIE gets 301 and
	// 302 redirects as a page that refreshes.
	NoMSIEPadding, MSIERefresh bool
	// NoMergeSlashes (merge_slashes off, a server setting): the URI keeps
	// its runs of slashes; the default server of the address decides, as
	// nginx reads the request line before the Host header.
	NoMergeSlashes   bool
	AbsoluteRedirect bool
	// ServerNameInRedirect (server_name_in_redirect on): absolute
	// redirects name the server's primary name, not the request's host.
	ServerNameInRedirect bool
	// NoPortInRedirect (port_in_redirect off): absolute redirects name no port.
	NoPortInRedirect bool
	// NoChunked (chunked_transfer_encoding off): a body of unknown length
	// ends with the connection, also in HTTP/1.1.
	NoChunked         bool
	Etag              bool
	ClientMaxBodySize int64
	// ClientBodyBufferSize: bodies larger go to a temp file in nginx
	// (ngx.req.get_body_data gives nil for them).
	ClientBodyBufferSize int64
	// PostponeOutput is postpone_output: less output than that waits in
	// nginx's write filter for more, a flush or the end (Lua output).
	PostponeOutput int64
	// ClientBodyInFileOnly: client_body_in_file_only on or clean: nginx
	// keeps every request body in a temp file (ngx.req.get_body_data gives
	// nil, get_body_file its name).
	ClientBodyInFileOnly bool
	// ClientBodyFileKept (client_body_in_file_only on, not clean): the
	// file stays when the request ends.
	ClientBodyFileKept bool
	// ClientBodyTempPath is client_body_temp_path: where a body nginx keeps
	// in a file goes (the zero value: ngxsockify's temp directory).
	ClientBodyTempPath TempPath
	// The connection layer's settings (proxy/http1.Params): timeouts,
	// keep-alive, header buffers, lingering close. KeepaliveHeader is
	// keepalive_timeout's second argument (0: none); LingeringClose 0 on,
	// 1 off, 2 always.
	KeepaliveTimeout, KeepaliveHeader                   time.Duration
	KeepaliveRequests                                   int
	KeepaliveTime                                       time.Duration
	KeepaliveDisable                                    int // KeepaliveDisable* bits
	ClientHeaderTimeout, ClientBodyTimeout, SendTimeout time.Duration
	AuthDelay                                           time.Duration // auth_delay: a 401 of the access phase waits that long
	LingeringClose                                      int
	LingeringTime, LingeringTimeout                     time.Duration
	ClientHeaderBufferSize                              int
	LargeHeaderBuffers, LargeHeaderBufferSize           int
	UnderscoresInHeaders                                bool
	KeepInvalidHeaders                                  bool // ignore_invalid_headers off
	MaxHeaders                                          int  // max_headers
	// DisableSymlinks is disable_symlinks (SymlinksOff, SymlinksOn,
	// SymlinksIfNotOwner); DisableSymlinksFrom its from= (nil: none).
	DisableSymlinks int
	// SubrequestOutputBufferSize bounds the body of a subrequest kept in
	// memory (SSI's include set=): a longer one ends the main request.
	SubrequestOutputBufferSize int
	// UserID is the userid module's settings; nil: none set (off).
	UserID              *vars.UserID
	DisableSymlinksFrom *vars.Template
	Resolver            []string // DNS servers, ip:port (names given are resolved at load)
	ResolverTimeout     time.Duration
	ResolverValid       time.Duration // valid=: how long answers are kept (0: nginx would use the TTL)
	ResolverNoIPv6      bool          // ipv6=off
	// ErrorLogs are the error_log targets of an http, server or location
	// level, which replace the inherited ones; empty: the main level's.
	ErrorLogs []LogFile
}

// keepalive_disable's browsers.
const (
	KeepaliveDisableMSIE6 = 1 << iota
	KeepaliveDisableSafari
)

// rootAliasSlot is the one value root and alias both set: nginx names the
// other directive when they meet in one block.
const rootAliasSlot = "root/alias"

func setRootAlias(c *compiler, lv *level, d *Directive) {
	lc := lv.conf
	if d.Name == "alias" && lv.ctx != ctxLocation {
		c.fail(d, `"alias" directive is not allowed here`)
	}
	if lc.set["root"] || lc.set["alias"] {
		prev := "root"
		if lc.set["alias"] {
			prev = "alias"
		}
		if prev == d.Name {
			c.fail(d, `"%s" directive is duplicate`, d.Name)
		}
		c.fail(d, `"%s" directive is duplicate, "%s" directive was specified earlier`, d.Name, prev)
	}
	lc.set[d.Name] = true
	t := c.template(d, d.Args[0])
	if d.Name == "root" {
		lc.Root, lc.Alias = t, nil
	} else {
		lc.Alias, lc.Root = t, nil
		if lv.loc != nil {
			lc.AliasPrefix = lv.loc.Path
			lc.AliasRegex = lv.loc.Modifier == ModRegex || lv.loc.Modifier == ModRegexI
		}
	}
}

// setResolver compiles `resolver address ... [valid=time] [ipv6=on|off]`.
func setResolver(c *compiler, lv *level, d *Directive) {
	lc := lv.conf
	lc.Resolver, lc.ResolverValid, lc.ResolverNoIPv6 = nil, 0, false
	for _, v := range d.Args {
		switch {
		case strings.HasPrefix(v, "valid="):
			t, err := ParseTime(v[len("valid="):])
			if err != nil {
				c.fail(d, "invalid parameter: %s", v)
			}
			lc.ResolverValid = t
		case v == "ipv6=on" || v == "ipv6=off":
			lc.ResolverNoIPv6 = v == "ipv6=off"
		case strings.HasPrefix(v, "ipv6="):
			c.fail(d, "invalid parameter: %s", v)
		default:
			lc.Resolver = append(lc.Resolver, c.resolverAddrs(d, v)...)
		}
	}
}

func (c *compiler) errorLog(d *Directive) LogFile {
	lf := LogFile{Path: d.Args[0], Level: ngxlog.Err}
	if strings.HasPrefix(lf.Path, "syslog:") {
		lf.Syslog = c.syslogPeer(d, lf.Path)
	} else if lf.Path != "stderr" && !strings.HasPrefix(lf.Path, "memory:") {
		lf.Path = fullName(c.cfg.Prefix, lf.Path)
	}
	if len(d.Args) > 1 {
		lvl, ok := ngxlog.Parse(d.Args[1])
		if !ok {
			c.fail(d, `invalid log level "%s"`, d.Args[1])
		}
		lf.Level = lvl
	}
	return lf
}

// listen compiles one listen directive: one Listen, or one per port of a
// port range ("127.0.0.1:8000-8003", as Debian's nginx 1.22 accepts).
func (c *compiler) listen(d *Directive) []Listen {
	l := Listen{Network: "tcp", File: d.File, Line: d.EndLine}
	last := 0 // the range's last port, 0 without a range
	a := d.Args[0]
	switch {
	case strings.HasPrefix(a, "unix:"):
		l.Network = "unix"
		l.Addr = a[len("unix:"):]
	default:
		host, port := "", ""
		if strings.HasPrefix(a, "[") {
			end := strings.Index(a, "]")
			if end < 0 {
				c.fail(d, `invalid host in "%s" of the "listen" directive`, a)
			}
			host = a[1:end]
			if rest := a[end+1:]; rest != "" {
				if !strings.HasPrefix(rest, ":") {
					c.fail(d, `invalid host in "%s" of the "listen" directive`, a)
				}
				port = rest[1:]
			} else {
				port = "80"
			}
		} else if h, p, ok := strings.Cut(a, ":"); ok {
			host, port = h, p
		} else if _, err := strconv.Atoi(a); err == nil {
			port = a
		} else {
			host, port = a, "80"
		}
		first, rest, isRange := strings.Cut(port, "-")
		n, ok := listenPort(first)
		if isRange {
			var ok2 bool
			last, ok2 = listenPort(rest)
			ok = ok && ok2
		}
		if !ok {
			c.fail(d, `invalid port in "%s" of the "listen" directive`, a)
		}
		if isRange && last < n {
			c.fail(d, `invalid port range in "%s" of the "listen" directive`, a)
		}
		port = first
		l.Port = n
		switch host {
		case "", "*", "0.0.0.0":
			l.Wildcard = true
			l.Addr = "*:" + port
		case "::":
			l.Wildcard = true
			l.Addr = "[::]:" + port
		default:
			ip := net.ParseIP(host)
			if ip == nil {
				ips, err := net.LookupIP(host)
				if err != nil || len(ips) == 0 {
					c.fail(d, `host not found in "%s" of the "listen" directive`, a)
				}
				ip = ips[0]
			}
			l.Addr = net.JoinHostPort(ip.String(), port)
		}
	}
	for _, p := range d.Args[1:] {
		switch {
		case p == "default_server" || p == "default":
			l.DefaultServer = true
		case p == "ssl":
			l.SSL = true
		case p == "http2":
			l.HTTP2 = true
		case p == "proxy_protocol":
			l.ProxyProtocol = true
		case p == "quic" || p == "spdy":
		case p == "reuseport" || p == "deferred" || p == "bind" ||
			strings.HasPrefix(p, "backlog=") || strings.HasPrefix(p, "rcvbuf=") || strings.HasPrefix(p, "sndbuf=") ||
			strings.HasPrefix(p, "ipv6only=") || strings.HasPrefix(p, "so_keepalive=") ||
			strings.HasPrefix(p, "fastopen=") || strings.HasPrefix(p, "accept_filter=") || strings.HasPrefix(p, "setfib="):
			l.options = true // socket options: one listen of an address may give them
		default:
			c.fail(d, `invalid parameter "%s"`, p)
		}
	}
	if last == 0 {
		return []Listen{l}
	}
	host, _, _ := strings.Cut(l.Addr, ":")
	if strings.HasPrefix(l.Addr, "[") {
		host = l.Addr[:strings.LastIndex(l.Addr, ":")]
	}
	ls := make([]Listen, 0, last-l.Port+1)
	for p := l.Port; p <= last; p++ {
		one := l
		one.Port = p
		one.Addr = host + ":" + strconv.Itoa(p)
		ls = append(ls, one)
	}
	return ls
}

// listenPort parses a listen port, 1..65535; ok is false otherwise.
func listenPort(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 || s[0] == '+' {
		return 0, false
	}
	return n, true
}

// listenName is a listen address as nginx's messages print it.
func listenName(l Listen) string {
	switch {
	case l.Network == "unix":
		return "unix:" + l.Addr
	case strings.HasPrefix(l.Addr, "*:"):
		return "0.0.0.0" + l.Addr[1:]
	}
	return l.Addr
}

// checkListens rejects, as nginx's ngx_http_add_addresses does, socket
// options given by two listens of one address, and two default servers
// on one address. (ssl, http2 and proxy_protocol are not socket options:
// one listen of an address that has them gives them to the address.)
func (c *compiler) checkListens() {
	defaults, options := map[string]bool{}, map[string]bool{}
	for _, s := range c.cfg.HTTP.Servers {
		for _, l := range s.Listens {
			key := l.Network + " " + l.Addr
			if l.options {
				if options[key] {
					c.failAt(l.File, l.Line, "duplicate listen options for "+listenName(l))
				}
				options[key] = true
			}
			if !l.DefaultServer {
				continue
			}
			if defaults[key] {
				c.failAt(l.File, l.Line, "a duplicate default server for "+listenName(l))
			}
			defaults[key] = true
		}
	}
}

// serverName compiles one server_name value. Names are lowercased, as
// nginx does, except regexes: they keep their case (\Q..\E, named
// captures, $server_name) and match caselessly.
func (c *compiler) serverName(d *Directive, name string) ServerName {
	if strings.HasPrefix(name, "~") {
		re := c.regex(d, indexOf(d.Args, name), name[1:], true)
		return ServerName{Name: name, Kind: NameRegex, Regex: re}
	}
	name = strings.ToLower(name)
	switch {
	case strings.HasPrefix(name, "*."):
		return ServerName{Name: name, Kind: NameWildcardPrefix, Suffix: name[1:]}
	case strings.HasPrefix(name, "."):
		return ServerName{Name: name, Kind: NameWildcardPrefix, Suffix: name}
	case strings.HasSuffix(name, ".*"):
		return ServerName{Name: name, Kind: NameWildcardSuffix, Prefix: name[:len(name)-1]}
	case strings.Contains(name, "*"):
		c.fail(d, `invalid server name or wildcard "%s" on %s:%d`, name, d.File, d.Line)
	}
	return ServerName{Name: name, Kind: NameExact}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if strings.EqualFold(v, s) {
			return i
		}
	}
	return -1
}

// defaultPort adds the port when a host:port address has none.
func defaultPort(addr, port string) string {
	if strings.HasPrefix(addr, "[") {
		if strings.HasSuffix(addr, "]") {
			return addr + ":" + port
		}
		return addr
	}
	if strings.Count(addr, ":") == 0 {
		return addr + ":" + port
	}
	return addr
}

func (c *compiler) errorPage(lc *LocConf, d *Directive) {
	if lc.ErrorPages == nil {
		lc.ErrorPages = map[int]*ErrorPage{}
	}
	a := d.Args
	target := a[len(a)-1]
	codes := a[:len(a)-1]
	ep := &ErrorPage{}
	if len(codes) > 0 && strings.HasPrefix(codes[len(codes)-1], "=") {
		over := codes[len(codes)-1][1:]
		codes = codes[:len(codes)-1]
		if over == "" {
			ep.Code = -1
		} else {
			n, err := strconv.Atoi(over)
			if err != nil || n < 100 || n > 999 {
				c.fail(d, `invalid value "=%s"`, over)
			}
			ep.Code = n
		}
	}
	if len(codes) == 0 {
		c.fail(d, `invalid number of arguments in "error_page" directive`)
	}
	ep.Target = c.template(d, target)
	for _, s := range codes {
		n, err := strconv.Atoi(s)
		if err != nil {
			c.fail(d, `invalid value "%s"`, s)
		}
		if n < 300 || n > 599 {
			c.fail(d, `value "%s" must be between 300 and 599`, s)
		}
		e := ep
		if ep.Code == 0 && (n == 494 || n == 495 || n == 496 || n == 497) {
			// nginx's special 400s answer 400 unless "=" says otherwise
			e = &ErrorPage{Code: 400, Target: ep.Target}
		}
		lc.ErrorPages[n] = e
	}
}

// resolverAddrs checks one resolver address and returns it as ip:port
// (port 53 by default); a name is resolved now, as nginx does.
func (c *compiler) resolverAddrs(d *Directive, v string) []string {
	host, port, err := net.SplitHostPort(defaultPort(v, "53"))
	if err != nil {
		c.fail(d, `host not found in resolver "%s"`, v)
		return nil
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		c.fail(d, `invalid port in resolver "%s"`, v)
	}
	if net.ParseIP(host) != nil {
		return []string{net.JoinHostPort(host, port)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil || len(ips) == 0 {
		c.fail(d, `host not found in resolver "%s"`, v)
	}
	addrs := make([]string, 0, len(ips))
	for _, ip := range ips {
		addrs = append(addrs, net.JoinHostPort(ip, port))
	}
	return addrs
}

// TempPath is a *_temp_path directive: a directory, and the levels of
// subdirectories named after the last digits of each file's number.
type TempPath struct {
	Dir    string
	Levels []int
}

// tempNumber numbers temporary files as nginx does (ngx_next_temp_number):
// ten digits, one counter per process.
var tempNumber atomic.Uint32

// WriteFile writes b to a new temporary file (Create) and returns its
// name; a file that could not be written whole is removed.
func (tp TempPath) WriteFile(b []byte) (string, error) {
	f, err := tp.Create()
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// Create makes a new temporary file as nginx names them: "0000000001"
// under level directories named after its last digits, made as needed
// (0700); in the system's temporary directory when Dir is empty.
func (tp TempPath) Create() (*os.File, error) {
	if tp.Dir == "" {
		return os.CreateTemp("", "ngxsockify-body-")
	}
	for {
		name := fmt.Sprintf("%010d", tempNumber.Add(1))
		dir, end := tp.Dir, len(name)
		for _, l := range tp.Levels {
			dir = filepath.Join(dir, name[end-l:end])
			end -= l
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
}

// disable_symlinks values.
const (
	SymlinksOff = iota
	SymlinksOn
	SymlinksIfNotOwner
)

// setDisableSymlinks compiles `disable_symlinks off | on | if_not_owner
// [from=part]`.
func setDisableSymlinks(c *compiler, lv *level, d *Directive) {
	mode, from := -1, (*vars.Template)(nil)
	for _, a := range d.Args {
		switch {
		case a == "off" && mode < 0:
			mode = SymlinksOff
		case a == "on" && mode < 0:
			mode = SymlinksOn
		case a == "if_not_owner" && mode < 0:
			mode = SymlinksIfNotOwner
		case strings.HasPrefix(a, "from=") && from == nil:
			from = c.template(d, a[len("from="):])
		default:
			c.fail(d, `invalid parameter "%s"`, a)
		}
	}
	if mode < 0 {
		c.fail(d, `"%s" directive invalid value`, d.Name)
	}
	if from != nil && mode == SymlinksOff {
		c.fail(d, `"from=" cannot be used with "off" parameter`)
	}
	lv.conf.DisableSymlinks, lv.conf.DisableSymlinksFrom = mode, from
}
