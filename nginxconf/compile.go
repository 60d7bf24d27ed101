package nginxconf

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"ngxsockify/nginxconf/vars"
)

// compiler turns parsed directives into a Config. It runs in two passes:
// declare (every variable a config defines: set, map, set_by_lua, named
// regex captures) and build (everything else), because nginx lets a
// variable be used before the directive that defines it.
type compiler struct {
	cfg        *Config
	reg        *vars.Registry
	collectAll bool
	errs       Errors
	regexes    map[regexKey]*vars.Regex
	tls        map[*Server]*tlsSettings
	httpBlock  *Directive // the http block, compiled after the main level
	events     bool       // an events block was seen
	pidSet     bool       // a pid directive was seen
	// secureLinkMixed: a level below http mixes secure_link_secret with
	// secure_link or secure_link_md5 (reported once the http block is done)
	secureLinkMixed bool
	// sslZones: the shared zones of ssl_ocsp_cache and ssl_session_cache
	sslZones map[string]sslZone
	// referers: the levels with valid_referers, completed by checkReferers
	referers []refererLevel
}

type regexKey struct {
	d   *Directive
	arg int
}

// blockCtx is the kind of block a directive is compiled in.
type blockCtx int

const (
	ctxHTTP blockCtx = iota
	ctxServer
	ctxLocation
	ctxIf
	ctxLimitExcept
	ctxTop    // the main level, outside http
	ctxEvents // the events block
)

// defaultLocConf is the http level's settings before any directive: each
// module's defaults.
func defaultLocConf() *LocConf {
	lc := &LocConf{set: map[string]bool{}}
	for _, m := range modules {
		if m.create != nil {
			m.create(lc)
		}
	}
	return lc
}

// newConf starts the configuration of a new level (parent nil: the http
// block; location: a nested location, see child) and numbers it: LocConf.ID is its place in HTTP.Confs.
func (c *compiler) newConf(parent *LocConf, location bool) *LocConf {
	lc := defaultLocConf()
	if parent != nil {
		lc = parent.child(location)
	}
	h := c.cfg.HTTP
	lc.ID = len(h.Confs)
	h.Confs = append(h.Confs, lc)
	return lc
}

// errStop unwinds the compiler after the first error when not collecting.
type errStop struct{}

func compile(p *Parsed, main, prefix string, collectAll bool) (cfg *Config, err error) {
	c := &compiler{
		cfg: &Config{
			Main:     main,
			Prefix:   prefix,
			Files:    p.Files,
			Warnings: p.Warnings,
		},
		reg:        vars.NewRegistry(),
		collectAll: collectAll,
		regexes:    map[regexKey]*vars.Regex{},
		tls:        map[*Server]*tlsSettings{},
	}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(errStop); !ok {
				panic(r)
			}
		}
		if len(c.errs) == 1 {
			cfg, err = nil, c.errs[0]
		} else if len(c.errs) > 1 {
			cfg, err = nil, c.errs
		}
	}()
	c.main(p.Directives)
	return c.cfg, nil
}

// fail records an error at the directive's position (nginx reports the line
// where the directive ends).
func (c *compiler) fail(d *Directive, format string, args ...any) {
	c.errs = append(c.errs, &Error{Msg: fmt.Sprintf(format, args...), File: d.File, Line: d.EndLine})
	if !c.collectAll {
		panic(errStop{})
	}
}

// failAt is fail for a position that is not a directive's.
func (c *compiler) failAt(file string, line int, msg string) {
	c.errs = append(c.errs, &Error{Msg: msg, File: file, Line: line})
	if !c.collectAll {
		panic(errStop{})
	}
}

func (c *compiler) warn(d *Directive, format string, args ...any) {
	c.cfg.Warnings = append(c.cfg.Warnings, Warning{File: d.File, Line: d.EndLine, Directive: d.Name, Msg: fmt.Sprintf(format, args...)})
}

// logWarn records a message that nginx writes to its error log while
// loading (Warning.Logged), at "alert" when alert is set.
func (c *compiler) logWarn(d *Directive, alert bool, msg string) {
	c.cfg.Warnings = append(c.cfg.Warnings, Warning{File: d.File, Line: d.EndLine, Directive: d.Name, Msg: msg, Alert: alert, Logged: true})
}

func (c *compiler) main(dirs []*Directive) {
	c.cfg.WorkerProcesses, c.cfg.Daemon, c.cfg.MasterProcess = 1, true, true
	c.block(&level{ctx: ctxTop}, dirs)
	if !c.pidSet {
		// nginx's compiled-in default, so that -s works without a pid
		// directive; taken when logs/ exists under the prefix, as the
		// default access log is, instead of failing to start.
		if def := fullName(c.cfg.Prefix, "logs/nginx.pid"); fileExists(filepath.Dir(def)) {
			c.cfg.PID = def
		}
	}
	if c.httpBlock != nil {
		c.http(c.httpBlock)
	}
	c.defaultUserConf()
	if !c.events {
		// nginx checks this last and names no position
		c.errs = append(c.errs, &Error{Msg: `no "events" section in configuration`})
		if !c.collectAll {
			panic(errStop{})
		}
	}
}

func (c *compiler) http(block *Directive) {
	h := &HTTP{
		Vars:       c.reg,
		Upstreams:  map[string]*Upstream{},
		LogFormats: map[string]*LogFormat{},
		Lua:        LuaMain{CodeCache: true, SharedDicts: map[string]int64{}, File: block.File, CloseLine: block.CloseLine},
	}
	c.cfg.HTTP = h
	for _, name := range otherNginxVariables {
		if !c.reg.Known(name) {
			c.reg.Declare(name) // reads as not found ("-" in logs), as nginx's would without the module's data
		}
	}
	c.declare(block.Block, 0)
	c.maps(block.Block)
	c.geos(block.Block)
	c.splitClients(block.Block)

	combined, err := c.reg.CompileLog(combinedFormat)
	if err != nil {
		panic("combined log format: " + err.Error())
	}
	h.LogFormats["combined"] = &LogFormat{Name: "combined", Template: combined}

	root := c.newConf(nil, false)
	// nginx's default is "access_log logs/access.log combined"; we follow it
	// when that directory exists instead of failing to start.
	if def := fullName(c.cfg.Prefix, "logs/access.log"); fileExists(filepath.Dir(def)) {
		root.AccessLogs = []AccessLog{{Path: c.template(block, def), Format: h.LogFormats["combined"], File: block.File, Line: block.EndLine}}
	}
	httpTLS := defaultTLS()
	var servers []*Directive
	c.block(&level{ctx: ctxHTTP, conf: root, tls: &httpTLS, nested: &servers}, block.Block)
	for _, sd := range servers {
		c.server(sd, root, httpTLS)
	}
	c.checkReferers(block)
	c.checkSecureLink(block)
	c.checkCharsets()
	c.checkLimitZones()
	if len(h.Servers) == 0 {
		return
	}
	c.checkListens()
	c.checkSSLDefaults()
}

func (c *compiler) server(d *Directive, httpConf *LocConf, httpTLS tlsSettings) {
	s := &Server{File: d.File, Line: d.EndLine, Named: map[string]*Location{}}
	conf := c.newConf(httpConf, true)
	tls := httpTLS
	tls.ownCerts, tls.ownKeys = false, false
	var locs []*Directive
	var deferred []func()
	c.block(&level{ctx: ctxServer, conf: conf, srv: s, tls: &tls, stmts: &s.Stmts, later: &deferred, nested: &locs}, d.Block)
	if len(s.Listens) == 0 {
		s.Listens = []Listen{{Network: "tcp", Addr: "*:80", Port: 80, Wildcard: true, File: d.File, Line: d.EndLine}}
	}
	if len(s.Names) == 0 {
		s.Names = []ServerName{{Name: "", Kind: NameExact}}
	}
	s.Conf = conf
	for _, f := range deferred {
		f()
	}
	s.Root = c.locations(s, locs, conf, nil)
	c.serverTLS(d, s, &tls)
	s.ID = len(c.cfg.HTTP.Servers)
	c.cfg.HTTP.Servers = append(c.cfg.HTTP.Servers, s)
}

// autoRedirectDirectives set nginx's auto_redirect on a location whose
// name ends in "/": a request for the name without it answers 301 to it.
var autoRedirectDirectives = map[string]bool{
	"proxy_pass": true, "fastcgi_pass": true, "uwsgi_pass": true, "scgi_pass": true,
	"memcached_pass": true, "grpc_pass": true,
}

// locations compiles one level of location blocks into a LocTree.
func (c *compiler) locations(s *Server, dirs []*Directive, parentConf *LocConf, parent *Location) *LocTree {
	t := &LocTree{Exact: map[string]*Location{}}
	seen := map[string]bool{}
	for _, d := range dirs {
		loc := c.location(s, d, parentConf, parent)
		key := fmt.Sprint(loc.Modifier == ModExact, loc.Path)
		if loc.Modifier == ModRegex || loc.Modifier == ModRegexI {
			key = "re " + loc.Path
		}
		if loc.Modifier == ModNamed {
			if _, dup := s.Named[loc.Path]; dup {
				c.fail(d, `duplicate location "%s"`, loc.Path)
			}
			s.Named[loc.Path] = loc
			continue
		}
		if seen[key] {
			c.fail(d, `duplicate location "%s"`, loc.Path)
		}
		seen[key] = true
		if loc.AutoRedirect {
			if t.AutoRedirect == nil {
				t.AutoRedirect = map[string]*Location{}
			}
			name := strings.TrimSuffix(loc.Path, "/")
			if prev := t.AutoRedirect[name]; prev == nil || loc.Modifier == ModExact {
				t.AutoRedirect[name] = loc // nginx takes the exact location's settings
			}
		}
		switch loc.Modifier {
		case ModExact:
			t.Exact[loc.Path] = loc
		case ModRegex, ModRegexI:
			t.Regex = append(t.Regex, loc)
		default:
			t.Prefix = append(t.Prefix, loc)
		}
	}
	sort.SliceStable(t.Prefix, func(i, j int) bool { return len(t.Prefix[i].Path) > len(t.Prefix[j].Path) })
	return t
}

func (c *compiler) location(s *Server, d *Directive, parentConf *LocConf, parent *Location) *Location {
	loc := &Location{File: d.File, Line: d.EndLine}
	args := d.Args
	if len(args) == 1 {
		a := args[0]
		switch {
		case strings.HasPrefix(a, "="):
			loc.Modifier, loc.Path = ModExact, a[1:]
		case strings.HasPrefix(a, "^~"):
			loc.Modifier, loc.Path = ModNoRegex, a[2:]
		case strings.HasPrefix(a, "~*"):
			loc.Modifier, loc.Path = ModRegexI, a[2:]
		case strings.HasPrefix(a, "~"):
			loc.Modifier, loc.Path = ModRegex, a[1:]
		case strings.HasPrefix(a, "@"):
			loc.Modifier, loc.Path = ModNamed, a
		default:
			loc.Modifier, loc.Path = ModPrefix, a
		}
		if loc.Path == "" && loc.Modifier != ModPrefix {
			c.fail(d, `invalid number of arguments in "location" directive`)
		}
	} else {
		switch args[0] {
		case "=":
			loc.Modifier = ModExact
		case "^~":
			loc.Modifier = ModNoRegex
		case "~":
			loc.Modifier = ModRegex
		case "~*":
			loc.Modifier = ModRegexI
		default:
			c.fail(d, `invalid location modifier "%s"`, args[0])
		}
		loc.Path = args[1]
	}
	if loc.Modifier == ModRegex || loc.Modifier == ModRegexI {
		loc.Regex = c.regex(d, len(args)-1, loc.Path, loc.Modifier == ModRegexI)
	}
	if parent != nil {
		switch {
		case parent.Modifier == ModExact:
			c.fail(d, `location "%s" cannot be inside the exact location "%s"`, loc.Path, parent.Path)
		case parent.Modifier == ModNamed:
			c.fail(d, `location "%s" cannot be inside the named location "%s"`, loc.Path, parent.Path)
		case loc.Modifier == ModNamed:
			c.fail(d, `named location "%s" can be on the server level only`, loc.Path)
		case parent.Regex == nil && loc.Regex == nil && !strings.HasPrefix(loc.Path, parent.Path):
			c.fail(d, `location "%s" is outside location "%s"`, loc.Path, parent.Path)
		}
	}

	conf := c.newConf(parentConf, true)
	var nested []*Directive
	var deferred []func()
	lv := &level{ctx: ctxLocation, conf: conf, srv: s, loc: loc, stmts: &loc.Stmts, later: &deferred, nested: &nested}
	c.block(lv, d.Block)
	loc.Conf = conf
	if strings.HasSuffix(loc.Path, "/") && (loc.Modifier == ModPrefix || loc.Modifier == ModNoRegex || loc.Modifier == ModExact) {
		for _, cd := range d.Block {
			if autoRedirectDirectives[cd.Name] {
				loc.AutoRedirect = true
			}
		}
	}
	for _, f := range deferred {
		f()
	}
	if conf.LimitExcept != nil {
		// limit_except inherits from its location: rebuild it now that the location is complete.
		for _, ld := range d.Block {
			if ld.Name == "limit_except" {
				conf.LimitExcept = c.limitExcept(lv, ld)
			}
		}
	}
	if len(nested) > 0 {
		loc.Nested = c.locations(s, nested, conf, loc)
	}
	return loc
}

// limitExcept compiles a limit_except block of the location at lv. The
// block inherits the whole location, its content handler included.
func (c *compiler) limitExcept(lv *level, d *Directive) *LimitExcept {
	le := &LimitExcept{Methods: map[string]bool{}, Conf: c.newConf(lv.conf, false)}
	le.Conf.LimitExcept = nil
	for _, m := range d.Args {
		m = strings.ToUpper(m)
		switch m {
		case "GET":
			le.Methods["HEAD"] = true
		case "HEAD", "POST", "PUT", "DELETE", "MKCOL", "COPY", "MOVE", "OPTIONS", "PROPFIND", "PROPPATCH", "LOCK", "UNLOCK", "PATCH":
		default:
			c.fail(d, `invalid method "%s"`, m)
		}
		le.Methods[m] = true
	}
	c.block(&level{ctx: ctxLimitExcept, conf: le.Conf, srv: lv.srv, loc: lv.loc}, d.Block)
	return le
}

// otherNginxVariables are variables of nginx 1.22 modules (Debian's build)
// whose data ngxsockify does not have: 0-RTT, upstream
// caching and timing, fastcgi, realip, userid ... A
// config that uses them still loads, and they read as not found.
var otherNginxVariables = strings.Fields(`ancient_browser date_gmt date_local fastcgi_path_info fastcgi_script_name
	modern_browser msie
	realip_remote_port
	ssl_early_data tcpinfo_rtt
	tcpinfo_rttvar tcpinfo_snd_cwnd tcpinfo_rcv_space uid_got uid_reset uid_set 
	upstream_cache_status upstream_queue_time`)

func (c *compiler) duration(d *Directive, v string) time.Duration {
	t, err := ParseTime(v)
	if err != nil {
		c.fail(d, `"%s" directive invalid value`, d.Name)
	}
	return t
}

// template compiles a value that may hold variables.
func (c *compiler) template(d *Directive, s string) *vars.Template {
	t, err := c.reg.Compile(s)
	if err != nil {
		c.fail(d, "%s", err.Error())
		return nil
	}
	return t
}

// regex compiles (once) the regex in argument arg of d.
func (c *compiler) regex(d *Directive, arg int, pattern string, caseless bool) *vars.Regex {
	k := regexKey{d, arg}
	if re, ok := c.regexes[k]; ok {
		return re
	}
	re, err := vars.CompileRegex(pattern, caseless)
	if err != nil {
		c.fail(d, "%s", err.Error())
		return nil
	}
	c.regexes[k] = re
	return re
}
