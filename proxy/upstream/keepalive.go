package upstream

import (
	"net"
	"time"
)

// keepaliveIdle bounds how long an idle connection is kept (nginx's
// upstream keepalive_timeout default).
const keepaliveIdle = 60 * time.Second

// idleConn is a connection kept for reuse (`keepalive N`).
type idleConn struct {
	c     net.Conn
	p     *peer
	since time.Time
}

// SetKeepalive sets how many idle connections the group keeps for reuse
// (nginx's `keepalive N`: one cache for the whole group, the least
// recently used dropped first). 0, the default, keeps none.
func (u *Upstream) SetKeepalive(n int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.keepalive = n
}

// takeIdle returns an idle connection to p, or nil; stale ones are closed.
// u.mu is held.
func (u *Upstream) takeIdle(p *peer) net.Conn {
	now := u.now()
	for i := len(u.idle) - 1; i >= 0; i-- {
		ic := u.idle[i]
		if now.Sub(ic.since) > keepaliveIdle {
			ic.c.Close()
			u.idle = append(u.idle[:i], u.idle[i+1:]...)
			continue
		}
		if ic.p == p {
			u.idle = append(u.idle[:i], u.idle[i+1:]...)
			return ic.c
		}
	}
	return nil
}

// Put keeps c, the connection t dialed last, for reuse after a complete
// exchange; it closes it when the group keeps none.
func (u *Upstream) Put(t *Tries, c net.Conn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.keepalive == 0 || t.last == nil {
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	if len(u.idle) >= u.keepalive {
		u.idle[0].c.Close()
		u.idle = u.idle[1:]
	}
	u.idle = append(u.idle, idleConn{c: c, p: t.last, since: u.now()})
}

// Keeps reports whether the group keeps idle connections.
func (u *Upstream) Keeps() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.keepalive > 0
}

// Cached reports whether the last connection DialNext gave came from the
// idle cache (a failure on it before any answer costs no try, as in
// nginx).
func (t *Tries) Cached() bool { return t.cached }

// Stale forgets that t tried the server of its last, cached connection,
// which failed before any answer: the next DialNext may pick it again.
func (t *Tries) Stale() {
	if t.cached && t.last != nil {
		delete(t.tried, t.last)
	}
}
