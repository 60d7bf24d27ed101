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
