package nginxconf

import (
	"context"
	"maps"
	"net"
	"strconv"
	"strings"
	"time"

	"ngxsockify/nginxconf/vars"
)

type blockCtx int

const (
	ctxHTTP blockCtx = iota
	ctxServer
	ctxLocation
	ctxIf
	ctxLimitExcept
)

func defaultLocConf() *LocConf {
	return &LocConf{
		DefaultType:       "text/plain",
		ServerTokens:      true,
		AbsoluteRedirect:  true,
		Etag:              true,
		ClientMaxBodySize: 1 << 20,
		KeepaliveTimeout:  75 * time.Second,
		WSBufferSize:      65543,
		RealIPHeader:      "X-Real-IP",
		WSConnectTimeout:  60 * time.Second,
		WSReadTimeout:     60 * time.Second,
		WSSendTimeout:     60 * time.Second,
		ResolverTimeout:   30 * time.Second,
		set:               map[string]bool{},

		ClientBodyBufferSize: 8 << 10, // two memory pages on x86-64
	}
}

// newConf starts the configuration of a new level (parent nil: the http
// block) and numbers it: LocConf.ID is its place in HTTP.Confs.
func (c *compiler) newConf(parent *LocConf) *LocConf {
	lc := defaultLocConf()
	if parent != nil {
		lc = parent.child()
	}
	h := c.cfg.HTTP
	lc.ID = len(h.Confs)
	h.Confs = append(h.Confs, lc)
	return lc
}

// child returns the configuration a nested block starts from: everything
// inherited, nothing yet set at the new level.
func (lc *LocConf) child() *LocConf {
	n := *lc
	n.set = map[string]bool{}
	n.Websockify = nil // websockify_pass is not inherited (location-only, like proxy_pass)
	n.Unsupported = nil
	n.Internal = false
	n.LimitExcept = nil
	if lc.ErrorPages != nil {
		n.ErrorPages = maps.Clone(lc.ErrorPages)
	}
	return &n
}

// first reports whether field is set for the first time at this level; list
// directives (allow, add_header, index ...) replace the inherited list then.
func (lc *LocConf) first(field string) bool {
	if lc.set[field] {
		return false
	}
	lc.set[field] = true
	return true
}

func (c *compiler) locDirective(lc *LocConf, d *Directive, ctx blockCtx) {
	a := d.Args
	switch d.Name {
	case "root", "alias":
		if d.Name == "alias" && ctx != ctxLocation {
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
		t := c.template(d, a[0])
		if d.Name == "root" {
			lc.Root, lc.Alias = t, nil
		} else {
			lc.Alias, lc.Root = t, nil
		}
	case "index":
		if lc.first("index") {
			lc.Index = nil
		}
		for _, v := range a {
			if v == "" {
				c.fail(d, `index "" in "index" directive is invalid`)
			}
			lc.Index = append(lc.Index, c.template(d, v))
		}
	case "try_files":
		lc.TryFiles = nil
		for _, v := range a {
			lc.TryFiles = append(lc.TryFiles, c.template(d, v))
		}
	case "error_page":
		c.errorPage(lc, d)
	case "allow", "deny":
		if lc.first("access") {
			lc.Access = nil
		}
		lc.Access = append(lc.Access, c.accessRule(d))
	case "set_real_ip_from":
		if lc.first("set_real_ip_from") {
			lc.RealIPFrom = nil
		}
		r := c.accessRule(d)
		if r.All {
			c.fail(d, `invalid parameter "all"`)
		}
		lc.RealIPFrom = append(lc.RealIPFrom, r)
	case "real_ip_header":
		lc.RealIPHeader = a[0]
		if a[0] == "proxy_protocol" {
			c.fail(d, `"real_ip_header proxy_protocol" is not supported by ngxsockify (no "listen ... proxy_protocol")`)
		}
	case "real_ip_recursive":
		lc.RealIPRecursive = a[0] == "on"
	case "auth_basic":
		if a[0] == "off" {
			lc.AuthBasic = nil
		} else {
			lc.AuthBasic = c.template(d, a[0])
		}
	case "auth_basic_user_file":
		lc.AuthUserFile = c.template(d, a[0])
	case "satisfy":
		switch a[0] {
		case "any":
			lc.SatisfyAny = true
		case "all":
			lc.SatisfyAny = false
		default:
			c.fail(d, `invalid value "%s" in "satisfy" directive, it must be "all" or "any"`, a[0])
		}
	case "add_header":
		if lc.first("add_header") {
			lc.AddHeaders = nil
		}
		h := AddHeader{Name: a[0], Value: c.template(d, a[1])}
		if len(a) == 3 {
			if a[2] != "always" {
				c.fail(d, `invalid parameter "%s"`, a[2])
			}
			h.Always = true
		}
		lc.AddHeaders = append(lc.AddHeaders, h)
	case "charset":
		lc.Charset = a[0]
		if a[0] == "off" {
			lc.Charset = ""
		}
	case "default_type":
		lc.DefaultType = a[0]
	case "types":
		lc.Types = map[string]string{}
		for _, td := range d.Block {
			for _, ext := range td.Args {
				lc.Types[strings.ToLower(ext)] = td.Name
			}
		}
	case "expires":
		lc.Expires = c.expires(d)
	case "autoindex":
		lc.Autoindex = a[0] == "on"
	case "internal":
		lc.Internal = true
	case "server_tokens":
		lc.ServerTokens = a[0] != "off"
	case "absolute_redirect":
		lc.AbsoluteRedirect = a[0] == "on"
	case "etag":
		lc.Etag = a[0] == "on"
	case "client_max_body_size":
		n, err := ParseSize(a[0])
		if err != nil {
			c.fail(d, `"client_max_body_size" directive invalid value`)
		}
		lc.ClientMaxBodySize = n
	case "client_body_buffer_size":
		n, err := ParseSize(a[0])
		if err != nil {
			c.fail(d, `"client_body_buffer_size" directive invalid value`)
		}
		lc.ClientBodyBufferSize = n
	case "keepalive_timeout":
		lc.KeepaliveTimeout = c.duration(d, a[0])
	case "websockify_pass":
		if lc.Websockify != nil {
			c.fail(d, `"websockify_pass" directive is duplicate`)
		}
		ws := &Websockify{Target: c.template(d, a[0]), File: d.File, Line: d.EndLine}
		if v, ok := ws.Target.Const(); ok {
			ws.Upstream = c.cfg.HTTP.Upstreams[v]
		}
		lc.Websockify = ws
	case "websockify_buffer_size":
		n, err := ParseSize(a[0])
		if err != nil || n <= 0 {
			c.fail(d, `"websockify_buffer_size" directive invalid value`)
		}
		lc.WSBufferSize = int(n)
	case "websockify_connect_timeout":
		lc.WSConnectTimeout = c.duration(d, a[0])
	case "websockify_read_timeout":
		lc.WSReadTimeout = c.duration(d, a[0])
	case "websockify_send_timeout":
		lc.WSSendTimeout = c.duration(d, a[0])
	case "rewrite_by_lua", "rewrite_by_lua_block", "rewrite_by_lua_file":
		lc.RewriteLua = c.luaHook(lc, d, "rewrite")
	case "access_by_lua", "access_by_lua_block", "access_by_lua_file":
		lc.AccessLua = c.luaHook(lc, d, "access")
	case "content_by_lua", "content_by_lua_block", "content_by_lua_file":
		lc.ContentLua = c.luaHook(lc, d, "content")
	case "header_filter_by_lua", "header_filter_by_lua_block", "header_filter_by_lua_file":
		lc.HeaderFilterLua = c.luaHook(lc, d, "header_filter")
	case "lua_need_request_body":
		lc.NeedRequestBody = a[0] == "on"
	case "access_log":
		c.accessLog(lc, d)
	case "resolver":
		lc.Resolver, lc.ResolverValid, lc.ResolverNoIPv6 = nil, 0, false
		for _, v := range a {
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
	case "resolver_timeout":
		lc.ResolverTimeout = c.duration(d, a[0])
	default:
		switch d.Support() {
		case FailClosed:
			lc.FailClosed = append(lc.FailClosed, Warning{File: d.File, Line: d.EndLine, Directive: d.Name})
		case UnsupportedContent:
			lc.Unsupported = &Warning{File: d.File, Line: d.EndLine, Directive: d.Name}
		}
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

func (c *compiler) duration(d *Directive, v string) time.Duration {
	t, err := ParseTime(v)
	if err != nil {
		c.fail(d, `"%s" directive invalid value`, d.Name)
	}
	return t
}

func (c *compiler) luaHook(lc *LocConf, d *Directive, phase string) *LuaCode {
	if !lc.first(phase + "_by_lua") {
		c.fail(d, `"%s" directive is duplicate`, d.Name)
	}
	return c.luaCode(d, phase, d.Args[0])
}

func (c *compiler) luaCode(d *Directive, phase, arg string) *LuaCode {
	// lua-nginx-module names a chunk after the line where its directive
	// ends, except that a *_by_lua_block is named after the line where the
	// block starts (checked on nginx 1.22).
	line := d.EndLine
	if strings.HasSuffix(d.Name, "_block") {
		line = d.Line
	}
	h := c.cfg.HTTP
	code := &LuaCode{ID: len(h.LuaCodes), Directive: d.Name, Phase: phase, File: d.File, Line: line}
	h.LuaCodes = append(h.LuaCodes, code)
	if strings.HasSuffix(d.Name, "_file") {
		code.Path = arg
		code.PathTmpl = c.template(d, arg)
	} else {
		code.Source = arg
	}
	return code
}

func (c *compiler) errorPage(lc *LocConf, d *Directive) {
	if lc.first("error_page") {
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
		lc.ErrorPages[n] = ep
	}
}

func (c *compiler) accessRule(d *Directive) AccessRule {
	r := AccessRule{Allow: d.Name == "allow"}
	v := d.Args[0]
	switch {
	case v == "all":
		r.All = true
	case v == "unix:":
		r.Unix = true
	default:
		if !strings.Contains(v, "/") {
			ip := net.ParseIP(v)
			if ip == nil {
				c.fail(d, `invalid parameter "%s"`, v)
			}
			bits := 32
			if ip.To4() == nil {
				bits = 128
			} else {
				ip = ip.To4()
			}
			r.Net = &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}
			break
		}
		ip, n, err := net.ParseCIDR(v)
		if err != nil {
			c.fail(d, `invalid parameter "%s"`, v)
		}
		if !ip.Equal(n.IP) {
			c.warn(d, `low address bits of %s are meaningless`, v)
		}
		r.Net = n
	}
	return r
}

func (c *compiler) accessLog(lc *LocConf, d *Directive) {
	if lc.first("access_log") {
		lc.AccessLogs = nil
		lc.AccessLogOff = false
	}
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

// expires compiles `expires [modified] time | epoch | max | off | @time`.
func (c *compiler) expires(d *Directive) *Expires {
	a := d.Args
	e := &Expires{}
	if len(a) == 2 {
		if a[0] != "modified" {
			c.fail(d, `invalid value "%s"`, a[0])
		}
		e.Modified = true
		a = a[1:]
	}
	v := a[0]
	switch {
	case v == "off" && !e.Modified:
		return nil
	case v == "epoch" && !e.Modified:
		e.Kind = ExpiresEpoch
	case v == "max" && !e.Modified:
		e.Kind = ExpiresMax
	case strings.Contains(v, "$"):
		e.Kind, e.Value = ExpiresVar, c.template(d, v)
	default:
		t, ok := ParseExpires(v)
		if !ok {
			c.fail(d, `"expires" directive invalid value`)
		}
		e.Kind, e.Offset = ExpiresAfter, t
		if strings.HasPrefix(v, "@") {
			e.Kind = ExpiresDaily
		}
	}
	return e
}

// ParseExpires parses an expires time: "1h", "-1", "@15h30m" (a time of
// day, below 24h).
func ParseExpires(v string) (time.Duration, bool) {
	daily := strings.HasPrefix(v, "@")
	v = strings.TrimPrefix(v, "@")
	neg := false
	if !daily {
		if strings.HasPrefix(v, "-") {
			neg, v = true, v[1:]
		} else {
			v = strings.TrimPrefix(v, "+")
		}
	}
	t, err := ParseTime(v)
	if err != nil || (daily && t >= 24*time.Hour) {
		return 0, false
	}
	if neg {
		t = -t
	}
	return t, true
}
