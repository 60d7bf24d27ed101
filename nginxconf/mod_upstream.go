package nginxconf

import (
	"fmt"
	"slices"
	"strings"
)

// upstreamModule is ngx_http_upstream_module and the balancing modules
// (ip_hash, hash, least_conn, random, keepalive): `upstream name { server
// ...; }` blocks, shared by every target that names them. The block's own
// directives are read by upstream, in order, not through the registry.
var upstreamModule = module{name: "ngx_http_upstream_module", directives: []directive{
	{name: "upstream", opens: ctxHTTPUps, set: func(c *compiler, _ *level, d *Directive) { c.upstream(d) }},
	// read by upstream with the block; proxy_pass keeps the connections
	{name: "keepalive", dup: "keepalive", set: readByUpstream},
	{name: "ip_hash", set: readByUpstream},
	{name: "hash", set: readByUpstream},
	{name: "least_conn", set: readByUpstream},
	{name: "random", set: readByUpstream},
}}

// readByUpstream is the set function of the directives upstream reads.
func readByUpstream(*compiler, *level, *Directive) {}

// Balancer is an upstream's balancing method: the directive that sets it.
type Balancer int

const (
	BalanceRoundRobin     Balancer = iota // no directive
	BalanceIPHash                         // ip_hash
	BalanceHash                           // hash KEY
	BalanceConsistentHash                 // hash KEY consistent
	BalanceLeastConn                      // least_conn
	BalanceRandom                         // random
	BalanceRandomTwo                      // random two [least_conn]
)

func (c *compiler) upstream(d *Directive) {
	name := d.Args[0]
	if _, dup := c.cfg.HTTP.Upstreams[name]; dup {
		c.fail(d, `duplicate upstream "%s"`, name)
	}
	u := &Upstream{Name: name, File: d.File, Line: d.EndLine,
		KeepaliveRequests: 1000, KeepaliveTimeout: 60e9, KeepaliveTime: 3600e9}
	// methodSet: a balancing method or keepalive took nginx's
	// peer.init_upstream; backupOK: the method takes backup servers
	// (round robin and least_conn; the others reset nginx's flags).
	methodSet, backupOK := false, true
	for _, s := range d.Block {
		switch s.Name {
		case "keepalive":
			n, ok := atoi(s.Args[0])
			if !ok || n == 0 {
				c.fail(s, `invalid value "%s" in "keepalive" directive`, s.Args[0])
			}
			u.Keepalive, methodSet = n, true
		case "keepalive_requests":
			n, ok := atoi(s.Args[0])
			if !ok {
				c.fail(s, `invalid number "%s"`, s.Args[0])
			}
			u.KeepaliveRequests = n
		case "keepalive_timeout":
			u.KeepaliveTimeout = c.duration(s, s.Args[0])
		case "keepalive_time":
			u.KeepaliveTime = c.duration(s, s.Args[0])
		case "ip_hash", "hash", "least_conn", "random":
			c.redefineMethod(u, s, methodSet)
			u.Balancer = c.balancer(u, s)
			methodSet, backupOK = true, u.Balancer == BalanceLeastConn
		case "balancer_by_lua_block", "balancer_by_lua_file":
			// a balancing method too: round robin when the hook picks no server
			c.redefineMethod(u, s, methodSet)
			c.balancerLua(u, s)
			methodSet, backupOK = true, false
		case "server":
			u.Servers = append(u.Servers, c.upstreamServer(s, backupOK))
		}
	}
	if len(u.Servers) == 0 {
		c.fail(d, `no servers are inside upstream`)
	}
	if !slices.ContainsFunc(u.Servers, func(s UpstreamServer) bool { return !s.Backup }) {
		// nginx finds this when it builds the balancers, after parsing
		c.failAt(u.File, u.Line, fmt.Sprintf(`no servers in upstream "%s"`, name))
	}
	c.cfg.HTTP.Upstreams[name] = u
}

// redefineMethod clears u's balancing method for the one d sets; nginx
// warns when one was set (keepalive's cache goes too).
func (c *compiler) redefineMethod(u *Upstream, d *Directive, methodSet bool) {
	if methodSet {
		c.warn(d, "load balancing method redefined")
	}
	u.Keepalive, u.Balancer, u.HashKey, u.BalancerLua = 0, BalanceRoundRobin, nil, nil
}

// balancer reads a balancing directive of u: ip_hash, hash KEY
// [consistent], least_conn, random [two [least_conn]].
func (c *compiler) balancer(u *Upstream, d *Directive) Balancer {
	switch d.Name {
	case "ip_hash":
		return BalanceIPHash
	case "least_conn":
		return BalanceLeastConn
	case "hash":
		u.HashKey = c.template(d, d.Args[0])
		if len(d.Args) == 1 {
			return BalanceHash
		}
		if d.Args[1] != "consistent" {
			c.fail(d, `invalid parameter "%s"`, d.Args[1])
		}
		return BalanceConsistentHash
	}
	// random
	if len(d.Args) == 0 {
		return BalanceRandom
	}
	if d.Args[0] != "two" {
		c.fail(d, `invalid parameter "%s"`, d.Args[0])
	}
	if len(d.Args) == 2 && d.Args[1] != "least_conn" {
		c.fail(d, `invalid parameter "%s"`, d.Args[1])
	}
	return BalanceRandomTwo
}

// upstreamServer reads `server ADDRESS [weight=N] [max_conns=N]
// [max_fails=N] [fail_timeout=T] [backup] [down]`, with nginx's errors;
// backup only where the balancing method takes it.
func (c *compiler) upstreamServer(s *Directive, backupOK bool) UpstreamServer {
	us := UpstreamServer{Addr: s.Args[0], Name: s.Args[0], Weight: 1, MaxFails: 1, FailTimeout: 10e9}
	if !strings.HasPrefix(us.Addr, "unix:") {
		us.Addr = defaultPort(us.Addr, "80")
	}
	for _, a := range s.Args[1:] {
		k, v, hasValue := strings.Cut(a, "=")
		ok := true
		switch {
		case k == "weight" && hasValue:
			us.Weight, ok = atoi(v)
			ok = ok && us.Weight > 0
		case k == "max_conns" && hasValue:
			us.MaxConns, ok = atoi(v)
		case k == "max_fails" && hasValue:
			us.MaxFails, ok = atoi(v)
		case k == "fail_timeout" && hasValue:
			t, err := ParseTime(v)
			us.FailTimeout, ok = t, err == nil
		case a == "backup":
			if !backupOK {
				c.fail(s, `balancing method does not support parameter "%s"`, a)
			}
			us.Backup = true
		case a == "down":
			us.Down = true
		default:
			ok = false
		}
		if !ok {
			c.fail(s, `invalid parameter "%s"`, a)
		}
	}
	return us
}
