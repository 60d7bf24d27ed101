package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"ngxsockify/luahooks"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/upstream"
)

// balancer_by_lua (lua-nginx-module 0.10.23 with lua-resty-core's
// ngx.balancer): an upstream{} block's hook runs before each attempt of a
// proxy_pass to it and may choose the attempt's server
// (set_current_peer), grant more attempts (set_more_tries), change the
// timeouts (set_timeouts) and read how the last attempt ended
// (get_last_failure). A hook that chooses nothing leaves the pick to the
// block's servers. A hook that fails, or exits with anything but ngx.OK,
// ends the request with 500, as nginx does (its get_peer returns
// NGX_ERROR). The hook cannot yield: cosockets, ngx.sleep and output are
// "API disabled in the context of balancer_by_lua*".

func init() { luaPhases["balancer"] = luahooks.PhaseBalancer }

// balancerAbort is the error an attempt ends with when the hook failed:
// the request is answered with status.
type balancerAbort struct{ status int }

func (e *balancerAbort) Error() string { return fmt.Sprintf("balancer_by_lua: %d", e.status) }

// luaBalancer sets the balancer_by_lua hook of u, if it has one, on t,
// the request's attempts through proxy_pass.
func (rq *request) luaBalancer(u *upstream.Upstream, up *proxyUpstream) {
	if rq.st.lua == nil || !rq.st.luaBalanced(u) { // the cheap test first
		return
	}
	code, t := rq.st.cfg.HTTP.Upstreams[u.Name()].BalancerLua, &up.tries
	b := &luahooks.Balancer{MaxTries: rq.conf.ProxyNextUpstreamTries}
	chose := false // the last attempt's server was the hook's
	t.SetOverride(func(timeout time.Duration) (string, time.Duration, error) {
		if chose {
			if n := len(rq.v.UpstreamTries); n > 0 {
				b.LastState, b.LastStatus = "failed", rq.v.UpstreamTries[n-1].Status
				if s := b.LastStatus; s == http.StatusForbidden || s == http.StatusNotFound {
					b.LastState = "next" // nginx's NGX_PEER_NEXT
				}
			}
		}
		b.TotalTries++
		b.Tries = t.Limit(u.Tries(), b.MaxTries) - (b.TotalTries - 1)
		b.Addr, b.MoreTries = "", 0
		ch, status := rq.chunk(code)
		if ch == nil {
			return "", 0, &balancerAbort{status}
		}
		lr := rq.luaRequest()
		log := lr.Log
		lr.Log = func(level ngxlog.Level, msg string) { rq.balancerLog(level, msg, up) }
		lr.Balancer = b
		out := rq.runLua("balancer", ch, lr)
		lr.Balancer, lr.Log = nil, log
		if out.Err != nil {
			rq.balancerLog(ngxlog.Err, out.Err.Error(), up)
		}
		if out.Err != nil || out.Action != luahooks.Continue {
			return "", 0, &balancerAbort{http.StatusInternalServerError}
		}
		if b.SendTimeout > 0 || b.ReadTimeout > 0 {
			lc := *rq.conf // this request's copy: proxyExchange reads them next
			if b.SendTimeout > 0 {
				lc.ProxySendTimeout = b.SendTimeout
			}
			if b.ReadTimeout > 0 {
				lc.ProxyReadTimeout = b.ReadTimeout
			}
			rq.conf = &lc
		}
		if b.ConnectTimeout > 0 {
			timeout = b.ConnectTimeout
		}
		chose = b.Addr != ""
		if chose {
			t.AddTries(b.MoreTries)
		}
		return b.Addr, timeout, nil
	})
}

// balancerLog writes an error-log line of the hook, with nginx's context
// for it ("while connecting to upstream", and the last attempt's server
// after the first).
func (rq *request) balancerLog(level ngxlog.Level, msg string, up *proxyUpstream) {
	if el := rq.errorLog(); el != nil && el.enabled(level) {
		last := ""
		if up.addr != "" {
			last = up.url() + up.uri
		}
		el.Logf(level, rq.conn, "%s while connecting to upstream%s", msg, rq.logWhere().format(last))
	}
}

// luaBalancerModule refuses, at load, a websockify_pass to an upstream{}
// block with balancer_by_lua: tunnels do not run the hook, and picking
// their servers without it would change where clients go.
var luaBalancerModule = module{
	name: "lua_balancer",
	provision: func(_ *Server, st *state) error {
		for _, lc := range st.cfg.HTTP.Confs {
			if ws := lc.Websockify; ws != nil && ws.Upstream != nil && ws.Upstream.BalancerLua != nil {
				return fmt.Errorf("%s of upstream \"%s\" is not run for websockify_pass in %s:%d",
					ws.Upstream.BalancerLua.Directive, ws.Upstream.Name, ws.File, ws.Line)
			}
		}
		return nil
	},
}

// errLuaBalancerTunnel is the dial error of a websockify_pass whose value,
// computed per request, names an upstream{} block with balancer_by_lua.
var errLuaBalancerTunnel = errors.New("balancer_by_lua is not run for websockify_pass")

// luaBalanced reports whether u is an upstream{} block with
// balancer_by_lua.
func (st *state) luaBalanced(u *upstream.Upstream) bool {
	cfg := st.cfg.HTTP.Upstreams[u.Name()]
	return cfg != nil && cfg.BalancerLua != nil
}

// refusedDialer fails every dial with err.
type refusedDialer struct{ err error }

func (d refusedDialer) Dial(context.Context, time.Duration) (net.Conn, string, error) {
	return nil, "", d.err
}
