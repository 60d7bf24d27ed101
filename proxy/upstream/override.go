package upstream

import "time"

// Override chooses the server of one attempt ahead of the upstream's
// method (balancer_by_lua). DialNext calls it before each attempt with
// the connect timeout it was given; it returns the address to dial
// ("ip:port", "[ipv6]:port"), or "" to let the method pick, and the
// connect timeout to use. An error ends the request's attempts: DialNext
// returns it as is. An idle connection to the chosen address is reused
// (Put keeps them as for the method's servers).
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

// maxChosen bounds how many servers an upstream remembers for Overrides;
// past it the memory starts again (idle connections keep their server).
const maxChosen = 4096

// overridden asks t's Override for this attempt's server: nil lets the
// method pick. The servers it chooses are kept by address so that their
// idle connections can be reused (keepalive), as nginx's keepalive module
// does by address; they are not balanced, and their failures take nothing
// out (MaxFails 0), as nginx counts none.
func (u *Upstream) overridden(timeout *time.Duration, t *Tries) (*peer, error) {
	addr, d, err := t.override(*timeout)
	if err != nil {
		return nil, err
	}
	*timeout = d
	if addr == "" {
		return nil, nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	p := u.chosen[addr]
	if p == nil {
		if u.chosen == nil || len(u.chosen) >= maxChosen {
			u.chosen = map[string]*peer{}
		}
		p = &peer{Server: Server{Addr: addr, Name: addr, Weight: 1, FailTimeout: DefaultFailTimeout},
			effective: 1, network: "tcp", address: addr}
		u.chosen[addr] = p
	}
	return p, nil
}
