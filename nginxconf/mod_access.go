package nginxconf

import (
	"net"
	"strings"
)

// accessModule is ngx_http_access_module: allow and deny, checked in the
// access phase in the order written.
var accessModule = module{name: "ngx_http_access_module", directives: []directive{
	{name: "allow", inherit: inheritReplace, field: "Access", set: setAccess},
	{name: "deny", inherit: inheritReplace, field: "Access", set: setAccess},
}}

// AccessConf is the access module's part of a location's settings.
type AccessConf struct {
	Access []AccessRule
}

func setAccess(c *compiler, lv *level, d *Directive) {
	lv.conf.Access = append(lv.conf.Access, c.accessRule(d))
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
		n, ok := c.cidr(d, v)
		if !ok {
			c.fail(d, `invalid parameter "%s"`, v)
		}
		r.Net = n
	}
	return r
}

// cidr parses an address or CIDR as nginx's ngx_ptocidr, warning of a
// network with host bits set; ok is false for anything else.
func (c *compiler) cidr(d *Directive, v string) (n *net.IPNet, ok bool) {
	if !strings.Contains(v, "/") {
		ip := net.ParseIP(v)
		if ip == nil {
			return nil, false
		}
		bits := 32
		if ip.To4() == nil {
			bits = 128
		} else {
			ip = ip.To4()
		}
		return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, true
	}
	ip, n, err := net.ParseCIDR(v)
	if err != nil {
		return nil, false
	}
	if !ip.Equal(n.IP) {
		c.warn(d, `low address bits of %s are meaningless`, v)
	}
	return n, true
}

// debugConnection is the events block's debug_connection (nginx's
// ngx_event_debug_connection): "unix:", an address or CIDR, else a host
// name whose addresses are taken, each a single-address rule.
func (c *compiler) debugConnection(d *Directive) {
	v := d.Args[0]
	if v == "unix:" {
		c.cfg.DebugConnections = append(c.cfg.DebugConnections, AccessRule{Allow: true, Unix: true})
		return
	}
	if n, ok := c.cidr(d, v); ok {
		c.cfg.DebugConnections = append(c.cfg.DebugConnections, AccessRule{Allow: true, Net: n})
		return
	}
	addrs, err := net.LookupHost(v)
	if err != nil || len(addrs) == 0 {
		c.fail(d, `host not found in debug_connection "%s"`, v)
	}
	for _, a := range addrs {
		if n, ok := c.cidr(d, a); ok {
			c.cfg.DebugConnections = append(c.cfg.DebugConnections, AccessRule{Allow: true, Net: n})
		}
	}
}
