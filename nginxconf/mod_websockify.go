package nginxconf

import (
	"net"
	"path"
	"strconv"
	"strings"
	"time"
)

// websockifyModule is the websockify module (tg123/websockify-nginx-module):
// websockify_pass is a location's content handler, relaying WebSocket
// clients to a TCP target. websockify_allow is ngxsockify's own: the
// targets a location may relay to; so is websockify_ping_interval.
var websockifyModule = module{name: "ngx_http_websockify_module", create: func(lc *LocConf) {
	lc.WSBufferSize = 65543
	lc.WSConnectTimeout, lc.WSReadTimeout, lc.WSSendTimeout = 60*time.Second, 60*time.Second, 60*time.Second
}, directives: []directive{
	{name: "websockify_pass", masks: []uint{ctxHTTPLoc | ctxHTTPLif | confTake1}, dup: "websockify_pass",
		inherit: inheritNone, field: "Websockify", set: func(c *compiler, lv *level, d *Directive) {
			ws := &Websockify{Target: c.template(d, d.Args[0]), File: d.File, Line: d.EndLine}
			if v, ok := ws.Target.Const(); ok {
				ws.Upstream = c.cfg.HTTP.Upstreams[v]
			}
			lv.conf.Websockify = ws
		}},
	{name: "websockify_buffer_size", masks: []uint{ctxHTTPAll | confTake1}, set: func(c *compiler, lv *level, d *Directive) {
		n, err := ParseSize(d.Args[0])
		if err != nil || n <= 0 {
			c.fail(d, `"websockify_buffer_size" directive invalid value`)
		}
		lv.conf.WSBufferSize = int(n)
	}},
	{name: "websockify_connect_timeout", masks: []uint{ctxHTTPAll | confTake1}, set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.WSConnectTimeout = c.duration(d, d.Args[0])
	}},
	{name: "websockify_read_timeout", masks: []uint{ctxHTTPAll | confTake1}, set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.WSReadTimeout = c.duration(d, d.Args[0])
	}},
	{name: "websockify_send_timeout", masks: []uint{ctxHTTPAll | confTake1}, set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.WSSendTimeout = c.duration(d, d.Args[0])
	}},
	// websockify_ping_interval TIME | off: ping idle clients (ngxsockify's
	// own, Python websockify's --heartbeat); default off, inherited.
	{name: "websockify_ping_interval", masks: []uint{ctxHTTPAll | confTake1}, set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.WSPingInterval = 0
		if d.Args[0] != "off" {
			lv.conf.WSPingInterval = c.duration(d, d.Args[0])
		}
	}},
	{name: "websockify_allow", masks: []uint{ctxHTTPAll | conf1More}, inherit: inheritReplace, field: "WSAllow",
		set: func(c *compiler, lv *level, d *Directive) {
			for _, a := range d.Args {
				r, ok := parseTargetRule(a)
				if !ok {
					c.fail(d, `invalid parameter "%s"`, a)
				}
				lv.conf.WSAllow = append(lv.conf.WSAllow, r)
			}
		}},
}}

// WebsockifyConf is the websockify module's part of a location's settings.
type WebsockifyConf struct {
	Websockify                                     *Websockify // not inherited: a content handler
	WSBufferSize                                   int
	WSConnectTimeout, WSReadTimeout, WSSendTimeout time.Duration
	// WSPingInterval is websockify_ping_interval: ping a client after this
	// long without data either way; 0 (off, the default): never.
	WSPingInterval time.Duration
	// WSAllow is websockify_allow: when not empty, the only targets
	// websockify_pass may dial.
	WSAllow []TargetRule
}

// TargetRule is one websockify_allow value: addresses in Net with a port
// in [PortLo, PortHi], or unix sockets at Unix (a directory when it ends
// in "/": every socket below it).
type TargetRule struct {
	Net            *net.IPNet
	PortLo, PortHi int
	Unix           string
}

// parseTargetRule reads `unix:/path`, `unix:/dir/`, or
// `ADDR[/BITS][:PORT[-PORT]]` with ADDR an IPv4 address or [IPv6]; no
// port means every port.
func parseTargetRule(a string) (TargetRule, bool) {
	if p, ok := strings.CutPrefix(a, "unix:"); ok {
		if !strings.HasPrefix(p, "/") {
			return TargetRule{}, false
		}
		clean := path.Clean(p)
		if strings.HasSuffix(p, "/") && clean != "/" {
			clean += "/"
		}
		return TargetRule{Unix: clean}, true
	}
	addr, ports := a, ""
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return TargetRule{}, false
		}
		addr, ports = a[1:end], a[end+1:]
		if ports != "" && !strings.HasPrefix(ports, ":") {
			return TargetRule{}, false
		}
		ports = strings.TrimPrefix(ports, ":")
	} else if n := strings.Count(a, ":"); n > 1 {
		return TargetRule{}, false // an IPv6 address needs its brackets
	} else if n == 1 {
		addr, ports, _ = strings.Cut(a, ":")
	}
	r := TargetRule{PortLo: 1, PortHi: 65535}
	if !strings.Contains(addr, "/") {
		ip := net.ParseIP(addr)
		if ip == nil {
			return TargetRule{}, false
		}
		bits := 128
		if v4 := ip.To4(); v4 != nil {
			ip, bits = v4, 32
		}
		r.Net = &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}
	} else {
		ip, n, err := net.ParseCIDR(addr)
		if err != nil || !ip.Equal(n.IP) {
			return TargetRule{}, false
		}
		r.Net = n
	}
	if ports != "" {
		lo, hi, isRange := strings.Cut(ports, "-")
		var err1, err2 error
		r.PortLo, err1 = strconv.Atoi(lo)
		r.PortHi = r.PortLo
		if isRange {
			r.PortHi, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || r.PortLo < 1 || r.PortHi > 65535 || r.PortLo > r.PortHi {
			return TargetRule{}, false
		}
	}
	return r, true
}

// Allows reports whether addr ("ip:port", "[ipv6]:port" or "unix:/path")
// matches the rule. Socket paths are cleaned first, so "/dir/../x" is not
// below "/dir/".
func (r TargetRule) Allows(addr string) bool {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		if r.Unix == "" {
			return false
		}
		p = path.Clean(p)
		if strings.HasSuffix(r.Unix, "/") {
			return strings.HasPrefix(p, r.Unix)
		}
		return p == r.Unix
	}
	if r.Net == nil {
		return false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	n, err := strconv.Atoi(port)
	return ip != nil && err == nil && r.Net.Contains(ip) && n >= r.PortLo && n <= r.PortHi
}
