package upstream

import (
	"context"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"ngxsockify/proxy/websockify"
)

// Method is how an upstream picks a server for a request: nginx's
// balancing directives of an upstream{} block.
type Method int

const (
	// RoundRobin is nginx's default: smooth weighted round robin.
	RoundRobin Method = iota
	// IPHash is `ip_hash`: the client's address (Tries.SetClient) picks
	// the server.
	IPHash
	// Hash is `hash KEY`: the key (Tries.SetKey) picks the server.
	Hash
	// ConsistentHash is `hash KEY consistent`: ketama points on a ring.
	ConsistentHash
	// LeastConn is `least_conn`: the server with the fewest connections
	// for its weight, round robin among equals.
	LeastConn
	// Random is `random`: a server drawn by weight.
	Random
	// RandomTwo is `random two [least_conn]`: of two servers drawn, the
	// one with fewer connections for its weight.
	RandomTwo
)

// hashTriesMax is how many servers the hash methods, ip_hash and random
// draw before they fall back to round robin, as nginx's "tries > 20".
const hashTriesMax = 20

// ipHashStart is the value nginx's ip_hash starts from.
const ipHashStart = 89

// pointsPerWeight is how many points on the consistent-hash ring each
// unit of weight gives a server (nginx's 160, as ketama).
const pointsPerWeight = 160

// point is one point of the consistent-hash ring.
type point struct {
	hash   uint32
	server string // Server.Name
}

// balance is the per-request state of the balancing methods (nginx's
// ngx_http_upstream_{hash,ip_hash,random}_peer_data_t).
type balance struct {
	key     string // Hash, ConsistentHash
	client  []byte // IPHash: the address bytes that count
	started bool
	draws   int    // servers drawn by the hash methods and random
	hash    uint64 // IPHash: running hash; Hash: sum of the draws; ConsistentHash: ring index
	rehash  int    // Hash: draws made
	track   bool   // the picked server's conns count this request
	held    *peer  // counted in held.conns until released
}

// SetMethod sets how u picks its servers; RoundRobin is the default.
func (u *Upstream) SetMethod(m Method) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.method = m
	switch m {
	case LeastConn, RandomTwo:
		u.counted = true
	case ConsistentHash:
		u.points = ringPoints(u.primary)
	}
	if m == Random || m == RandomTwo {
		u.ranges = u.ranges[:0]
		w := 0
		for _, p := range u.primary {
			u.ranges = append(u.ranges, w)
			w += p.Weight
		}
	}
}

// Method returns how u picks its servers.
func (u *Upstream) Method() Method { return u.method }

// Counted reports whether the requests to u must track their connections
// (Tries.Track, then Done): a server has max_conns, or the method compares
// connection counts.
func (u *Upstream) Counted() bool { return u.counted }

// SetKey sets the key of the Hash and ConsistentHash methods (the value
// of `hash`'s key for this request). An empty key picks round robin, as
// in nginx.
func (t *Tries) SetKey(key string) { t.key = key }

// SetClient sets the client address IPHash uses: the first three bytes
// of an IPv4 address, all sixteen of an IPv6 one, and three zero bytes
// for anything else (a unix socket client), as nginx takes them.
func (t *Tries) SetClient(ip net.IP) {
	switch {
	case ip.To4() != nil:
		t.client = ip.To4()[:3]
	case len(ip) == net.IPv6len:
		t.client = ip
	default:
		t.client = []byte{0, 0, 0}
	}
}

// Track makes t count the connection it makes in its server's
// connections (least_conn, random two, max_conns) until Done.
func (t *Tries) Track() { t.track = true }

// Done ends t's request: the connection it counted is released. Calling it
// again does nothing.
func (u *Upstream) Done(t *Tries) { u.release(t) }

// release uncounts t's held connection.
func (u *Upstream) release(t *Tries) {
	if t.held == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.releaseLocked(t)
}

// releaseLocked is release with u.mu held.
func (u *Upstream) releaseLocked(t *Tries) {
	if p := t.held; p != nil {
		p.conns--
		t.held = nil
	}
}

// For returns a dialer for one request to u: each Dial balances with t's
// key and counts its connection in t (see Track), as DialNext does.
func (u *Upstream) For(t *Tries) websockify.Dialer { return requestDialer{u, t} }

// requestDialer is one request's dialer of an upstream.
type requestDialer struct {
	u *Upstream
	t *Tries
}

// Dial connects as Upstream.Dial does, with the request's Tries.
func (d requestDialer) Dial(ctx context.Context, timeout time.Duration) (net.Conn, string, error) {
	return d.u.dial(ctx, timeout, d.t)
}

// Addrs is the upstream's Addrs (websockify_allow checks them).
func (d requestDialer) Addrs() []string { return d.u.Addrs() }

// byWeight returns the primary server whose share of the total weight
// holds w (< totalWeight), down ones included, as the hash methods count.
func (u *Upstream) byWeight(w uint64) *peer {
	for _, p := range u.primary {
		if w < uint64(p.Weight) {
			return p
		}
		w -= uint64(p.Weight)
	}
	return u.primary[len(u.primary)-1] // not reached: w < totalWeight
}

// drawn takes p when t may use it; else it counts a draw and reports
// whether round robin must take over.
func (t *Tries) drawn(p *peer, now time.Time) (ok, giveUp bool) {
	if !t.tried.has(p) && p.usable(now) {
		return true, false
	}
	t.draws++
	return false, t.draws > hashTriesMax
}

// pickIPHash is nginx's ngx_http_upstream_get_ip_hash_peer. u.mu is held.
func (u *Upstream) pickIPHash(t *Tries, now time.Time) *peer {
	if !t.started {
		t.started, t.hash = true, ipHashStart
		if t.client == nil {
			t.client = []byte{0, 0, 0}
		}
	}
	if t.draws > hashTriesMax {
		return u.pickRoundRobin(&t.tried, now)
	}
	hash := t.hash
	for {
		for _, b := range t.client {
			hash = (hash*113 + uint64(b)) % 6271
		}
		p := u.byWeight(hash % uint64(u.totalWeight))
		ok, giveUp := t.drawn(p, now)
		if ok {
			t.hash = hash
			p.picked(now)
			return p
		}
		if giveUp {
			return u.pickRoundRobin(&t.tried, now)
		}
	}
}

// pickHash is nginx's ngx_http_upstream_get_hash_peer: each draw adds
// ((crc32([REHASH] KEY) >> 16) & 0x7fff) to the sum, which picks by
// weight (Cache::Memcached's scheme). u.mu is held.
func (u *Upstream) pickHash(t *Tries, now time.Time) *peer {
	if t.draws > hashTriesMax || t.key == "" {
		return u.pickRoundRobin(&t.tried, now)
	}
	var buf [24]byte
	for {
		h := uint32(0)
		if t.rehash > 0 {
			h = crc32.ChecksumIEEE(strconv.AppendInt(buf[:0], int64(t.rehash), 10))
		}
		h = crc32.Update(h, crc32.IEEETable, []byte(t.key))
		t.hash += uint64(h>>16) & 0x7fff
		t.rehash++
		p := u.byWeight(t.hash % uint64(u.totalWeight))
		ok, giveUp := t.drawn(p, now)
		if ok {
			p.picked(now)
			return p
		}
		if giveUp {
			return u.pickRoundRobin(&t.tried, now)
		}
	}
}

// ringPoints builds the consistent-hash ring of nginx's
// ngx_http_upstream_init_chash (Cache::Memcached::Fast's points): weight
// × 160 points per server address, each the crc32 of HOST \0 PORT and the
// previous point's four bytes (little-endian), sorted, duplicates dropped.
func ringPoints(peers []*peer) []point {
	var pts []point
	for _, p := range peers {
		host, port := splitRingName(p.Name)
		base := crc32.ChecksumIEEE([]byte(host + "\x00" + port))
		var prev [4]byte
		for range p.Weight * pointsPerWeight {
			h := crc32.Update(base, crc32.IEEETable, prev[:])
			pts = append(pts, point{hash: h, server: p.Name})
			prev = [4]byte{byte(h), byte(h >> 8), byte(h >> 16), byte(h >> 24)}
		}
	}
	// equal hashes of two servers (rare) keep the first server's; nginx's
	// qsort leaves which one to chance
	slices.SortStableFunc(pts, func(a, b point) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return 0
	})
	return slices.CompactFunc(pts, func(a, b point) bool { return a.hash == b.hash })
}

// splitRingName splits a server as written into the host and port the
// ring hashes: "unix:/p" is all host, "h:80" splits at the last colon
// when only digits follow it, anything else is all host.
func splitRingName(s string) (host, port string) {
	if len(s) >= 5 && strings.EqualFold(s[:5], "unix:") {
		return s[5:], ""
	}
	for j := len(s) - 1; j >= 0; j-- {
		c := s[j]
		if c == ':' {
			return s[:j], s[j+1:]
		}
		if c < '0' || c > '9' {
			break
		}
	}
	return s, ""
}

// pickConsistent is nginx's ngx_http_upstream_get_chash_peer: from the
// first ring point at or after crc32(KEY), the first point whose server
// has a usable address not tried yet; among that server's addresses,
// smooth weighted round robin. u.mu is held.
func (u *Upstream) pickConsistent(t *Tries, now time.Time) *peer {
	if t.draws > hashTriesMax || t.key == "" {
		return u.pickRoundRobin(&t.tried, now)
	}
	if !t.started {
		t.started = true
		h := crc32.ChecksumIEEE([]byte(t.key))
		i, _ := slices.BinarySearchFunc(u.points, h, func(p point, h uint32) int {
			switch {
			case p.hash < h:
				return -1
			case p.hash > h:
				return 1
			}
			return 0
		})
		t.hash = uint64(i)
	}
	for {
		server := u.points[t.hash%uint64(len(u.points))].server
		var best *peer
		total := 0
		for _, p := range u.primary {
			if t.tried.has(p) || !p.usable(now) || p.Name != server {
				continue
			}
			p.current += p.effective
			total += p.effective
			if p.effective < p.Weight {
				p.effective++
			}
			if best == nil || p.current > best.current {
				best = p
			}
		}
		if best != nil {
			best.current -= total
			best.picked(now)
			return best
		}
		t.hash++
		if t.draws++; t.draws > hashTriesMax {
			return u.pickRoundRobin(&t.tried, now)
		}
	}
}

// pickLeastConn is nginx's ngx_http_upstream_get_least_conn_peer over one
// list: the usable server with the fewest connections for its weight;
// among several, smooth weighted round robin from the first. u.mu is held.
func (u *Upstream) pickLeastConn(peers []*peer, tried *triedSet, now time.Time) *peer {
	var best *peer
	first, many := 0, false
	for i, p := range peers {
		if tried.has(p) || !p.usable(now) {
			continue
		}
		switch {
		case best == nil || p.conns*best.Weight < best.conns*p.Weight:
			best, first, many = p, i, false
		case p.conns*best.Weight == best.conns*p.Weight:
			many = true
		}
	}
	if best == nil {
		return nil
	}
	total := 0
	if many {
		for _, p := range peers[first:] {
			if tried.has(p) || !p.usable(now) || p.conns*best.Weight != best.conns*p.Weight {
				continue
			}
			p.current += p.effective
			total += p.effective
			if p.effective < p.Weight {
				p.effective++
			}
			if p.current > best.current {
				best = p
			}
		}
	}
	best.current -= total
	best.picked(now)
	return best
}

// pickRandom is nginx's ngx_http_upstream_get_random_peer and, for
// RandomTwo, get_random2_peer: servers drawn by weight among the
// primaries; of two usable ones, the one with fewer connections for its
// weight (the first on a tie). u.mu is held.
func (u *Upstream) pickRandom(t *Tries, now time.Time) *peer {
	if t.draws > hashTriesMax {
		return u.pickRoundRobin(&t.tried, now)
	}
	var prev *peer
	for {
		x := rand.IntN(u.totalWeight)
		i, found := slices.BinarySearch(u.ranges, x)
		if !found {
			i--
		}
		p := u.primary[i]
		if p != prev {
			if ok, _ := t.drawn(p, now); ok {
				if u.method == Random {
					p.picked(now)
					return p
				}
				if prev != nil {
					if p.conns*prev.Weight > prev.conns*p.Weight {
						p = prev
					}
					p.picked(now)
					return p
				}
				prev = p
				t.draws++ // nginx counts the first of the two as a draw too
			}
		} else {
			t.draws++
		}
		if t.draws > hashTriesMax {
			return u.pickRoundRobin(&t.tried, now)
		}
	}
}
