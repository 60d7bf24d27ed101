// Package netpeek looks at a connection's socket without reading from it:
// whether an idle pooled connection is still usable (proxy_pass's
// upstream keepalive and the Lua cosocket pool), and whether a client
// whose request waits has closed its side (limit_conn).
package netpeek
