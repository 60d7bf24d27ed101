package nginxconf

import (
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"

	"ngxsockify/nginxconf/vars"
)

// proxyModule is ngx_http_proxy_module, first cut: proxy_pass to http://
// backends (an address, a unix socket, an upstream{} block or a URL with
// variables), the request it sends and the response it passes back. The
// proxy_* directives without an entry here are Ignored (buffers, caching,
// temp files: tuning) and warn.
var proxyModule = module{name: "ngx_http_proxy_module", create: func(lc *LocConf) {
	lc.ProxyHTTPVersion = "1.0"
	lc.ProxyPassRequestHeaders, lc.ProxyPassRequestBody, lc.ProxyBuffering = true, true, true
	lc.ProxyRequestBuffering = true
	lc.ProxyConnectTimeout, lc.ProxyReadTimeout, lc.ProxySendTimeout = 60*time.Second, 60*time.Second, 60*time.Second
	lc.ProxyBufferSize = 4096 // one memory page, nginx's default
	lc.ProxyBuffers = 8 * 4096
	lc.ProxyBufferUnit = 4096
	lc.ProxyNextUpstream = NextError | NextTimeout
	lc.ProxySSLSessionReuse = true
	lc.ProxySSLVerifyDepth = 1
	lc.ProxyStoreAccess = 0600
}, directives: []directive{
	{name: "proxy_pass", dup: "proxy_pass", inherit: inheritNone, field: "ProxyPass", set: setProxyPass},
	{name: "proxy_http_version", set: func(c *compiler, lv *level, d *Directive) {
		if d.Args[0] != "1.0" && d.Args[0] != "1.1" {
			c.fail(d, `invalid value "%s"`, d.Args[0])
		}
		lv.conf.ProxyHTTPVersion = d.Args[0]
	}},
	{name: "proxy_set_header", inherit: inheritReplace, field: "ProxySetHeaders", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.ProxySetHeaders = append(lv.conf.ProxySetHeaders,
			ProxyHeader{Name: d.Args[0], Value: c.template(d, d.Args[1])})
	}},
	{name: "proxy_hide_header", inherit: inheritReplace, field: "ProxyHideHeaders", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.ProxyHideHeaders = append(lv.conf.ProxyHideHeaders, textproto.CanonicalMIMEHeaderKey(d.Args[0]))
	}},
	{name: "proxy_pass_header", inherit: inheritReplace, field: "ProxyPassHeaders", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.ProxyPassHeaders = append(lv.conf.ProxyPassHeaders, textproto.CanonicalMIMEHeaderKey(d.Args[0]))
	}},
	{name: "proxy_bind", dup: "proxy_bind", set: setProxyBind},
	onOff("proxy_force_ranges", func(lc *LocConf) *bool { return &lc.ProxyForceRanges }),
	{name: "proxy_store", dup: "proxy_store", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.ProxyStore = nil
		switch d.Args[0] {
		case "off":
		case "on":
			lv.conf.ProxyStore = &ProxyStore{}
		default:
			lv.conf.ProxyStore = &ProxyStore{Path: c.template(d, d.Args[0])}
		}
	}},
	{name: "proxy_store_access", dup: "proxy_store_access", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.ProxyStoreAccess = c.access(d)
	}},
	onOff("proxy_pass_request_headers", func(lc *LocConf) *bool { return &lc.ProxyPassRequestHeaders }),
	onOff("proxy_pass_request_body", func(lc *LocConf) *bool { return &lc.ProxyPassRequestBody }),
	onOff("proxy_request_buffering", func(lc *LocConf) *bool { return &lc.ProxyRequestBuffering }),
	onOff("proxy_buffering", func(lc *LocConf) *bool { return &lc.ProxyBuffering }),
	onOff("proxy_intercept_errors", func(lc *LocConf) *bool { return &lc.ProxyInterceptErrors }),
	onOff("proxy_ignore_client_abort", func(lc *LocConf) *bool { return &lc.ProxyIgnoreClientAbort }),
	templated("proxy_set_body", func(lc *LocConf) **vars.Template { return &lc.ProxySetBody }),
	templated("proxy_method", func(lc *LocConf) **vars.Template { return &lc.ProxyMethod }),
	timed("proxy_connect_timeout", func(lc *LocConf) *time.Duration { return &lc.ProxyConnectTimeout }),
	timed("proxy_read_timeout", func(lc *LocConf) *time.Duration { return &lc.ProxyReadTimeout }),
	timed("proxy_send_timeout", func(lc *LocConf) *time.Duration { return &lc.ProxySendTimeout }),
	timed("proxy_next_upstream_timeout", func(lc *LocConf) *time.Duration { return &lc.ProxyNextUpstreamTimeout }),
	sized("proxy_limit_rate", func(lc *LocConf) *int64 { return &lc.ProxyLimitRate }),
	sized("proxy_buffer_size", func(lc *LocConf) *int { return &lc.ProxyBufferSize }),
	{name: "proxy_buffers", dup: "proxy_buffers", set: func(c *compiler, lv *level, d *Directive) {
		num, err := strconv.Atoi(d.Args[0])
		size, serr := ParseSize(d.Args[1])
		if err != nil || num <= 0 || serr != nil || size <= 0 {
			c.fail(d, `"proxy_buffers" directive invalid value`)
		}
		lv.conf.ProxyBuffers = num * int(size)
		lv.conf.ProxyBufferUnit = int(size)
	}},
	// No response cache: the location is served, every request reaching
	// the backend, and the warning says so (the other proxy_cache_*
	// directives are Ignored).
	{name: "proxy_cache", dup: "proxy_cache", set: func(c *compiler, lv *level, d *Directive) {
		if d.Args[0] != "off" {
			c.warn(d, `"proxy_cache" directive is ignored: ngxsockify caches no responses, every request is served by the backend`)
		}
	}},
	// a bitmask slot: occurrences at one level add up, as in nginx
	{name: "proxy_next_upstream", inherit: inheritReplace, field: "ProxyNextUpstream", set: func(c *compiler, lv *level, d *Directive) {
		var mask NextUpstream
		for _, a := range d.Args {
			bit, ok := nextUpstreamNames[a]
			if !ok {
				c.fail(d, `invalid value "%s"`, a)
				return
			}
			if bit == 0 && len(d.Args) > 1 {
				c.fail(d, `invalid value "%s"`, a) // "off" stands alone
				return
			}
			mask |= bit
		}
		lv.conf.ProxyNextUpstream |= mask
	}},
	{name: "proxy_next_upstream_tries", dup: "proxy_next_upstream_tries", set: func(c *compiler, lv *level, d *Directive) {
		n, err := strconv.Atoi(d.Args[0])
		if err != nil || n < 0 {
			c.fail(d, `invalid number "%s"`, d.Args[0])
			return
		}
		lv.conf.ProxyNextUpstreamTries = n
	}},
	{name: "proxy_cookie_domain", inherit: inheritReplace, field: "ProxyCookieDomains", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.ProxyCookieDomains = c.cookieRule(d, lv.conf.ProxyCookieDomains, true)
	}},
	{name: "proxy_cookie_path", inherit: inheritReplace, field: "ProxyCookiePaths", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.ProxyCookiePaths = c.cookieRule(d, lv.conf.ProxyCookiePaths, false)
	}},
	{name: "proxy_cookie_flags", inherit: inheritReplace, field: "ProxyCookieFlags", set: func(c *compiler, lv *level, d *Directive) {
		a := d.Args
		if len(a) == 1 && a[0] == "off" {
			lv.conf.ProxyCookieFlags = []CookieFlags{}
			return
		}
		r := CookieFlags{}
		if strings.HasPrefix(a[0], "~") {
			r.Regex = c.regex(d, 0, strings.TrimPrefix(a[0][1:], "*"), true)
		} else {
			r.Name = c.template(d, a[0])
		}
		for _, f := range a[1:] {
			r.Flags = append(r.Flags, c.template(d, f))
		}
		lv.conf.ProxyCookieFlags = append(lv.conf.ProxyCookieFlags, r)
	}},
	// X-Accel-Redirect, X-Accel-Limit-Rate, X-Accel-Charset and
	// X-Accel-Buffering change what ngxsockify does (the others steer
	// caching); every name nginx knows is accepted
	{name: "proxy_ignore_headers", inherit: inheritReplace, field: "ProxyIgnoreXAccelRedirect", set: func(c *compiler, lv *level, d *Directive) {
		// the level's own list replaces the parent's
		lv.conf.ProxyIgnoreXAccelLimitRate, lv.conf.ProxyIgnoreXAccelCharset = false, false
		lv.conf.ProxyIgnoreXAccelBuffering = false
		for _, a := range d.Args {
			switch strings.ToLower(a) {
			case "x-accel-redirect":
				lv.conf.ProxyIgnoreXAccelRedirect = true
			case "x-accel-limit-rate":
				lv.conf.ProxyIgnoreXAccelLimitRate = true
			case "x-accel-charset":
				lv.conf.ProxyIgnoreXAccelCharset = true
			case "x-accel-buffering":
				lv.conf.ProxyIgnoreXAccelBuffering = true
			case "x-accel-expires",
				"expires", "cache-control", "set-cookie", "vary":
			default:
				c.fail(d, `invalid value "%s"`, a)
				return
			}
		}
	}},
	onOff("proxy_ssl_server_name", func(lc *LocConf) *bool { return &lc.ProxySSLServerName }),
	onOff("proxy_ssl_verify", func(lc *LocConf) *bool { return &lc.ProxySSLVerify }),
	onOff("proxy_ssl_session_reuse", func(lc *LocConf) *bool { return &lc.ProxySSLSessionReuse }),
	templated("proxy_ssl_name", func(lc *LocConf) **vars.Template { return &lc.ProxySSLName }),
	{name: "proxy_ssl_verify_depth", dup: "proxy_ssl_verify_depth", set: func(c *compiler, lv *level, d *Directive) {
		n, err := strconv.Atoi(d.Args[0])
		if err != nil || n < 0 {
			c.fail(d, `invalid number "%s"`, d.Args[0])
			return
		}
		lv.conf.ProxySSLVerifyDepth = n
	}},
	{name: "proxy_ssl_trusted_certificate", dup: "proxy_ssl_trusted_certificate", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.ProxySSLTrusted = c.constPath(d)
	}},
	{name: "proxy_ssl_certificate", dup: "proxy_ssl_certificate", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.ProxySSLCertificate, lv.conf.ProxySSLCertificateVar = c.pathOrTemplate(d)
	}},
	{name: "proxy_ssl_certificate_key", dup: "proxy_ssl_certificate_key", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.ProxySSLCertificateKey, lv.conf.ProxySSLCertificateKeyVar = c.pathOrTemplate(d)
	}},
	{name: "proxy_ssl_crl", dup: "proxy_ssl_crl", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.ProxySSLCRL = c.constPath(d)
	}},
	{name: "proxy_ssl_password_file", dup: "proxy_ssl_password_file", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.ProxySSLPasswords = c.passwordFile(d, c.confName(d.Args[0]))
	}},
	{name: "proxy_ssl_conf_command", support: Refused, note: "OpenSSL configuration commands"},
	{name: "proxy_redirect", inherit: inheritReplace, field: "ProxyRedirects", set: setProxyRedirect},
}}

// ProxyConf is the proxy module's part of a location's settings.
type ProxyConf struct {
	ProxyPass        *ProxyPass // not inherited: a content handler
	ProxyHTTPVersion string     // "1.0" or "1.1"
	// ProxySetHeaders are the proxy_set_header entries in order; a level
	// that has one replaces the inherited list.
	ProxySetHeaders                               []ProxyHeader
	ProxyHideHeaders, ProxyPassHeaders            []string // canonical names
	ProxyPassRequestHeaders, ProxyPassRequestBody bool
	ProxyBuffering, ProxyInterceptErrors          bool
	// ProxyIgnoreClientAbort: a client that closes while the backend is
	// awaited does not end the proxied request.
	ProxyIgnoreClientAbort    bool
	ProxyRequestBuffering     bool           // off: the body goes to the backend as it comes
	ProxySetBody, ProxyMethod *vars.Template // nil: not set
	ProxyConnectTimeout       time.Duration
	ProxyBind                 *ProxyBind  // proxy_bind; nil: off
	ProxyStore                *ProxyStore // proxy_store; nil: off
	ProxyStoreAccess          os.FileMode // proxy_store_access (0600 by default)
	// ProxyForceRanges (proxy_force_ranges on): the range filter serves
	// single ranges of a response of known length whatever the backend's
	// Accept-Ranges says.
	ProxyForceRanges                   bool
	ProxyReadTimeout, ProxySendTimeout time.Duration
	ProxyBufferSize                    int   // the bound of the response header, and of reads under proxy_buffering off
	ProxyLimitRate                     int64 // proxy_limit_rate: bytes per second read from the backend (0: no limit)
	// ProxyBuffers is proxy_buffers' number times size: what a buffered
	// response is read into at a time. Nothing goes to disk (as under
	// proxy_max_temp_file_size 0): a client slower than the backend holds
	// the backend back.
	ProxyBuffers int
	// ProxyBufferUnit is proxy_buffers' size, one buffer's: a buffered
	// response goes to the client a whole buffer at a time, and a read
	// timeout loses the part of a buffer not yet filled.
	ProxyBufferUnit int
	// ProxyRedirects are the proxy_redirect rules; nil: `default`, unless
	// ProxyRedirectOff.
	ProxyRedirects   []ProxyRedirect
	ProxyRedirectOff bool
	// ProxyCookieDomains and ProxyCookiePaths rewrite the Domain and
	// Path attributes of the backend's Set-Cookie headers; a level that
	// has one replaces the inherited list (`off`: an empty one).
	ProxyCookieDomains, ProxyCookiePaths []CookieRule
	ProxyCookieFlags                     []CookieFlags
	ProxyIgnoreXAccelRedirect            bool // proxy_ignore_headers X-Accel-Redirect
	ProxyIgnoreXAccelLimitRate           bool // proxy_ignore_headers X-Accel-Limit-Rate
	ProxyIgnoreXAccelCharset             bool // proxy_ignore_headers X-Accel-Charset
	ProxyIgnoreXAccelBuffering           bool // proxy_ignore_headers X-Accel-Buffering
	// https:// backends: SNI (proxy_ssl_server_name), the name checked
	// and sent (proxy_ssl_name; nil: the URL's host), verification
	// against ProxySSLTrusted, a client certificate, session reuse.
	ProxySSLServerName, ProxySSLVerify, ProxySSLSessionReuse bool
	ProxySSLName                                             *vars.Template
	ProxySSLVerifyDepth                                      int
	ProxySSLTrusted                                          string
	ProxySSLCRL                                              string // proxy_ssl_crl's file
	ProxySSLCertificate, ProxySSLCertificateKey              string
	// ProxySSLCertificateVar and ProxySSLCertificateKeyVar are the
	// certificate and key paths with variables, read for every
	// connection (relative to the conf prefix) in place of the constant
	// ones; an empty certificate path sends none.
	ProxySSLCertificateVar, ProxySSLCertificateKeyVar *vars.Template
	ProxySSLPasswords                                 []string // proxy_ssl_password_file
	// ProxyNextUpstream is when another server is tried;
	// ProxyNextUpstreamTries bounds the attempts and
	// ProxyNextUpstreamTimeout the time since the first began (0: no bound).
	ProxyNextUpstream        NextUpstream
	ProxyNextUpstreamTries   int
	ProxyNextUpstreamTimeout time.Duration
}

// NextUpstream is a set of proxy_next_upstream conditions.
type NextUpstream uint

// proxy_next_upstream conditions.
const (
	NextError NextUpstream = 1 << iota
	NextTimeout
	NextInvalidHeader
	NextHTTP500
	NextHTTP502
	NextHTTP503
	NextHTTP504
	NextHTTP403
	NextHTTP404
	NextHTTP429
	NextNonIdempotent
)

var nextUpstreamNames = map[string]NextUpstream{
	"error": NextError, "timeout": NextTimeout, "invalid_header": NextInvalidHeader,
	"http_500": NextHTTP500, "http_502": NextHTTP502, "http_503": NextHTTP503, "http_504": NextHTTP504,
	"http_403": NextHTTP403, "http_404": NextHTTP404, "http_429": NextHTTP429,
	"non_idempotent": NextNonIdempotent, "off": 0, "updating": 0,
}

// ForStatus returns the condition of a response status, 0 for none.
func (NextUpstream) ForStatus(status int) NextUpstream {
	switch status {
	case 500:
		return NextHTTP500
	case 502:
		return NextHTTP502
	case 503:
		return NextHTTP503
	case 504:
		return NextHTTP504
	case 403:
		return NextHTTP403
	case 404:
		return NextHTTP404
	case 429:
		return NextHTTP429
	}
	return 0
}

// ProxyHeader is one proxy_set_header.
type ProxyHeader struct {
	Name  string
	Value *vars.Template
}

// ProxyRedirect is one proxy_redirect rule: a Location (or Refresh)
// header starting with Redirect gets that prefix replaced; one Regex
// matches is replaced whole (captures apply). Default marks
// `proxy_redirect default` (the proxy_pass URL becomes the location's
// name).
type ProxyRedirect struct {
	Default     bool
	Redirect    *vars.Template
	Regex       *vars.Regex
	Replacement *vars.Template
}

// ProxyPass is a compiled proxy_pass.
type ProxyPass struct {
	Raw string         // the URL as written
	URL *vars.Template // non-nil when the URL holds variables: parsed per request
	// Target is the parsed URL when it holds no variables.
	Target *ProxyURL
	// Location is the name of the location the URI part replaces (nginx's
	// plcf->location); empty when the level cannot have a URI part.
	Location string
	File     string
	Line     int
}

// ProxyURL is a parsed proxy_pass URL.
type ProxyURL struct {
	Scheme string // "http" or "https"
	// Host is $proxy_host: the host as written, with the port when it is
	// not the scheme's default; "localhost" for a unix socket.
	Host string
	Port string // $proxy_port
	// Addr is what to dial or look up: "host:port", "unix:/path"; Name is
	// the host without port, for a lookup of an upstream{} block.
	Addr, Name string
	// ExplicitPort: the URL spells a port (an upstream{} block matches
	// only URLs without one).
	ExplicitPort bool
	// URI is the URI part ("/x/" in http://h/x/), HasURI whether there is
	// one ("/" counts).
	URI    string
	HasURI bool
}

// ParseProxyURL parses a proxy_pass URL: http://host[:port][/uri],
// https://..., http://unix:/path[:/uri]. Errors use nginx's words.
func ParseProxyURL(raw string) (*ProxyURL, error) {
	u := &ProxyURL{}
	rest, ok := "", false
	switch {
	case len(raw) >= 7 && strings.EqualFold(raw[:7], "http://"):
		u.Scheme, u.Port, rest, ok = "http", "80", raw[7:], true
	case len(raw) >= 8 && strings.EqualFold(raw[:8], "https://"):
		u.Scheme, u.Port, rest, ok = "https", "443", raw[8:], true
	}
	if !ok {
		return nil, errors.New("invalid URL prefix")
	}
	if p, isUnix := strings.CutPrefix(rest, "unix:"); isUnix {
		path, uri, hasURI := strings.Cut(p, ":")
		if path == "" {
			return nil, fmt.Errorf(`no path in the unix domain socket in upstream "%s"`, rest)
		}
		u.Host, u.Addr, u.Name = "localhost", "unix:"+path, "unix:"+path
		u.URI, u.HasURI = uri, hasURI
		return u, nil
	}
	hostport := rest
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		hostport, u.URI, u.HasURI = rest[:i], rest[i:], true
		if u.URI[0] == '?' {
			u.URI = "/" + u.URI
		}
	}
	if hostport == "" {
		return nil, fmt.Errorf(`no host in upstream "%s"`, hostport)
	}
	u.Host, u.Name = hostport, hostport
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf(`invalid port in upstream "%s"`, rest)
		}
		u.Name, u.Port, u.ExplicitPort = h, p, true
	} else if strings.Contains(hostport, ":") && !strings.HasPrefix(hostport, "[") {
		return nil, fmt.Errorf(`invalid port in upstream "%s"`, rest)
	}
	u.Addr = net.JoinHostPort(strings.Trim(u.Name, "[]"), u.Port)
	return u, nil
}

func setProxyPass(c *compiler, lv *level, d *Directive) {
	pp := &ProxyPass{Raw: d.Args[0], File: d.File, Line: d.EndLine}
	uriForbidden := lv.ctx == ctxIf || lv.ctx == ctxLimitExcept ||
		(lv.loc != nil && (lv.loc.Modifier == ModRegex || lv.loc.Modifier == ModRegexI || lv.loc.Modifier == ModNamed))
	if strings.Contains(pp.Raw, "$") {
		t := c.template(d, pp.Raw)
		if v, ok := t.Const(); ok {
			pp.Raw = v
		} else {
			pp.URL = t
		}
	}
	if pp.URL == nil {
		t, err := ParseProxyURL(pp.Raw)
		if err != nil {
			c.fail(d, "%v", err)
			return
		}
		if t.HasURI && uriForbidden {
			c.fail(d, `"proxy_pass" cannot have URI part in location given by regular expression, `+
				`or inside named location, or inside "if" statement, or inside "limit_except" block`)
		}
		pp.Target = t
		c.checkProxyHost(d, t)
	}
	if lv.loc != nil && !uriForbidden {
		pp.Location = lv.loc.Path
	}
	lv.conf.ProxyPass = pp
}

func setProxyRedirect(c *compiler, lv *level, d *Directive) {
	a := d.Args
	if len(a) == 1 {
		switch a[0] {
		case "off":
			lv.conf.ProxyRedirects, lv.conf.ProxyRedirectOff = nil, true
		case "default":
			lv.conf.ProxyRedirects = append(lv.conf.ProxyRedirects, ProxyRedirect{Default: true})
		default:
			c.fail(d, `invalid parameter "%s"`, a[0])
		}
		return
	}
	r := ProxyRedirect{Replacement: c.template(d, a[1])}
	switch {
	case strings.HasPrefix(a[0], "~*"):
		r.Regex = c.regex(d, 0, a[0][2:], true)
	case strings.HasPrefix(a[0], "~"):
		r.Regex = c.regex(d, 0, a[0][1:], false)
	default:
		r.Redirect = c.template(d, a[0])
	}
	lv.conf.ProxyRedirectOff = false
	lv.conf.ProxyRedirects = append(lv.conf.ProxyRedirects, r)
}

// checkProxyHost resolves a constant URL's host name, as nginx does at
// load, unless it names an upstream{} block (all of them are compiled
// before the servers).
func (c *compiler) checkProxyHost(d *Directive, t *ProxyURL) {
	if strings.HasPrefix(t.Addr, "unix:") || net.ParseIP(strings.Trim(t.Name, "[]")) != nil {
		return
	}
	if _, ok := c.cfg.HTTP.Upstreams[t.Name]; ok && !t.ExplicitPort {
		return
	}
	if addrs, err := net.LookupHost(t.Name); err != nil || len(addrs) == 0 {
		c.fail(d, `host not found in upstream "%s"`, t.Host)
	}
}

// CookieRule is one proxy_cookie_domain or proxy_cookie_path: an
// attribute equal to From (a domain, case and leading dot aside) or
// starting with it (a path), or matching Regex, gets To.
type CookieRule struct {
	From, To *vars.Template
	Regex    *vars.Regex
}

// cookieRule compiles `off` or `from to` onto rules. Domain regexes are
// caseless, as nginx compiles them.
func (c *compiler) cookieRule(d *Directive, rules []CookieRule, domain bool) []CookieRule {
	a := d.Args
	if len(a) == 1 {
		if a[0] != "off" {
			c.fail(d, `invalid parameter "%s"`, a[0])
		}
		return []CookieRule{} // set and empty: nothing inherited
	}
	r := CookieRule{To: c.template(d, a[1])}
	switch {
	case strings.HasPrefix(a[0], "~*"):
		r.Regex = c.regex(d, 0, a[0][2:], true)
	case strings.HasPrefix(a[0], "~"):
		r.Regex = c.regex(d, 0, a[0][1:], domain)
	default:
		from := a[0]
		if domain {
			from = strings.TrimPrefix(from, ".")
		}
		r.From = c.template(d, from)
	}
	return append(rules, r)
}

// CookieFlags is one proxy_cookie_flags: the cookies named Name (or
// matching Regex, caseless) get the flags (secure, httponly,
// samesite=strict|lax|none) set or, with "no", removed.
type CookieFlags struct {
	Name  *vars.Template
	Regex *vars.Regex
	Flags []*vars.Template
}

// pathOrTemplate is a file argument: a path resolved against the conf
// prefix, or a template when it has variables (one of the two is set).
func (c *compiler) pathOrTemplate(d *Directive) (string, *vars.Template) {
	if strings.Contains(d.Args[0], "$") {
		return "", c.template(d, d.Args[0])
	}
	return c.confName(d.Args[0]), nil
}

// constPath is a file argument without variables, resolved against the
// conf prefix as the ssl module's files are.
func (c *compiler) constPath(d *Directive) string {
	if strings.Contains(d.Args[0], "$") {
		c.fail(d, `variables in "%s" are not supported by ngxsockify`, d.Name)
		return ""
	}
	return c.confName(d.Args[0])
}

// onOff declares an on|off directive that sets one field.
func onOff(name string, field func(lc *LocConf) *bool) directive {
	return directive{name: name, set: func(c *compiler, lv *level, d *Directive) { *field(lv.conf) = d.Args[0] == "on" }}
}

// timed declares a directive whose one time value ("30s", "1m") sets one
// field; a second one in a block is a duplicate.
func timed(name string, field func(lc *LocConf) *time.Duration) directive {
	return directive{name: name, dup: name, set: func(c *compiler, lv *level, d *Directive) {
		*field(lv.conf) = c.duration(d, d.Args[0])
	}}
}

// sized declares a directive whose one size value ("8k", "1m") sets one
// field, as ngx_conf_set_size_slot reads it; a second one in a block is a
// duplicate.
func sized[T int | int64](name string, field func(lc *LocConf) *T) directive {
	return directive{name: name, dup: name, set: func(c *compiler, lv *level, d *Directive) {
		n, err := ParseSize(d.Args[0])
		if err != nil {
			c.fail(d, `"%s" directive invalid value`, name)
		}
		*field(lv.conf) = T(n)
	}}
}

// templated declares a directive whose one value, variables allowed, sets
// one field; a second one in a block is a duplicate.
func templated(name string, field func(lc *LocConf) **vars.Template) directive {
	return directive{name: name, dup: name, set: func(c *compiler, lv *level, d *Directive) {
		*field(lv.conf) = c.template(d, d.Args[0])
	}}
}

// ProxyBind is proxy_bind: the local address connections to backends are
// bound to.
type ProxyBind struct {
	Addr  *net.TCPAddr   // a constant address (port 0: any port)
	Name  string         // ... as written
	Value *vars.Template // an address with variables: parsed per request (ParseLocalAddr)
}

// setProxyBind compiles `proxy_bind address [transparent] | off`, as
// nginx's ngx_http_upstream_bind_set_slot.
func setProxyBind(c *compiler, lv *level, d *Directive) {
	lv.conf.ProxyBind = nil
	if d.Args[0] == "off" {
		return
	}
	b := &ProxyBind{Name: d.Args[0]}
	if strings.Contains(d.Args[0], "$") {
		b.Value = c.template(d, d.Args[0])
	} else if b.Addr = ParseLocalAddr(d.Args[0]); b.Addr == nil {
		c.fail(d, `invalid address "%s"`, d.Args[0])
		return
	}
	if len(d.Args) > 1 {
		if d.Args[1] != "transparent" {
			c.fail(d, `invalid parameter "%s"`, d.Args[1])
			return
		}
		c.fail(d, `"proxy_bind ... transparent" is not supported by ngxsockify`)
		return
	}
	lv.conf.ProxyBind = b
}

// ParseLocalAddr reads an IP address with an optional port ("127.0.0.2",
// "127.0.0.2:8000", "::1", "[::1]:8000") as nginx's ngx_parse_addr_port
// does; nil: not one.
func ParseLocalAddr(s string) *net.TCPAddr {
	if ip := net.ParseIP(s); ip != nil && !strings.Contains(s, "%") {
		return &net.TCPAddr{IP: ip}
	}
	host, port := "", ""
	if strings.HasPrefix(s, "[") {
		i := strings.IndexByte(s, ']')
		if i < 0 || i+1 >= len(s) || s[i+1] != ':' {
			return nil
		}
		host, port = s[1:i], s[i+2:]
	} else {
		i := strings.IndexByte(s, ':')
		if i < 0 {
			return nil
		}
		host, port = s[:i], s[i+1:]
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '+' || port[0] == '-' {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || strings.Contains(host, "%") {
		return nil
	}
	return &net.TCPAddr{IP: ip, Port: n}
}

// ProxyStore is proxy_store: where a backend's 200 is saved as a file.
type ProxyStore struct {
	// Path is the file's path; nil ("on"): the path root or alias gives
	// the URI, as for a static file.
	Path *vars.Template
}

// access reads nginx's file access list ("user:rw group:r all:r", as
// ngx_conf_set_access_slot): the user has rw unless the list says
// otherwise.
func (c *compiler) access(d *Directive) os.FileMode {
	var mode os.FileMode
	user := os.FileMode(0600)
	for _, a := range d.Args {
		var shift uint
		var rights string
		switch {
		case strings.HasPrefix(a, "user:"):
			shift, rights, user = 6, a[5:], 0
		case strings.HasPrefix(a, "group:"):
			shift, rights = 3, a[6:]
		case strings.HasPrefix(a, "all:"):
			shift, rights = 0, a[4:]
		default:
			c.fail(d, `invalid value "%s"`, a)
			return 0
		}
		switch rights {
		case "rw":
			mode |= 6 << shift
		case "r":
			mode |= 4 << shift
		default:
			c.fail(d, `invalid value "%s"`, a)
			return 0
		}
	}
	return mode | user
}
