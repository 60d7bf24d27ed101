// Package upstream dials websockify targets: nginx `upstream {}` blocks with
// nginx's smooth weighted round robin and passive health checks, single
// targets written in `websockify_pass`, and targets computed per request.
//
// # Balancing (as ngx_http_upstream_round_robin.c in nginx 1.22)
//
// Each Dial picks the live primary server with the highest current weight
// after adding every server's effective weight to its current weight, then
// subtracts the total from the chosen one (smooth weighted round robin: with
// weights 5,1,1 the order is a a b a c a a). A connect error or timeout marks
// a failure: MaxFails failures within FailTimeout take the server out for
// FailTimeout (MaxFails 0 disables the accounting), and its effective weight
// drops by Weight/MaxFails, recovering by one per pick. The next server is
// tried at once, each server at most once per Dial. Backup servers are used
// only when no primary server is available or all of them failed in this
// Dial. When nothing is left the error is nginx's "no live upstreams" (502)
// or the last connect error (504 for a timeout, else 502). A lone server
// (one primary, no backup) is never taken out, as in nginx.
//
// # Other methods (ngx_http_upstream_{ip_hash,hash,least_conn,random}_module)
//
// SetMethod chooses another way to pick, shared by proxy_pass and
// websockify_pass; the caller gives each request's key to its Tries.
// IPHash hashes the client's address (SetClient: three octets of IPv4, all
// of IPv6) and Hash the key (SetKey: the sum of crc32-derived draws); both
// pick by weight among all primary servers, down ones included, and draw
// again past a server that is down, failed, full or tried, so a down
// server's clients move and no one else's do. ConsistentHash walks a ring
// of weight × 160 points per server name (Server.Name, as the config
// writes it, so the ring matches nginx's for the same config). After 20
// draws, or with an empty key, they pick round robin (backups included).
// LeastConn picks the fewest connections per weight, round robin among
// equals, then the backups; Random draws by weight, RandomTwo the better
// of two draws.
//
// Connections are counted only for Tries that Track: least_conn, random
// two and max_conns (Server.MaxConns) read the counts, and the caller
// releases each with Done when its request or tunnel ends (an idle
// keepalive connection counts for nothing). For gives a request's
// websockify.Dialer. A lone server at max_conns is "no live upstreams".
//
// # Addresses
//
// Server.Addr is "ip:port", "[ipv6]:port", "unix:/path" or "name:port". Names
// must be resolved before New (ResolveServers at load time: nginx resolves
// static names at start and fails with `host not found in upstream`). Values
// computed per request go through Target, which resolves names only through
// a configured Resolver (nginx's `resolver` directive); without one the dial
// fails with `no resolver defined to resolve <name>` (502).
//
// Error texts use nginx's wording: `no host in upstream ""`,
// `invalid port in upstream "x"`, `connect() failed (111: Connection refused)
// while connecting to upstream`, `upstream timed out (110: Connection timed
// out) while connecting to upstream`, `no live upstreams while connecting to
// upstream`.
package upstream
