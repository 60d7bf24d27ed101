package upstream

import (
	"context"
	"net"
	"time"
)

// Override chooses the server of one attempt ahead of the upstream's
// method (balancer_by_lua). DialNext calls it before each attempt with
// the connect timeout it was given; it returns the address to dial
// ("ip:port", "[ipv6]:port"), or "" to let the method pick, and the
// connect timeout to use. An error ends the request's attempts: DialNext
// returns it as is.
type Override func(timeout time.Duration) (addr string, connect time.Duration, err error)

// SetOverride makes f choose t's servers (see Override).
func (t *Tries) SetOverride(f Override) { t.override = f }

// AddTries grants t n more attempts (balancer_by_lua's set_more_tries).
func (t *Tries) AddTries(n int) { t.more += n }

// Limit is how many attempts t's request may make, as nginx counts them:
// servers (Upstream.Tries), at most limit when limit is set
// (proxy_next_upstream_tries), plus those AddTries granted.
func (t *Tries) Limit(servers, limit int) int {
	if limit > 0 && limit < servers {
		servers = limit
	}
	return servers + t.more
}

// dialOverride asks t's Override for this attempt's server; done reports
// that it chose one (or failed) and the results are DialNext's.
func (u *Upstream) dialOverride(ctx context.Context, timeout *time.Duration, t *Tries) (c net.Conn, addr string, err error, done bool) {
	addr, *timeout, err = t.override(*timeout)
	if err != nil || addr == "" {
		return nil, "", err, err != nil
	}
	// nginx neither counts failures of such a server nor keeps its
	// connections (t.last nil: Failed and Put do nothing).
	t.last, t.cached = nil, false
	t.start, t.requests = u.now(), 0
	c, err = dialOne(ctx, "tcp", addr, *timeout)
	return c, addr, err, true
}
