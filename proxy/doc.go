// Package proxy serves a compiled nginxconf.Config: it opens the listeners
// (plain, TLS with SNI, unix), picks the server by address and Host and the
// location as nginx does, and runs nginx's phases on each request, then
// writes nginx's error pages (error_page applied once), the headers nginx's
// filters add, and one access-log line per request, or per tunnel when it
// ends.
//
// # Phases
//
// The request loop (runPhases in phases.go) walks nginx's phases in order
// and never names a module; each module registers its handlers:
//
//	post-read       ssl (a misdirected Host: 421; client certificates: 400), realip (server settings)
//	server rewrite  rewrite statements of the server block (set, rewrite, if, return, break, set_by_lua)
//	find config     the engine's own: =, ^~, longest prefix, regexes in order, nested, limit_except
//	rewrite         the location's rewrite statements, rewrite_by_lua
//	post-rewrite    the engine's own: rewrite ... last searches again (at most 10 URI changes)
//	pre-access      realip (location settings), limit_req (delays on a timer), limit_conn
//	access          fail-closed directives, allow/deny, auth_basic, access_by_lua
//	post-access     the engine's own: satisfy any's refusal
//	pre-content     try_files
//	content         the location's content handler (an unsupported content
//	                directive: 502, websockify_pass, stub_status,
//	                prometheus_metrics, content_by_lua), else
//	                index, autoindex, static files
//	log             access_log
//
// A phase handler returns rcDeclined (no opinion), rcOK (the phase is over;
// in the access phase, granted), rcDone (the request was answered or
// redirected: stop) or, in the access phase, the status of a refusal. The
// access phase's checker combines them as `satisfy` says: under all the
// first refusal answers; under any the first grant ends the phase and the
// last refusal answers only when nothing granted. Subrequests
// (ngx.location.capture) skip it. Internal redirects (error_page, index,
// try_files) restart at server rewrite and named locations at rewrite, by
// calling runPhases again. Header filters (Server, charset, expires and
// add_header, header_filter_by_lua) form one chain, run when the headers
// go out, whoever writes them; limit_rate's filter paces the body that
// follows.
//
// # Modules
//
// One file per nginx module: core (handler.go), rewrite.go, realip.go,
// access.go, auth_basic.go, ssl.go (with ssl_keys.go, ssl_session.go,
// ssl_verify.go), upstream.go, websockify.go, charset.go,
// headers.go, lua.go, static.go, log.go, limit_req.go and limit_conn.go
// (their zones in limit_zone.go), limit_rate.go and stub_status.go
// (stub_status, with metrics.go's prometheus_metrics), and http2.go
// (HTTP/2 connections: each stream reaches ServeHTTP as an HTTP/1.x
// request does). Each declares a module value
// with two hooks and lists it in modules.go, whose order is the order of
// handlers within a phase and of header filters:
//
//   - register (nginx's postconfiguration) runs once at package
//     initialisation and adds handlers with engine.add(phase, h) and
//     engine.addHeaderFilter(f).
//   - provision runs for every loaded configuration and builds the module's
//     runtime objects (Lua chunks, dialers, resolvers, log files,
//     certificates) into the new state's slices: confs by LocConf.ID,
//     servers by Server.ID, chunks by LuaCode.ID. A module that owns a
//     content directive sets confs[id].content for the levels that have it,
//     unless an earlier module did (nginx's clcf->handler).
//
// Nothing is parsed per request: requests touch only compiled templates and
// regexes and the objects provision built, through one atomic pointer to
// the state. Reload builds a whole new state and swaps it in.
//
// # PROXY protocol
//
// On an address one of whose listens says proxy_protocol (addrGroup), the
// connection layer reads the PROXY protocol header before anything else
// (before TLS on ssl listeners) with package proxyproto, as nginx 1.22
// does, and puts its addresses in the connection's context, where the
// $proxy_protocol_* variables and realip's `real_ip_header proxy_protocol`
// find them; a broken header is logged (Server.connLog) and closes the
// connection.
//
// # Goroutines
//
// The connection layer (proxy/http1, nginx's request reading and header
// filter) runs one goroutine per connection and calls ServeHTTP on it (on
// an HTTP/2 connection, which it hands to http2.go, x/net/http2 runs one
// per stream), or
// Server.reject for a request it refused while reading; a
// request, its phases and everything it owns (its vars.Request, its Lua
// request, subrequests) run on that goroutine. Handlers and provision steps
// start no goroutine. A websockify tunnel is handed to the websockify
// package (ServeAsync): the handler returns once the tunnel runs, and the
// tunnel's event loop (or its two copy goroutines) ends it and runs the
// request's log phase through a callback that first waits for the handler
// to finish; the callback holds the request only when the level logs
// (confRuntime.logs). Reload swaps the state under running requests and
// tunnels, which keep the objects they started with; listeners whose
// address stays are kept open. The replaced state's worker_shutdown_timeout,
// when set, then closes what came under it (retire, as an old nginx
// worker's own timer): connections, and the tunnels that started under it
// (websockify.Options.Generation, Tunnels.Retire: 1001 as on a quit).
// Shutdown closes the listeners, sends close frames (1001) to every
// tunnel through Tunnels and waits for requests until its context ends;
// Close does the same at once. Quit (quit.go) is nginx's graceful quit:
// StopAccepting closes the listeners and waits for the requests under
// way, Tunnels.Drain waits for the tunnels to end, and only what is left
// when its context ends (worker_shutdown_timeout) gets Shutdown's 1001.
// Listen takes sockets inherited from an old binary
// (inherit.go: nginx's NGINX variable) or bound beforehand by
// OpenListeners (so that the process can give root up between binding and
// serving) before it binds new ones; ListenerFDs hands ours to a new
// binary, and Resume serves again on them after StopAccepting.
//
// # Errors
//
// Error-log lines (errorlog.go) follow nginx's shape ("<time> [level]
// pid#pid: *conn message, client: ..., server: ..., request: "...",
// upstream: "...", host: "...""), with nginx's wording for the failures it
// knows.
package proxy
