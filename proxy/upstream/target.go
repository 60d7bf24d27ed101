package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ngxsockify/proxy/websockify"
)

// ParseTarget parses a websockify_pass value: "host:port", "host" (port
// 5900), "[::1]:port", "[::1]", "unix:/path". The host may be a name (see
// Server.NeedsResolve). Errors use nginx's wording.
func ParseTarget(value string) (Server, error) {
	s := Server{Weight: DefaultWeight, MaxFails: DefaultMaxFails, FailTimeout: DefaultFailTimeout}
	if value == "" {
		return s, fmt.Errorf("no host in upstream %q", value)
	}
	if path, ok := strings.CutPrefix(value, "unix:"); ok {
		if path == "" {
			return s, fmt.Errorf("no path in the unix domain socket %q", value)
		}
		s.Addr = value
		return s, nil
	}
	if strings.ContainsAny(value, "/?# \t") {
		return s, fmt.Errorf("invalid host in upstream %q", value)
	}
	host, port := value, ""
	if strings.HasPrefix(value, "[") {
		end := strings.IndexByte(value, ']')
		if end < 0 {
			return s, fmt.Errorf("invalid IPv6 address in upstream %q", value)
		}
		host = value[1:end]
		rest := value[end+1:]
		switch {
		case rest == "":
		case rest[0] == ':':
			port = rest[1:]
			if port == "" {
				return s, fmt.Errorf("invalid port in upstream %q", value)
			}
		default:
			return s, fmt.Errorf("invalid host in upstream %q", value)
		}
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil && !strings.Contains(host, ":") {
			return s, fmt.Errorf("invalid IPv6 address in upstream %q", value)
		}
	} else if i := strings.IndexByte(value, ':'); i >= 0 {
		host, port = value[:i], value[i+1:]
		if strings.IndexByte(port, ':') >= 0 || port == "" {
			return s, fmt.Errorf("invalid port in upstream %q", value)
		}
	}
	if host == "" {
		return s, fmt.Errorf("no host in upstream %q", value)
	}
	p := DefaultPort
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '+' || port[0] == '-' {
			return s, fmt.Errorf("invalid port in upstream %q", value)
		}
		p = n
	}
	s.Addr = net.JoinHostPort(host, strconv.Itoa(p))
	return s, nil
}

// ResolveServers replaces every server whose address is a name with one
// server per resolved address (as nginx does at start), keeping the other
// parameters. A name that does not resolve gives nginx's
// `host not found in upstream "name:port"`.
func ResolveServers(ctx context.Context, servers []Server) ([]Server, error) {
	out := make([]Server, 0, len(servers))
	for _, s := range servers {
		if !s.NeedsResolve() {
			out = append(out, s)
			continue
		}
		host, port, _ := net.SplitHostPort(s.Addr)
		addrs, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil || len(addrs) == 0 {
			return nil, fmt.Errorf("host not found in upstream %q", s.Addr)
		}
		for _, a := range addrs {
			r := s
			r.Addr = net.JoinHostPort(a, port)
			out = append(out, r)
		}
	}
	return out, nil
}

// Resolver is nginx's `resolver` directive: DNS servers used for names in
// values computed per request, asked as nginx's resolver asks them
// (resolveName: no hosts file, no search domains, each name's queries to
// the next server in turn, CNAMEs followed). Answers are kept, by name
// (case ignored), for their TTL or, with `valid=`, for that long; errors
// are not kept.
type Resolver struct {
	servers []string
	next    atomic.Uint32
	timeout time.Duration
	valid   time.Duration
	noIPv6  bool
	log     func(msg string)

	mu    sync.Mutex
	cache map[string]cachedAnswer
}

type cachedAnswer struct {
	res   dnsResult
	until time.Time
}

// maxCachedNames bounds the answer cache; when full it starts over.
const maxCachedNames = 4096

// DefaultResolverTimeout is nginx's resolver_timeout default.
const DefaultResolverTimeout = 30 * time.Second

// ResolverOptions are the resolver directive's parameters and
// resolver_timeout.
type ResolverOptions struct {
	Timeout time.Duration // each lookup; 0 means 30s
	Valid   time.Duration // valid=: how long answers are kept; 0: their TTL
	NoIPv6  bool          // ipv6=off: IPv4 addresses only
	// Log, when set, gets the failures nginx logs at "error" while it
	// resolves: a server's send() or recv() errors (Connection refused).
	Log func(msg string)
}

// NewResolver returns a resolver asking the DNS servers addrs ("ip",
// "ip:port", "[ipv6]:port"; port 53 by default).
func NewResolver(addrs []string, o ResolverOptions) (*Resolver, error) {
	if len(addrs) == 0 {
		return nil, errors.New("no resolver address")
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultResolverTimeout
	}
	res := &Resolver{timeout: o.Timeout, valid: o.Valid, noIPv6: o.NoIPv6, log: o.Log}
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			host, port = strings.Trim(a, "[]"), "53"
		}
		if net.ParseIP(host) == nil {
			return nil, fmt.Errorf("invalid resolver address %q", a)
		}
		res.servers = append(res.servers, net.JoinHostPort(host, port))
	}
	return res, nil
}

// LookupHost resolves host through the configured DNS servers, following
// CNAMEs (at most 50, then "Host not found") within one resolver_timeout.
// The error uses nginx's wording `<host> could not be resolved (...)`.
func (r *Resolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	var cancel context.CancelFunc
	for depth := 0; ; depth++ {
		res, ok := r.cached(name)
		if !ok {
			if cancel == nil {
				ctx, cancel = context.WithTimeout(ctx, r.timeout)
				defer cancel()
			}
			first := int(r.next.Add(1)-1) % len(r.servers)
			var err error
			res, err = resolveName(ctx, r.servers, first, name, r.noIPv6, r.log)
			if err != nil {
				if de := (*dnsError)(nil); !errors.As(err, &de) {
					err = errDNSTimeout
				}
				return nil, fmt.Errorf("%s could not be resolved (%s)", host, err)
			}
			r.keep(name, res)
		}
		if res.cname == "" {
			return res.addrs, nil
		}
		if depth >= dnsMaxRecursion {
			return nil, fmt.Errorf("%s could not be resolved (%s)", host, &dnsError{3})
		}
		name = res.cname
	}
}

// cached is name's kept answer, if it is still valid.
func (r *Resolver) cached(name string) (dnsResult, bool) {
	r.mu.Lock()
	a, ok := r.cache[name]
	r.mu.Unlock()
	if !ok || !time.Now().Before(a.until) {
		return dnsResult{}, false
	}
	return a.res, true
}

// keep keeps res for valid=, else for its TTL in nginx's whole seconds
// (valid through the second the TTL ends in: a TTL of 0 lasts the rest of
// the current second).
func (r *Resolver) keep(name string, res dnsResult) {
	now := time.Now()
	until := now.Add(r.valid)
	if r.valid <= 0 {
		until = now.Truncate(time.Second).Add(time.Duration(res.ttl+1) * time.Second)
		if res.ttl >= 1<<30 {
			until = now.Add(1 << 62)
		}
	}
	r.mu.Lock()
	if r.cache == nil || len(r.cache) >= maxCachedNames {
		r.cache = map[string]cachedAnswer{}
	}
	r.cache[name] = cachedAnswer{res: res, until: until}
	r.mu.Unlock()
}

// Target returns the dialer for a websockify_pass value computed per
// request: an IP address or unix socket is dialled directly; a name is
// resolved through res at dial time, or fails with `no resolver defined to
// resolve <name>` (502) when res is nil. The error is a parse error (nginx
// answers 500). Values naming an upstream{} block are the caller's to look
// up first.
func Target(value string, res *Resolver) (websockify.Dialer, error) {
	s, err := ParseTarget(value)
	if err != nil {
		return nil, err
	}
	if !s.NeedsResolve() {
		return single{s}, nil
	}
	return named{s: s, res: res}, nil
}

// single dials one address, with no failure accounting.
type single struct{ s Server }

func (d single) Dial(ctx context.Context, timeout time.Duration) (net.Conn, string, error) {
	network, address := d.s.Network()
	c, err := dialOne(ctx, network, address, timeout)
	return c, d.s.Addr, err
}

// named resolves a host name per request, then tries its addresses in turn.
type named struct {
	s   Server
	res *Resolver
}

func (d named) Dial(ctx context.Context, timeout time.Duration) (net.Conn, string, error) {
	host, port, _ := net.SplitHostPort(d.s.Addr)
	if d.res == nil {
		return nil, d.s.Addr, fmt.Errorf("no resolver defined to resolve %s", host)
	}
	addrs, err := d.res.LookupHost(ctx, host)
	if err != nil {
		return nil, d.s.Addr, err
	}
	var lastErr error
	var lastAddr string
	for _, a := range addrs {
		lastAddr = net.JoinHostPort(a, port)
		c, err := dialOne(ctx, "tcp", lastAddr, timeout)
		if err == nil {
			return c, lastAddr, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastAddr, lastErr
}
