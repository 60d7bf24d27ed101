package proxy

import (
	"context"
	"fmt"
	"time"

	"ngxsockify/nginxconf"
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

// resolverConf is a level's runtime part of the upstream module.
type resolverConf struct {
	r *upstream.Resolver // nil: no `resolver` at this level
}

func provisionUpstreams(_ *Server, st *state) error {
	h := st.cfg.HTTP
	st.upstreams = make(map[string]websockify.Dialer, len(h.Upstreams))
	for name, u := range h.Upstreams {
		st.upstreams[name] = upstreamDialer(u)
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
				Timeout: lc.ResolverTimeout, Valid: lc.ResolverValid, NoIPv6: lc.ResolverNoIPv6})
			if err != nil {
				return err
			}
			shared[key] = r
		}
		st.confs[lc.ID].resolver.r = r
	}
	return nil
}

func upstreamDialer(u *nginxconf.Upstream) websockify.Dialer {
	servers := make([]upstream.Server, 0, len(u.Servers))
	for _, s := range u.Servers {
		servers = append(servers, upstream.Server{
			Addr: s.Addr, Weight: s.Weight, MaxFails: s.MaxFails,
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
	up.SetKeepalive(upstream.Keepalive{Conns: u.Keepalive, Requests: u.KeepaliveRequests,
		Timeout: u.KeepaliveTimeout, Time: u.KeepaliveTime})
	return up
}

// resolveStatic resolves a host name at load time into one server per address.
func resolveStatic(s upstream.Server) ([]upstream.Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return upstream.ResolveServers(ctx, []upstream.Server{s})
}
