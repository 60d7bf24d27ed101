package nginxconf

// otherModules holds the directives of nginx modules ngxsockify does not
// have, where ignoring them would matter. Every name no module declares is
// Ignored: tuning that cannot change who gets in or what they receive
// (performance, buffers, timeouts of things we do not do, logging details,
// compression, caching of files, the settings of content handlers we do
// not implement). ignored_test.go holds the reviewed list of them, one
// reason per family, and fails on an Ignored name that is not on it.
// Directives that only define variables (perl_set, geoip_*, browser) are
// Ignored or fail closed too: their variables stay unknown, so a config
// that uses one fails to load instead of testing an empty value.
//
// What decides access and cannot be enforced fails closed (every request
// under it answers 500); a content handler we do not have answers 502;
// TLS client authentication and scripted handshakes are refused (see
// mod_ssl.go and mod_lua.go).
var otherModules = module{name: "other modules", directives: concat(
	classed(UnsupportedContent, "", "fastcgi_pass", "uwsgi_pass", "scgi_pass", "grpc_pass",
		"memcached_pass", "mp4", "perl", "image_filter",
		"xslt_stylesheet"),
	classed(UnsupportedContent, "", "report_uploads"),
	[]directive{
		// ngxsockify serves HTTP only: the blocks are refused unless the
		// command line's --ignore-stream drops them (ParseOptions.IgnoreStream).
		{name: "stream", support: Refused, note: "ngxsockify serves http only; --ignore-stream drops the block"},
		{name: "mail", support: Refused, note: "ngxsockify serves http only; --ignore-stream drops the block"},
	},
)}

// classed declares names of one support class and note.
func classed(support Support, note string, names ...string) []directive {
	out := make([]directive, len(names))
	for i, n := range names {
		out[i] = directive{name: n, support: support, note: note}
	}
	return out
}
