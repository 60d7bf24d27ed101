package nginxconf

// sslModule is ngx_http_ssl_module. Certificates, protocols and ciphers are
// per server; the http level's are the servers' defaults.
var sslModule = module{name: "ngx_http_ssl_module", directives: []directive{
	{name: "ssl_certificate", set: setTLS},
	{name: "ssl_certificate_key", set: setTLS},
	{name: "ssl_protocols", set: setTLS},
	{name: "ssl_ciphers", dup: "ssl_ciphers", set: setTLS},
	{name: "ssl_prefer_server_ciphers", set: setTLS},
	{name: "ssl", set: setTLS},
	// Accepted without effect: crypto/tls's own session handling applies
	// (sessions resume even with the cache and tickets off; not honoured
	// yet), and HTTP/1.1 is served where http2 is asked for.
	{name: "ssl_session_cache", set: acceptedAsIs},
	{name: "ssl_session_timeout", dup: "ssl_session_timeout", set: acceptedAsIs},
	{name: "ssl_session_tickets", set: acceptedAsIs},
	{name: "http2", set: acceptedAsIs},

	{name: "ssl_verify_client", support: Refused, note: "TLS client certificates are not checked", offDisarms: true},
	{name: "ssl_password_file", support: Refused, note: "encrypted private keys"},
	{name: "ssl_conf_command", support: Refused, note: "OpenSSL configuration commands"},
	{name: "ssl_reject_handshake", support: Refused, note: "rejecting TLS handshakes"},
	{name: "ssl_stapling", support: Ignored, offDisarms: true},
	{name: "ssl_early_data", support: Ignored, offDisarms: true},
}}

// acceptedAsIs is the set function of directives ngxsockify accepts
// without a warning but does not act on; each use says what happens
// instead.
func acceptedAsIs(*compiler, *level, *Directive) {}

// tlsSettings collects a level's TLS directives; a server starts from the
// http level's.
type tlsSettings struct {
	certs []string
	keys  []string
	// ownCerts and ownKeys: written at this level, replacing the
	// inherited lists (nginx merges the two arrays separately)
	ownCerts, ownKeys bool
	protocols         []string
	ciphers           string
	prefer            bool
	sslOn             bool
}

func setTLS(c *compiler, lv *level, d *Directive) {
	if lv.tls == nil {
		return
	}
	t := lv.tls
	switch d.Name {
	case "ssl_certificate":
		if !t.ownCerts {
			t.certs, t.ownCerts = nil, true
		}
		t.certs = append(t.certs, d.Args[0])
	case "ssl_certificate_key":
		if !t.ownKeys {
			t.keys, t.ownKeys = nil, true
		}
		t.keys = append(t.keys, d.Args[0])
	case "ssl_protocols":
		t.protocols = d.Args
	case "ssl_ciphers":
		t.ciphers = d.Args[0]
	case "ssl_prefer_server_ciphers":
		t.prefer = d.Args[0] == "on"
	case "ssl":
		t.sslOn = d.Args[0] == "on"
		c.warn(d, `the "ssl" directive is deprecated, use the "listen ... ssl" directive instead`)
	}
}
