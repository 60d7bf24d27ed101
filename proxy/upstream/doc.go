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
