package upstream

import (
	"net"
	"slices"
	"time"

	"ngxsockify/netpeek"
)

// idleConn is a connection kept for reuse (`keepalive N`).
type idleConn struct {
	c        net.Conn
	peek     *netpeek.Peeker // c's, made when c is first taken from the cache
	data     any             // Tries.SetConnData's
	p        *peer
	since    time.Time // idle since
	start    time.Time // connected at
	requests int       // served
}

// Keepalive is the idle connection cache of a group: nginx's `keepalive
// N` (one cache for the whole group, the least recently used dropped
// first), keepalive_requests, keepalive_timeout and keepalive_time.
type Keepalive struct {
	Conns    int // 0 keeps none
	Requests int
	Timeout  time.Duration // idle
	Time     time.Duration // in all
}

// SetKeepalive sets the group's idle connection cache.
func (u *Upstream) SetKeepalive(k Keepalive) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.keepalive = k
	u.keeps.Store(k.Conns > 0)
}

// takeIdle returns the most recent idle connection to p, if any, out of
// the cache; ones expired by now are closed. u.mu is held. The caller
// peeks at it (checkIdle) once the lock is released.
func (u *Upstream) takeIdle(p *peer, now time.Time) (idleConn, bool) {
	for i := len(u.idle) - 1; i >= 0; i-- {
		ic := u.idle[i]
		if now.Sub(ic.since) > u.keepalive.Timeout {
			ic.c.Close()
			u.idle = append(u.idle[:i], u.idle[i+1:]...)
			continue
		}
		if ic.p == p {
			u.idle = append(u.idle[:i], u.idle[i+1:]...)
			return ic, true
		}
	}
	return idleConn{}, false
}

// checkIdle reports whether ic, taken from the cache, is still open and
// quiet; it closes it if not (the backend closed it, or wrote to it).
func checkIdle(ic *idleConn) bool {
	if ic.peek == nil {
		ic.peek = netpeek.NewPeeker(ic.c)
	}
	ic.c.SetReadDeadline(time.Time{}) // the last user's, which may have passed: the peek would fail
	if !ic.peek.Alive() {
		ic.c.Close()
		return false
	}
	return true
}

// Put keeps c, the connection t dialed last, for reuse after a complete
// exchange; it closes it when the group keeps none. c's deadlines stay as
// they are (no timer work for each request): its next user sets its own. An idle connection
// no longer counts in its server's connections (least_conn, max_conns).
func (u *Upstream) Put(t *Tries, c net.Conn) { u.PutAt(t, c, u.now()) }

// PutAt is Put for a caller that read the clock just now: now is when c
// went idle.
func (u *Upstream) PutAt(t *Tries, c net.Conn, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.releaseLocked(t)
	k := u.keepalive
	if k.Conns == 0 || t.last == nil || t.requests+1 >= k.Requests || now.Sub(t.start) > k.Time {
		c.Close()
		return
	}
	if len(u.idle) >= k.Conns {
		u.idle[0].c.Close()
		u.idle = u.idle[1:]
	}
	ic := idleConn{c: c, p: t.last, since: now, start: t.start, requests: t.requests + 1, data: t.data}
	if t.peekConn == c {
		ic.peek = t.peek
	}
	u.idle = append(u.idle, ic)
}

// Keeps reports whether the group keeps idle connections.
func (u *Upstream) Keeps() bool { return u.keeps.Load() }

// Cached reports whether the last connection DialNext gave came from the
// idle cache (a failure on it before any answer costs no try, as in
// nginx).
func (t *Tries) Cached() bool { return t.cached }

// Stale forgets that t tried the server of its last, cached connection,
// which failed before any answer: the next DialNext may pick it again.
func (t *Tries) Stale() {
	if t.cached && t.last != nil {
		t.tried.remove(t.last)
	}
}

// triedSet is the servers a request has tried: a few, kept in place (no
// map for each request).
type triedSet struct {
	n    int
	few  [4]*peer
	more []*peer
}

func (s *triedSet) has(p *peer) bool {
	for _, q := range s.few[:s.n] {
		if q == p {
			return true
		}
	}
	return slices.Contains(s.more, p)
}

func (s *triedSet) add(p *peer) {
	switch {
	case s.has(p):
	case s.n < len(s.few):
		s.few[s.n] = p
		s.n++
	default:
		s.more = append(s.more, p)
	}
}

func (s *triedSet) remove(p *peer) {
	for i, q := range s.few[:s.n] {
		if q == p {
			s.n--
			s.few[i], s.few[s.n] = s.few[s.n], nil
			return
		}
	}
	if i := slices.Index(s.more, p); i >= 0 {
		s.more = slices.Delete(s.more, i, i+1)
	}
}
