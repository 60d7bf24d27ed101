// Package netpeek tells whether an idle pooled connection is still usable
// (proxy_pass's upstream keepalive and the Lua cosocket pool), without
// reading from it.
package netpeek
