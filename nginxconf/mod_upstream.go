package nginxconf

import (
	"strconv"
	"strings"
)

// upstreamModule is ngx_http_upstream_module: `upstream name { server ...; }`
// blocks, shared by every target that names them. The block's own
// directives are read by upstream, not through the registry.
var upstreamModule = module{name: "ngx_http_upstream_module", directives: []directive{
	{name: "upstream", opens: ctxHTTPUps, set: func(c *compiler, _ *level, d *Directive) { c.upstream(d) }},
	// read by upstream with the block; proxy_pass keeps the connections
	{name: "keepalive", dup: "keepalive", set: func(*compiler, *level, *Directive) {}},
}}

func (c *compiler) upstream(d *Directive) {
	name := d.Args[0]
	if _, dup := c.cfg.HTTP.Upstreams[name]; dup {
		c.fail(d, `duplicate upstream "%s"`, name)
	}
	u := &Upstream{Name: name, File: d.File, Line: d.EndLine,
		KeepaliveRequests: 1000, KeepaliveTimeout: 60e9, KeepaliveTime: 3600e9}
	for _, s := range d.Block {
		if s.Name == "keepalive" {
			n, err := strconv.Atoi(s.Args[0])
			if err != nil || n <= 0 {
				c.fail(s, `invalid value "%s" in "keepalive" directive`, s.Args[0])
			}
			u.Keepalive = n
			continue
		}
		switch s.Name {
		case "keepalive_requests":
			n, err := strconv.Atoi(s.Args[0])
			if err != nil || n < 0 {
				c.fail(s, `invalid number "%s"`, s.Args[0])
			}
			u.KeepaliveRequests = n
			continue
		case "keepalive_timeout", "keepalive_time":
			t, err := ParseTime(s.Args[0])
			if err != nil {
				c.fail(s, `"%s" directive invalid value`, s.Name)
			}
			if s.Name == "keepalive_time" {
				u.KeepaliveTime = t
			} else {
				u.KeepaliveTimeout = t
			}
			continue
		}
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
