// Package proxy serves a compiled nginxconf.Config: it opens the listeners
// (plain, TLS with SNI, unix), picks the server by address and Host and the
// location as nginx does, and runs nginx's phases on each request:
//
//	server rewrite (set, rewrite, if, return, break)
//	find location (=, ^~, longest prefix, regexes in order, nested, limit_except)
//	location rewrite, rewrite_by_lua          (rewrite ... last searches again, at most 10 times)
//	realip, access: allow/deny, auth_basic (satisfy all|any), access_by_lua
//	try_files
//	content: websockify_pass | content_by_lua | static files | 502 for content handlers we lack
//
// then writes nginx's error pages (error_page applied once), the headers
// nginx's filters add (add_header, expires, charset, header_filter_by_lua)
// and one access-log line per request, or per tunnel when it ends.
//
// Nothing is parsed per request: templates, regexes, Lua chunks, upstream
// dialers, certificates and log files are built by New (or Reload) from the
// Config, into a state that requests read through one atomic pointer.
//
// # Goroutines
//
// net/http runs one goroutine per connection and calls ServeHTTP on it; a
// request and everything it owns (its vars.Request, its Lua request) belong
// to that goroutine. A websockify tunnel is handed to the websockify package
// (ServeAsync): the handler returns once the tunnel runs, and the tunnel's
// own two goroutines end it and write its access-log line through a callback
// that first waits for the handler to finish. Reload swaps the state under
// running requests and tunnels, which keep the objects they started with;
// listeners whose address stays are kept open. Shutdown closes the
// listeners, sends close frames (1001) to every tunnel through Tunnels and
// waits for requests until its context ends; Close does the same at once.
//
// # Errors
//
// Error-log lines follow nginx's shape ("<time> [level] pid#pid: *conn
// message, client: ..., server: ..., request: "...", upstream: "...",
// host: "...""), with nginx's wording for the failures it knows.
package proxy
