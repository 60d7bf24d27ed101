package nginxconf

import (
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

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
}

type regexKey struct {
	d   *Directive
	arg int
}

type tlsSettings struct {
	certs     []string
	keys      []string
	protocols []string
	ciphers   string
	prefer    bool
	sslOn     bool
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

func (c *compiler) main(dirs []*Directive) {
	var httpBlock *Directive
	events := false
	c.cfg.WorkerProcesses = 1
	c.cfg.Daemon = true
	for _, d := range dirs {
		switch d.Name {
		case "daemon":
			c.cfg.Daemon = d.Args[0] == "on"
		case "events":
			events = true
		case "worker_processes":
			if d.Args[0] == "auto" {
				c.cfg.WorkerProcesses = 0
			} else if n, err := strconv.Atoi(d.Args[0]); err == nil && n >= 0 && d.Args[0][0] != '+' {
				c.cfg.WorkerProcesses = max(n, 1)
			} else {
				c.fail(d, `"worker_processes" directive invalid value`)
			}
		case "pid":
			if d.Args[0] != "off" {
				c.cfg.PID = fullName(c.cfg.Prefix, d.Args[0])
			}
		case "error_log":
			c.cfg.ErrorLog = append(c.cfg.ErrorLog, c.errorLog(d))
		case "env":
			name, value, has := strings.Cut(d.Args[0], "=")
			c.cfg.Env = append(c.cfg.Env, EnvVar{Name: name, Value: value, HasValue: has})
		case "http":
			if httpBlock != nil {
				c.fail(d, `"http" directive is duplicate`)
			}
			httpBlock = d
		}
	}
	if httpBlock != nil {
		c.http(httpBlock)
	}
	if !events {
		// nginx checks this last and names no position
		c.errs = append(c.errs, &Error{Msg: `no "events" section in configuration`})
		if !c.collectAll {
			panic(errStop{})
		}
	}
}

func (c *compiler) errorLog(d *Directive) LogFile {
	lf := LogFile{Path: d.Args[0], Level: LogLevels["error"]}
	if lf.Path != "stderr" && !strings.HasPrefix(lf.Path, "syslog:") && !strings.HasPrefix(lf.Path, "memory:") {
		lf.Path = fullName(c.cfg.Prefix, lf.Path)
	}
	if len(d.Args) > 1 {
		lvl, ok := LogLevels[d.Args[1]]
		if !ok {
			c.fail(d, `invalid log level "%s"`, d.Args[1])
		}
		lf.Level = lvl
	}
	return lf
}

func (c *compiler) http(block *Directive) {
	h := &HTTP{
		Vars:       c.reg,
		Upstreams:  map[string]*Upstream{},
		LogFormats: map[string]*LogFormat{},
		Lua:        LuaMain{CodeCache: true, SharedDicts: map[string]int64{}},
	}
	c.cfg.HTTP = h
	for _, name := range otherNginxVariables {
		if !c.reg.Known(name) {
			c.reg.Declare(name) // reads as not found ("-" in logs), as nginx's would without the module's data
		}
	}
	c.declare(block.Block, 0)
	c.maps(block.Block)

	combined, err := c.reg.Compile(combinedFormat)
	if err != nil {
		panic("combined log format: " + err.Error())
	}
	h.LogFormats["combined"] = &LogFormat{Name: "combined", Template: combined}

	root := c.newConf(nil)
	// nginx's default is "access_log logs/access.log combined"; we follow it
	// when that directory exists instead of failing to start.
	if def := fullName(c.cfg.Prefix, "logs/access.log"); fileExists(filepath.Dir(def)) {
		root.AccessLogs = []AccessLog{{Path: c.template(block, def), Format: h.LogFormats["combined"], File: block.File, Line: block.EndLine}}
	}
	var httpTLS tlsSettings
	var servers []*Directive
	for _, d := range block.Block {
		switch d.Name {
		case "server":
			servers = append(servers, d)
		case "upstream":
			c.upstream(d)
		case "log_format":
			c.logFormat(d)
		case "map":
			// compiled in c.maps
		case "lua_package_path":
			h.Lua.PackagePath = d.Args[0]
		case "lua_package_cpath":
			h.Lua.PackageCPath = d.Args[0]
		case "lua_code_cache":
			h.Lua.CodeCache = d.Args[0] == "on"
		case "lua_shared_dict":
			size, err := ParseSize(d.Args[1])
			if err != nil {
				c.fail(d, `invalid lua shared dict size "%s"`, d.Args[1])
			}
			h.Lua.SharedDicts[d.Args[0]] = size
		case "init_by_lua", "init_by_lua_block", "init_by_lua_file":
			h.Lua.Init = c.luaCode(d, "init", d.Args[0])
		case "init_worker_by_lua", "init_worker_by_lua_block", "init_worker_by_lua_file":
			h.Lua.InitWorker = c.luaCode(d, "init_worker", d.Args[0])
		default:
			if !c.tlsDirective(&httpTLS, d) {
				c.locDirective(root, d, ctxHTTP)
			}
		}
	}
	for _, sd := range servers {
		c.server(sd, root, httpTLS)
	}
	if len(h.Servers) == 0 {
		return
	}
	c.checkListens()
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

func (c *compiler) upstream(d *Directive) {
	name := d.Args[0]
	if _, dup := c.cfg.HTTP.Upstreams[name]; dup {
		c.fail(d, `duplicate upstream "%s"`, name)
	}
	u := &Upstream{Name: name, File: d.File, Line: d.EndLine}
	for _, s := range d.Block {
		if s.Name != "server" {
			continue
		}
		us := UpstreamServer{Addr: s.Args[0], Weight: 1, MaxFails: 1, FailTimeout: 10e9}
		if !strings.HasPrefix(us.Addr, "unix:") {
			us.Addr = defaultPort(us.Addr, "80")
		}
		for _, a := range s.Args[1:] {
			k, v, _ := strings.Cut(a, "=")
			var err error
			switch k {
			case "weight":
				us.Weight, err = strconv.Atoi(v)
				if us.Weight <= 0 {
					err = errBadValue
				}
			case "max_fails":
				us.MaxFails, err = strconv.Atoi(v)
			case "fail_timeout":
				us.FailTimeout, err = ParseTime(v)
			case "backup":
				us.Backup = true
			case "down":
				us.Down = true
			case "max_conns", "resolve", "service", "route", "slow_start", "drain":
			default:
				err = errBadValue
			}
			if err != nil {
				c.fail(s, `invalid parameter "%s"`, a)
			}
		}
		u.Servers = append(u.Servers, us)
	}
	if len(u.Servers) == 0 {
		c.fail(d, `no servers are inside upstream`)
	}
	c.cfg.HTTP.Upstreams[name] = u
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

func (c *compiler) server(d *Directive, httpConf *LocConf, httpTLS tlsSettings) {
	s := &Server{File: d.File, Line: d.EndLine, Named: map[string]*Location{}}
	conf := c.newConf(httpConf)
	tls := httpTLS
	var locs []*Directive
	var deferred []func()
	for _, sd := range d.Block {
		switch sd.Name {
		case "listen":
			s.Listens = append(s.Listens, c.listen(sd))
		case "server_name":
			for _, a := range sd.Args {
				s.Names = append(s.Names, c.serverName(sd, a))
			}
		case "location":
			locs = append(locs, sd)
		case "set", "rewrite", "return", "break", "if", "set_by_lua", "set_by_lua_block", "set_by_lua_file":
			st, later := c.stmt(sd, conf, ctxServer)
			s.Stmts = append(s.Stmts, st)
			if later != nil {
				deferred = append(deferred, later)
			}
		default:
			if !c.tlsDirective(&tls, sd) {
				c.locDirective(conf, sd, ctxServer)
			}
		}
	}
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
	var sslListen *Listen
	for i, l := range s.Listens {
		if l.SSL {
			tls.sslOn = true
			if sslListen == nil {
				sslListen = &s.Listens[i]
			}
		}
	}
	if tls.sslOn {
		if len(tls.certs) == 0 {
			if sslListen != nil {
				c.failAt(sslListen.File, sslListen.Line, `no "ssl_certificate" is defined for the "listen ... ssl" directive`)
			}
			c.fail(d, `no "ssl_certificate" is defined for the "ssl" directive`)
		}
		t := &TLS{Protocols: tls.protocols, Ciphers: tls.ciphers, PreferServer: tls.prefer}
		for i, cert := range tls.certs {
			if i >= len(tls.keys) {
				c.fail(d, `no "ssl_certificate_key" is defined for certificate "%s"`, cert)
			}
			t.Certificates = append(t.Certificates, CertPair{Cert: fullName(c.cfg.Prefix, cert), Key: fullName(c.cfg.Prefix, tls.keys[i])})
		}
		s.TLS = t
	}
	s.ID = len(c.cfg.HTTP.Servers)
	c.cfg.HTTP.Servers = append(c.cfg.HTTP.Servers, s)
}

func (c *compiler) tlsDirective(t *tlsSettings, d *Directive) bool {
	switch d.Name {
	case "ssl_certificate":
		t.certs = append(t.certs[:len(t.certs):len(t.certs)], d.Args[0])
	case "ssl_certificate_key":
		t.keys = append(t.keys[:len(t.keys):len(t.keys)], d.Args[0])
	case "ssl_protocols":
		t.protocols = d.Args
	case "ssl_ciphers":
		t.ciphers = d.Args[0]
	case "ssl_prefer_server_ciphers":
		t.prefer = d.Args[0] == "on"
	case "ssl":
		t.sslOn = d.Args[0] == "on"
		c.warn(d, `the "ssl" directive is deprecated, use the "listen ... ssl" directive instead`)
	default:
		return false
	}
	return true
}

func (c *compiler) listen(d *Directive) Listen {
	l := Listen{Network: "tcp", File: d.File, Line: d.EndLine}
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
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			c.fail(d, `invalid port in "%s" of the "listen" directive`, a)
		}
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
			c.fail(d, `"proxy_protocol" parameter of the "listen" directive is not supported by ngxsockify`)
		case p == "reuseport" || p == "deferred" || p == "bind" || p == "quic" || p == "spdy" ||
			strings.HasPrefix(p, "backlog=") || strings.HasPrefix(p, "rcvbuf=") || strings.HasPrefix(p, "sndbuf=") ||
			strings.HasPrefix(p, "ipv6only=") || strings.HasPrefix(p, "so_keepalive=") ||
			strings.HasPrefix(p, "fastopen=") || strings.HasPrefix(p, "accept_filter=") || strings.HasPrefix(p, "setfib="):
		default:
			c.fail(d, `invalid parameter "%s"`, p)
		}
	}
	return l
}

// checkListens rejects two default servers on one address, as nginx does.
func (c *compiler) checkListens() {
	defaults := map[string]bool{}
	for _, s := range c.cfg.HTTP.Servers {
		for _, l := range s.Listens {
			if !l.DefaultServer {
				continue
			}
			key := l.Network + " " + l.Addr
			if defaults[key] {
				addr := l.Addr
				if strings.HasPrefix(addr, "*:") {
					addr = "0.0.0.0" + addr[1:]
				}
				c.failAt(l.File, l.Line, "a duplicate default server for "+addr)
			}
			defaults[key] = true
		}
	}
}

func (c *compiler) serverName(d *Directive, name string) ServerName {
	name = strings.ToLower(name)
	switch {
	case strings.HasPrefix(name, "~"):
		re := c.regex(d, indexOf(d.Args, name), name[1:], false)
		return ServerName{Name: name, Kind: NameRegex, Regex: re}
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

	conf := c.newConf(parentConf)
	var nested []*Directive
	var deferred []func()
	for _, ld := range d.Block {
		switch ld.Name {
		case "location":
			nested = append(nested, ld)
		case "set", "rewrite", "return", "break", "if", "set_by_lua", "set_by_lua_block", "set_by_lua_file":
			st, later := c.stmt(ld, conf, ctxLocation)
			loc.Stmts = append(loc.Stmts, st)
			if later != nil {
				deferred = append(deferred, later)
			}
		case "limit_except":
			conf.LimitExcept = c.limitExcept(ld, conf)
		default:
			c.locDirective(conf, ld, ctxLocation)
		}
	}
	loc.Conf = conf
	for _, f := range deferred {
		f()
	}
	if conf.LimitExcept != nil {
		// limit_except inherits from its location: rebuild it now that the location is complete.
		for _, ld := range d.Block {
			if ld.Name == "limit_except" {
				conf.LimitExcept = c.limitExcept(ld, conf)
			}
		}
	}
	if len(nested) > 0 {
		loc.Nested = c.locations(s, nested, conf, loc)
	}
	return loc
}

func (c *compiler) limitExcept(d *Directive, parent *LocConf) *LimitExcept {
	le := &LimitExcept{Methods: map[string]bool{}, Conf: c.newConf(parent)}
	// the location's content handler and internal flag hold in the block too
	le.Conf.Websockify, le.Conf.Unsupported, le.Conf.Internal = parent.Websockify, parent.Unsupported, parent.Internal
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
	for _, ld := range d.Block {
		c.locDirective(le.Conf, ld, ctxLimitExcept)
	}
	return le
}

// otherNginxVariables are variables of nginx 1.22 modules (Debian's build)
// whose data ngxsockify does not have: TLS client certificates, upstream
// caching and timing, fastcgi, realip, limit_*, userid, stub_status ... A
// config that uses them still loads, and they read as not found.
var otherNginxVariables = strings.Fields(`ancient_browser connections_active connections_reading
	connections_waiting connections_writing date_gmt date_local fastcgi_path_info fastcgi_script_name
	gzip_ratio http2 invalid_referer limit_conn_status limit_req_status modern_browser msie pipe
	proxy_host proxy_port proxy_protocol_addr proxy_protocol_port proxy_protocol_server_addr
	proxy_protocol_server_port realip_remote_port request_body_file secure_link secure_link_expires
	ssl_cipher ssl_ciphers ssl_client_cert ssl_client_escaped_cert ssl_client_fingerprint ssl_client_i_dn
	ssl_client_i_dn_legacy ssl_client_raw_cert ssl_client_s_dn ssl_client_s_dn_legacy ssl_client_serial
	ssl_client_v_end ssl_client_v_remain ssl_client_v_start ssl_client_verify ssl_curve ssl_curves
	ssl_early_data ssl_protocol ssl_server_name ssl_session_id ssl_session_reused tcpinfo_rtt
	tcpinfo_rttvar tcpinfo_snd_cwnd tcpinfo_rcv_space uid_got uid_reset uid_set upstream_bytes_received
	upstream_bytes_sent upstream_cache_status upstream_header_time upstream_queue_time
	upstream_response_length`)
