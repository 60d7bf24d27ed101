package nginxconf

// realipModule is ngx_http_realip_module. It is implemented, not ignored:
// ignoring it would leave $remote_addr at the proxy's address, and
// allow/deny behind a proxy would then let everyone in.
var realipModule = module{name: "ngx_http_realip_module", directives: []directive{
	{name: "set_real_ip_from", inherit: inheritReplace, field: "RealIPFrom", set: func(c *compiler, lv *level, d *Directive) {
		r := c.accessRule(d)
		if r.All {
			c.fail(d, `invalid parameter "all"`)
		}
		lv.conf.RealIPFrom = append(lv.conf.RealIPFrom, r)
	}},
	{name: "real_ip_header", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.RealIPHeader = d.Args[0]
		if d.Args[0] == "proxy_protocol" {
			c.fail(d, `"real_ip_header proxy_protocol" is not supported by ngxsockify (no "listen ... proxy_protocol")`)
		}
	}},
	{name: "real_ip_recursive", set: func(c *compiler, lv *level, d *Directive) { lv.conf.RealIPRecursive = d.Args[0] == "on" }},
}}

// RealIPConf is the realip module's part of a location's settings.
type RealIPConf struct {
	RealIPFrom      []AccessRule // set_real_ip_from (Allow set on each)
	RealIPHeader    string       // real_ip_header (default X-Real-IP)
	RealIPRecursive bool
}
