package nginxconf

// otherModules holds the directives of nginx modules ngxsockify does not
// have, where ignoring them would matter. Every name no module declares is
// Ignored: tuning that cannot change who gets in or what they receive
// (performance, buffers, timeouts of things we do not do, logging details,
// compression, caching of files, the settings of content handlers we do
// not implement). Directives that only define variables
// (geo, split_clients, perl_set, geoip_*, browser) are Ignored or fail
// closed too: their variables stay unknown, so a config that uses one
// fails to load instead of testing an empty value.
//
// What decides access and cannot be enforced fails closed (every request
// under it answers 500); a content handler we do not have answers 502;
// TLS client authentication and scripted handshakes are refused (see
// mod_ssl.go and mod_lua.go).
var otherModules = module{name: "other modules", directives: concat(
	classed(FailClosed, "secure links", "secure_link", "secure_link_md5", "secure_link_secret"),
	classed(FailClosed, "referer checks", "valid_referers"),
	classed(UnsupportedContent, "", "fastcgi_pass", "uwsgi_pass", "scgi_pass", "grpc_pass",
		"memcached_pass", "empty_gif", "flv", "mp4", "perl", "random_index", "image_filter",
		"xslt_stylesheet"),
	[]directive{
		{name: "geo", support: FailClosed, note: "address-based variables", custom: true},
		{name: "split_clients", support: Ignored, custom: true},
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
