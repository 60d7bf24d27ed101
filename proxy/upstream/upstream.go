package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"ngxsockify/netpeek"
	"ngxsockify/proxy/websockify"
)

// nginx's defaults for `server` parameters.
const (
	DefaultPort        = 5900
	DefaultWeight      = 1
	DefaultMaxFails    = 1
	DefaultFailTimeout = 10 * time.Second
)

// Server is one `server` of an upstream block, or a single target.
type Server struct {
	// Addr is "ip:port", "[ipv6]:port", "unix:/path" or "name:port" (names
	// must be resolved with ResolveServers before New).
	Addr string
	// Weight is the round-robin weight; 0 means 1.
	Weight int
	// MaxFails failures within FailTimeout take the server out for
	// FailTimeout. 0 disables the accounting (nginx's max_fails=0); nginx's
	// default is 1, which ParseTarget fills in.
	MaxFails int
	// FailTimeout; 0 means 10s.
	FailTimeout time.Duration
	// Backup servers are used only when the primary ones are unavailable.
	Backup bool
	// Down servers are never used (by the hash methods: their share of
	// keys goes to the other servers).
	Down bool
	// MaxConns bounds the connections open to the server at once (nginx's
	// max_conns=; 0: no bound). Only the requests whose Tries are tracked
	// (Tries.Track) count.
	MaxConns int
	// Name is the server as the config writes it ("backend:8080",
	// "unix:/run/b.sock"), shared by every address it resolves to: the
	// consistent hash places its points by it. "" means Addr.
	Name string
}

// Network returns "unix" or "tcp" and the address to dial.
func (s Server) Network() (network, address string) {
	if path, ok := strings.CutPrefix(s.Addr, "unix:"); ok {
		return "unix", path
	}
	return "tcp", s.Addr
}

// NeedsResolve reports whether Addr holds a host name rather than an IP
// address or a unix socket.
func (s Server) NeedsResolve() bool {
	network, addr := s.Network()
	if network == "unix" {
		return false
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	return net.ParseIP(host) == nil
}

// peer is a server with its balancing state.
type peer struct {
	Server
	network, address   string
	current, effective int
	fails              int
	conns              int // tracked connections open now
	accessed, checked  time.Time
}

// Upstream is a group of servers; it implements websockify.Dialer and is
// safe for concurrent use.
type Upstream struct {
	name    string
	mu      sync.Mutex
	primary []*peer
	backup  []*peer
	single  bool
	addrs   []string // every server's address, backups included
	now     func() time.Time

	method      Method
	totalWeight int     // of the primary servers, down ones included
	points      []point // ConsistentHash: the ring
	ranges      []int   // Random: each primary server's first share of totalWeight
	counted     bool    // conns matter: a server has MaxConns, or the method reads them

	keepalive Keepalive
	keeps     atomic.Bool // keepalive.Conns > 0, read without the lock
	idle      []idleConn  // oldest first

	chosen map[string]*peer // servers an Override chose, by address (override.go)
}

var _ websockify.Dialer = (*Upstream)(nil)

// New returns the upstream group name (used in error texts, may be empty)
// of servers, whose addresses must be IP addresses or unix sockets.
func New(name string, servers []Server) *Upstream {
	u := &Upstream{name: name, now: time.Now}
	for _, s := range servers {
		if s.Weight <= 0 {
			s.Weight = DefaultWeight
		}
		if s.FailTimeout <= 0 {
			s.FailTimeout = DefaultFailTimeout
		}
		if s.Name == "" {
			s.Name = s.Addr
		}
		p := &peer{Server: s, effective: s.Weight}
		p.network, p.address = s.Network()
		u.addrs = append(u.addrs, s.Addr)
		if s.MaxConns > 0 {
			u.counted = true
		}
		if s.Backup {
			u.backup = append(u.backup, p)
		} else {
			u.primary = append(u.primary, p)
			u.totalWeight += s.Weight
		}
	}
	u.single = len(u.primary) == 1 && len(u.backup) == 0
	return u
}

// Name returns the upstream's name.
func (u *Upstream) Name() string { return u.name }

// Addrs returns every server's address as given to New ("ip:port",
// "[ipv6]:port", "unix:/path"), backups and down servers included: the
// addresses a Dial may try.
func (u *Upstream) Addrs() []string { return u.addrs }

// ErrNoLiveUpstreams is returned when every server is down or failed.
var ErrNoLiveUpstreams = errors.New("no live upstreams while connecting to upstream")

// Dial connects to the next server, trying the others on error or timeout
// (each connect attempt bounded by timeout, all of them by ctx).
func (u *Upstream) Dial(ctx context.Context, timeout time.Duration) (net.Conn, string, error) {
	return u.dial(ctx, timeout, &Tries{})
}

// dial is Dial for one request's t.
func (u *Upstream) dial(ctx context.Context, timeout time.Duration, t *Tries) (net.Conn, string, error) {
	t.fresh = true // a tunnel never takes an idle HTTP connection
	var lastErr error
	var lastAddr string
	for {
		c, addr, err := u.DialNext(ctx, timeout, t)
		if err == nil {
			return c, addr, nil
		}
		if errors.Is(err, ErrNoLiveUpstreams) {
			if lastErr == nil {
				return nil, lastAddr, ErrNoLiveUpstreams
			}
			return nil, lastAddr, lastErr
		}
		lastErr, lastAddr = err, addr
		if ctx.Err() != nil {
			return nil, lastAddr, lastErr
		}
	}
}

// Tries is one request's pass over the servers (nginx's per-request peer
// data): DialNext skips the servers it already tried. Its zero value is
// ready; the hash methods need its key first (SetKey, SetClient).
type Tries struct {
	tried  triedSet
	last   *peer
	cached bool
	fresh  bool // never from the idle cache
	// the caller checks a connection from the idle cache itself, at its
	// first use (CheckIdleLater)
	checkLater bool
	// of the last connection: when it was made, requests it served
	start    time.Time
	requests int
	// the last connection's Peeker when it came from the idle cache: Put
	// keeps it with the connection
	peek     *netpeek.Peeker
	peekConn net.Conn
	// the caller's value for the last connection (ConnData), kept with
	// it in the idle cache
	data any
	// override and more: balancer_by_lua's choice and extra attempts
	// (override.go)
	override Override
	more     int

	balance // the balancing method's state

	// clock is the caller's reading of the clock for its current attempt
	// (SetClock); zero: the upstream reads it
	clock time.Time
}

// SetClock gives t the time its next attempt starts, which the caller
// read just now: DialNext and Retake read the clock no more for it.
func (t *Tries) SetClock(now time.Time) { t.clock = now }

// nowFor is the time of t's attempt: its clock, else the upstream's.
func (u *Upstream) nowFor(t *Tries) time.Time {
	if !t.clock.IsZero() {
		return t.clock
	}
	return u.now()
}

// DialNext makes one connect attempt, to a server t has not tried yet;
// ErrNoLiveUpstreams when none is left.
func (u *Upstream) DialNext(ctx context.Context, timeout time.Duration, t *Tries) (net.Conn, string, error) {
	u.release(t) // nginx frees the peer before it asks for the next one
	var p *peer
	if t.override != nil {
		var err error
		if p, err = u.overridden(&timeout, t); err != nil {
			return nil, "", err
		}
	}
	if p == nil {
		if p = u.pick(t); p == nil {
			return nil, "", ErrNoLiveUpstreams
		}
		t.tried.add(p)
	}
	t.last = p
	return u.connect(ctx, timeout, t)
}

// connect gives t a connection to the server it picked last: one from the
// idle cache, else a new one.
func (u *Upstream) connect(ctx context.Context, timeout time.Duration, t *Tries) (net.Conn, string, error) {
	p := t.last
	t.cached = false
	t.peek, t.peekConn, t.data = nil, nil, nil
	for !t.fresh {
		u.mu.Lock()
		ic, ok := u.takeIdle(p, u.nowFor(t))
		u.mu.Unlock()
		if !ok {
			break
		}
		if t.checkLater || checkIdle(&ic) {
			t.cached, t.start, t.requests = true, ic.start, ic.requests
			t.peek, t.peekConn, t.data = ic.peek, ic.c, ic.data
			return ic.c, p.Addr, nil
		}
	}
	t.start, t.requests = u.nowFor(t), 0
	c, err := dialOne(ctx, p.network, p.address, timeout)
	u.report(p, err == nil)
	return c, p.Addr, err
}

// CheckIdleLater(true) makes DialNext hand out a connection from the idle
// cache without looking at it: the caller checks it at its first use, that
// the backend has neither closed it nor written to it while it was idle,
// and calls Retake for one that fails. (proxy_pass looks after its
// poller forgot the socket's readiness, which a close landing between a
// look here and that use would be lost with.)
func (t *Tries) CheckIdleLater(on bool) { t.checkLater = on }

// Retake replaces the connection from the idle cache DialNext gave last,
// which the caller found closed (or written to) before using it, and
// closed: another one to the same server, from the cache or new, as
// DialNext would have given had it seen that (no server picked, no try
// counted).
func (u *Upstream) Retake(ctx context.Context, timeout time.Duration, t *Tries) (net.Conn, string, error) {
	if t.last == nil {
		return nil, "", ErrNoLiveUpstreams
	}
	return u.connect(ctx, timeout, t)
}

// ConnData returns the value SetConnData gave the last connection
// DialNext returned (while it served earlier requests too, from the idle
// cache), or nil.
func (t *Tries) ConnData() any { return t.data }

// SetConnData keeps v with the last connection DialNext returned: Put
// keeps it in the idle cache with the connection, for the requests it
// serves next (per-connection state its users make once).
func (t *Tries) SetConnData(v any) { t.data = v }

// Tries is how many attempts a request may make, as nginx counts them:
// every server not marked down, backups included.
func (u *Upstream) Tries() int {
	n := 0
	for _, list := range [2][]*peer{u.primary, u.backup} {
		for _, p := range list {
			if !p.Down {
				n++
			}
		}
	}
	return n
}

// Failed counts a failure of the server t dialed last: it connected but
// answered badly (proxy_next_upstream's timeout, invalid_header, ...).
func (u *Upstream) Failed(t *Tries) {
	if t.last != nil {
		u.report(t.last, false)
	}
}

// pick chooses a server t has not tried, by the upstream's method, and
// counts the connection in t when t is tracked.
func (u *Upstream) pick(t *Tries) *peer {
	u.mu.Lock()
	defer u.mu.Unlock()
	var p *peer
	var now time.Time
	if !u.single {
		now = u.now() // a lone server is never taken out: no clock
	}
	switch {
	case u.single:
		p = u.primary[0]
		if p.Down || t.tried.has(p) || p.full() {
			return nil
		}
	case u.method == IPHash:
		p = u.pickIPHash(t, now)
	case u.method == Hash:
		p = u.pickHash(t, now)
	case u.method == ConsistentHash:
		p = u.pickConsistent(t, now)
	case u.method == LeastConn:
		if p = u.pickLeastConn(u.primary, &t.tried, now); p == nil {
			p = u.pickLeastConn(u.backup, &t.tried, now)
		}
	case u.method == Random, u.method == RandomTwo:
		p = u.pickRandom(t, now)
	default:
		p = u.pickRoundRobin(&t.tried, now)
	}
	if p != nil && t.track {
		p.conns++
		t.held = p
	}
	return p
}

// pickRoundRobin is nginx's ngx_http_upstream_get_round_robin_peer:
// primaries first, then backups. u.mu is held.
func (u *Upstream) pickRoundRobin(tried *triedSet, now time.Time) *peer {
	if p := u.pickFrom(u.primary, tried, now); p != nil {
		return p
	}
	return u.pickFrom(u.backup, tried, now)
}

// pickFrom is nginx's ngx_http_upstream_get_peer.
func (u *Upstream) pickFrom(peers []*peer, tried *triedSet, now time.Time) *peer {
	var best *peer
	total := 0
	for _, p := range peers {
		if tried.has(p) || !p.usable(now) {
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
	if best == nil {
		return nil
	}
	best.current -= total
	best.picked(now)
	return best
}

// usable reports whether p may take a connection now: not down, not out
// after failures, not at max_conns.
func (p *peer) usable(now time.Time) bool {
	return !p.Down && !p.failed(now) && !p.full()
}

// failed reports whether p is out: MaxFails failures, the last within
// FailTimeout.
func (p *peer) failed(now time.Time) bool {
	return p.MaxFails > 0 && p.fails >= p.MaxFails && now.Sub(p.checked) <= p.FailTimeout
}

// full reports whether p has MaxConns tracked connections.
func (p *peer) full() bool { return p.MaxConns > 0 && p.conns >= p.MaxConns }

// picked starts a new fail_timeout window for p when the last one is over.
func (p *peer) picked(now time.Time) {
	if now.Sub(p.checked) > p.FailTimeout {
		p.checked = now
	}
}

// report is nginx's ngx_http_upstream_free_round_robin_peer.
func (u *Upstream) report(p *peer, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.single {
		return
	}
	now := u.now()
	if !ok {
		p.fails++
		p.accessed, p.checked = now, now
		if p.MaxFails > 0 {
			p.effective -= p.Weight / p.MaxFails
		}
		if p.effective < 0 {
			p.effective = 0
		}
		return
	}
	if p.accessed.Before(p.checked) {
		p.fails = 0
	}
}

// dialOne makes one connect attempt and words its error as nginx does.
// websockify.Dial connects on the event loop of a tunnel being started,
// else as net.Dialer with TCP keepalive off, as in nginx
// (proxy_socket_keepalive off).
func dialOne(ctx context.Context, network, address string, timeout time.Duration) (net.Conn, error) {
	if la, _ := ctx.Value(localKey{}).(*LocalAddr); la != nil && network != "unix" {
		return dialFrom(ctx, la, network, address, timeout)
	}
	c, err := websockify.Dial(ctx, network, address, timeout)
	if err != nil {
		return nil, &DialError{Addr: address, Err: err}
	}
	return c, nil
}

// localKey is the context key of the address connections are bound to
// before they connect (proxy_bind).
type localKey struct{}

// LocalAddr is proxy_bind's address: Addr (port 0: any port), written as
// Name.
type LocalAddr struct {
	Addr *net.TCPAddr
	Name string
}

// WithLocalAddr is ctx under which every connect attempt first binds its
// socket to la.
func WithLocalAddr(ctx context.Context, la *LocalAddr) context.Context {
	return context.WithValue(ctx, localKey{}, la)
}

// dialFrom is dialOne from the local address la. A failed bind() is a
// *BindError: nginx gives up the request then (500), it tries no other
// server.
func dialFrom(ctx context.Context, la *LocalAddr, network, address string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: -1, LocalAddr: la.Addr}
	c, err := d.DialContext(ctx, network, address)
	if se := (*os.SyscallError)(nil); errors.As(err, &se) && se.Syscall == "bind" {
		return nil, &BindError{Local: la.Name, Err: se.Err}
	}
	if err != nil {
		return nil, &DialError{Addr: address, Err: err}
	}
	return c, nil
}

// BindError is a failed bind() to proxy_bind's address; Error() is
// nginx's wording, "bind(127.0.0.2:80) failed (98: Address already in
// use)", with the address as written.
type BindError struct {
	Local string
	Err   error
}

func (e *BindError) Error() string {
	return "bind(" + e.Local + ") failed (" + (&DialError{Err: e.Err}).Reason() + ")"
}

func (e *BindError) Unwrap() error { return e.Err }

// DialError is a failed connect attempt; Error() uses nginx's wording.
type DialError struct {
	Addr string
	Err  error
}

// Timeout reports whether the attempt timed out.
func (e *DialError) Timeout() bool {
	var ne net.Error
	return errors.Is(e.Err, os.ErrDeadlineExceeded) || errors.Is(e.Err, context.DeadlineExceeded) ||
		(errors.As(e.Err, &ne) && ne.Timeout())
}

// Error is nginx's error-log text, e.g. `connect() failed (111: Connection
// refused) while connecting to upstream`; print it as is (the caller adds
// client, server, request and upstream).
func (e *DialError) Error() string {
	if e.Timeout() {
		return "upstream timed out (" + e.Reason() + ") while connecting to upstream"
	}
	return "connect() failed (" + e.Reason() + ") while connecting to upstream"
}

// Reason is the errno part of the message, as nginx prints it:
// "111: Connection refused", "110: Connection timed out".
func (e *DialError) Reason() string {
	if e.Timeout() {
		return "110: Connection timed out"
	}
	var errno syscall.Errno
	if errors.As(e.Err, &errno) {
		msg := errno.Error()
		if msg != "" {
			msg = strings.ToUpper(msg[:1]) + msg[1:]
		}
		return fmt.Sprintf("%d: %s", int(errno), msg)
	}
	return e.Err.Error()
}

func (e *DialError) Unwrap() error { return e.Err }
