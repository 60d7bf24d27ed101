package nginxconf

import (
	"context"
	"net"
	"strings"
	"time"
)

// realipModule is ngx_http_realip_module. It is implemented, not ignored:
// ignoring it would leave $remote_addr at the proxy's address, and
// allow/deny behind a proxy would then let everyone in.
var realipModule = module{name: "ngx_http_realip_module", create: func(lc *LocConf) {
	lc.RealIPHeader = "X-Real-IP"
}, directives: []directive{
	{name: "set_real_ip_from", inherit: inheritReplace, field: "RealIPFrom", set: setRealIPFrom},
	{name: "real_ip_header", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.RealIPHeader = d.Args[0] // "proxy_protocol" (exactly so): the PROXY protocol header's address
	}},
	{name: "real_ip_recursive", set: func(c *compiler, lv *level, d *Directive) { lv.conf.RealIPRecursive = d.Args[0] == "on" }},
}}

// setRealIPFrom compiles `set_real_ip_from address|CIDR|unix:|name`: a
// host name is resolved now and trusts each of its addresses, as nginx
// does.
func setRealIPFrom(c *compiler, lv *level, d *Directive) {
	v := d.Args[0]
	if v == "all" {
		c.fail(d, `invalid parameter "all"`)
	}
	if v == "unix:" || strings.Contains(v, "/") || net.ParseIP(v) != nil {
		lv.conf.RealIPFrom = append(lv.conf.RealIPFrom, c.accessRule(d))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", v)
	if err != nil || len(ips) == 0 {
		c.fail(d, `host not found in set_real_ip_from "%s"`, v)
	}
	for _, ip := range ips {
		bits := 128
		if v4 := ip.To4(); v4 != nil {
			ip, bits = v4, 32
		}
		lv.conf.RealIPFrom = append(lv.conf.RealIPFrom, AccessRule{Net: &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}})
	}
}

// RealIPConf is the realip module's part of a location's settings.
type RealIPConf struct {
	RealIPFrom      []AccessRule // set_real_ip_from: the trusted addresses (Allow is not used)
	RealIPHeader    string       // real_ip_header (default X-Real-IP)
	RealIPRecursive bool
}
