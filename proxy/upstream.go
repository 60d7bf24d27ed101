package proxy

import (
	"context"
	"fmt"
	"net"
	"time"

	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/upstream"
	"ngxsockify/proxy/websockify"
)

// upstreamModule is nginx's ngx_http_upstream_module and its resolver, for
// what they build at load: a balancer per upstream{} block (host names
// resolved now, every address becoming a server) and the `resolver` of each
// level that sets one (one answer cache per distinct setting).
var upstreamModule = module{
	name:      "upstream",
	provision: provisionUpstreams,
}

// hashKeys holds the key of each upstream{} block balanced by `hash`.
type hashKeys map[*upstream.Upstream]*vars.Template

// resolverConf is a level's runtime part of the upstream module.
type resolverConf struct {
	r *upstream.Resolver // nil: no `resolver` at this level
}

func provisionUpstreams(_ *Server, st *state) error {
	h := st.cfg.HTTP
	st.upstreams = make(map[string]websockify.Dialer, len(h.Upstreams))
	st.hashKeys = hashKeys{}
	for name, u := range h.Upstreams {
		up := upstreamDialer(u)
		st.upstreams[name] = up
		if u.HashKey != nil {
			st.hashKeys[up] = u.HashKey
		}
	}
	shared := map[string]*upstream.Resolver{} // by setting
	for _, lc := range h.Confs {
		if len(lc.Resolver) == 0 {
			continue
		}
		key := fmt.Sprint(lc.Resolver, lc.ResolverTimeout, lc.ResolverValid, lc.ResolverNoIPv6)
		r := shared[key]
		if r == nil {
			var err error
			r, err = upstream.NewResolver(lc.Resolver, upstream.ResolverOptions{
				Timeout: lc.ResolverTimeout, Valid: lc.ResolverValid, NoIPv6: lc.ResolverNoIPv6,
				Log: func(msg string) { st.elog.Logf(ngxlog.Err, 0, "%s", msg) }})
			if err != nil {
				return err
			}
			shared[key] = r
		}
		st.confs[lc.ID].resolver.r = r
	}
	return nil
}

// methods maps the config's balancing directives to the balancers.
var methods = map[nginxconf.Balancer]upstream.Method{
	nginxconf.BalanceRoundRobin:     upstream.RoundRobin,
	nginxconf.BalanceIPHash:         upstream.IPHash,
	nginxconf.BalanceHash:           upstream.Hash,
	nginxconf.BalanceConsistentHash: upstream.ConsistentHash,
	nginxconf.BalanceLeastConn:      upstream.LeastConn,
	nginxconf.BalanceRandom:         upstream.Random,
	nginxconf.BalanceRandomTwo:      upstream.RandomTwo,
}

func upstreamDialer(u *nginxconf.Upstream) *upstream.Upstream {
	servers := make([]upstream.Server, 0, len(u.Servers))
	for _, s := range u.Servers {
		servers = append(servers, upstream.Server{
			Addr: s.Addr, Name: s.Name, Weight: s.Weight, MaxConns: s.MaxConns, MaxFails: s.MaxFails,
			FailTimeout: s.FailTimeout, Backup: s.Backup, Down: s.Down,
		})
	}
	var all []upstream.Server
	for _, s := range servers {
		if rs, err := resolveStatic(s); err == nil {
			all = append(all, rs...)
		} else {
			all = append(all, s)
		}
	}
	up := upstream.New(u.Name, all)
	up.SetMethod(methods[u.Balancer])
	up.SetKeepalive(upstream.Keepalive{Conns: u.Keepalive, Requests: u.KeepaliveRequests,
		Timeout: u.KeepaliveTimeout, Time: u.KeepaliveTime})
	return up
}

// balance prepares t for this request's pass over u, as nginx's
// balancers' init_peer do: the client address (ip_hash, after realip) or
// the evaluated key (hash), and, when u compares or bounds connection
// counts, the release of the request's connection when the request ends
// (for a tunnel, when the tunnel ends).
func (rq *request) balance(u *upstream.Upstream, t *upstream.Tries) {
	switch u.Method() {
	case upstream.IPHash:
		host, _, err := net.SplitHostPort(rq.r.RemoteAddr)
		if err != nil {
			host = rq.r.RemoteAddr
		}
		t.SetClient(net.ParseIP(host)) // nil (a unix socket client): nginx's pseudo address
	case upstream.Hash, upstream.ConsistentHash:
		t.SetKey(rq.st.hashKeys[u].Eval(rq.v))
	}
	if u.Counted() {
		t.Track()
		rq.cleanups = append(rq.cleanups, func() { u.Done(t) })
	}
}

// balanced returns the dialer of this request for d: d itself, or for an
// upstream{} block that balances by the request or counts connections,
// one bound to the request (see balance).
func (rq *request) balanced(d websockify.Dialer) websockify.Dialer {
	u, ok := d.(*upstream.Upstream)
	if ok && rq.st.luaBalanced(u) {
		return refusedDialer{errLuaBalancerTunnel} // lua_balancer.go
	}
	if !ok || u.Method() == upstream.RoundRobin && !u.Counted() {
		return d
	}
	t := new(upstream.Tries)
	rq.balance(u, t)
	return u.For(t)
}

// resolveStatic resolves a host name at load time into one server per address.
func resolveStatic(s upstream.Server) ([]upstream.Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return upstream.ResolveServers(ctx, []upstream.Server{s})
}
