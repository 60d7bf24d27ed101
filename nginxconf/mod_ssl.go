package nginxconf

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// sslModule is ngx_http_ssl_module. Everything is per server; the http
// level's settings are the servers' defaults.
var sslModule = module{name: "ngx_http_ssl_module", directives: []directive{
	{name: "ssl_certificate", set: setTLS},
	{name: "ssl_certificate_key", set: setTLS},
	{name: "ssl_password_file", dup: "ssl_password_file", set: setTLS},
	{name: "ssl_protocols", set: setTLS},
	{name: "ssl_ciphers", dup: "ssl_ciphers", set: setTLS},
	{name: "ssl_prefer_server_ciphers", set: setTLS},
	{name: "ssl_ecdh_curve", dup: "ssl_ecdh_curve", set: setTLS},
	{name: "ssl", set: setTLS},
	{name: "ssl_verify_client", dup: "ssl_verify_client", set: setTLS},
	{name: "ssl_verify_depth", dup: "ssl_verify_depth", set: setTLS},
	{name: "ssl_client_certificate", dup: "ssl_client_certificate", set: setTLS},
	{name: "ssl_trusted_certificate", dup: "ssl_trusted_certificate", set: setTLS},
	{name: "ssl_crl", dup: "ssl_crl", set: setTLS},
	{name: "ssl_session_cache", set: setTLS},
	{name: "ssl_session_timeout", dup: "ssl_session_timeout", set: setTLS},
	{name: "ssl_session_tickets", set: setTLS},

	{name: "ssl_conf_command", support: Refused, note: "OpenSSL configuration commands"},
	{name: "ssl_reject_handshake", dup: "ssl_reject_handshake", set: setTLS},
	// ssl_ocsp checks client certificates with their OCSP responders
	// (proxy/ssl_ocsp.go)
	{name: "ssl_ocsp", dup: "ssl_ocsp", set: setTLS},
	{name: "ssl_ocsp_responder", dup: "ssl_ocsp_responder", set: setTLS},
	{name: "ssl_ocsp_cache", dup: "ssl_ocsp_cache", set: setTLS},
	// ssl_stapling staples ssl_stapling_file's response, else the OCSP
	// responder's (proxy/ssl_stapling.go)
	{name: "ssl_stapling", dup: "ssl_stapling", set: setTLS},
	{name: "ssl_stapling_file", dup: "ssl_stapling_file", set: setTLS},
	{name: "ssl_stapling_responder", dup: "ssl_stapling_responder", set: setTLS},
	{name: "ssl_stapling_verify", dup: "ssl_stapling_verify", set: setTLS},
	{name: "ssl_early_data", support: Ignored, offDisarms: true},
}}

// tlsSettings collects a level's TLS directives; a server starts from the
// http level's.
type tlsSettings struct {
	certs []string
	keys  []string
	// ownCerts and ownKeys: written at this level, replacing the
	// inherited lists (nginx merges the two arrays separately)
	ownCerts, ownKeys bool
	passwords         []string
	protocols         []string
	ciphers           string
	curves            string
	prefer            bool
	sslOn             bool
	reject            bool   // ssl_reject_handshake on
	stapling          bool   // ssl_stapling on
	staplingFile      string // ssl_stapling_file
	staplingResponder string // ssl_stapling_responder
	staplingVerify    bool   // ssl_stapling_verify on
	ocsp              OCSPMode
	ocspResponder     string // ssl_ocsp_responder
	ocspCache         string // ssl_ocsp_cache's zone name; "": off
	ocspCacheSize     int64

	verify         VerifyClient
	verifyDepth    int
	clientCert     string // ssl_client_certificate, as written
	trustedCert    string
	crl            string
	sessionCache   SessionCache
	sessionTickets bool
	sessionTimeout time.Duration
}

// defaultCiphers is ssl_ciphers' default in nginx 1.22.
const defaultCiphers = "HIGH:!aNULL:!MD5"

// defaultTLS is nginx's defaults for the settings that have one.
func defaultTLS() tlsSettings {
	return tlsSettings{verifyDepth: 1, sessionCache: SessionCacheNone, sessionTickets: true, sessionTimeout: 5 * time.Minute}
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
	case "ssl_password_file":
		t.passwords = c.passwordFile(d, c.confName(d.Args[0]))
	case "ssl_protocols":
		t.protocols = d.Args
	case "ssl_ciphers":
		t.ciphers = d.Args[0]
	case "ssl_ecdh_curve":
		t.curves = d.Args[0]
	case "ssl_prefer_server_ciphers":
		t.prefer = d.Args[0] == "on"
	case "ssl_stapling":
		t.stapling = d.Args[0] == "on"
	case "ssl_stapling_responder":
		t.staplingResponder = d.Args[0]
	case "ssl_stapling_verify":
		t.staplingVerify = d.Args[0] == "on"
	case "ssl_stapling_file":
		t.staplingFile = d.Args[0]
	case "ssl_ocsp":
		m, ok := map[string]OCSPMode{"off": OCSPOff, "on": OCSPOn, "leaf": OCSPLeaf}[d.Args[0]]
		if !ok {
			c.fail(d, `invalid value "%s"`, d.Args[0])
		}
		t.ocsp = m
	case "ssl_ocsp_responder":
		t.ocspResponder = d.Args[0]
	case "ssl_ocsp_cache":
		t.ocspCache, t.ocspCacheSize = c.ocspCache(d)
	case "ssl_reject_handshake":
		t.reject = d.Args[0] == "on"
	case "ssl":
		t.sslOn = d.Args[0] == "on"
		c.warn(d, `the "ssl" directive is deprecated, use the "listen ... ssl" directive instead`)
	case "ssl_verify_client":
		v, ok := map[string]VerifyClient{"off": VerifyOff, "on": VerifyOn, "optional": VerifyOptional, "optional_no_ca": VerifyOptionalNoCA}[d.Args[0]]
		if !ok {
			c.fail(d, `invalid value "%s"`, d.Args[0])
		}
		t.verify = v
	case "ssl_verify_depth":
		n, err := strconv.Atoi(d.Args[0])
		if err != nil || n < 0 || strings.HasPrefix(d.Args[0], "+") {
			c.fail(d, `"ssl_verify_depth" directive invalid number`)
		}
		t.verifyDepth = n
	case "ssl_client_certificate":
		t.clientCert = d.Args[0]
	case "ssl_trusted_certificate":
		t.trustedCert = d.Args[0]
	case "ssl_crl":
		t.crl = d.Args[0]
	case "ssl_session_cache":
		t.sessionCache = c.sessionCache(d)
	case "ssl_session_tickets":
		t.sessionTickets = d.Args[0] == "on"
	case "ssl_session_timeout":
		t.sessionTimeout = c.duration(d, d.Args[0])
	}
}

// passwordFile reads an ssl_password_file when the directive is read, as
// nginx does (a FIFO is read once): one password a line, CR LF or LF,
// empty lines skipped; the keys of the server are tried with each in turn.
func (c *compiler) passwordFile(d *Directive, path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		c.fail(d, "%s", withErrno(`open() "`+path+`" failed`, err))
		return nil
	}
	var pw []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSuffix(line, "\r"); line != "" {
			pw = append(pw, line)
		}
	}
	if len(pw) == 0 {
		c.fail(d, `empty file "%s"`, path)
	}
	return pw
}

// sessionCache parses ssl_session_cache: off | none | builtin[:size] |
// shared:name:size (the size in bytes, at least 8 pages).
func (c *compiler) sessionCache(d *Directive) SessionCache {
	sc := SessionCacheNone
	for _, a := range d.Args {
		switch {
		case a == "off":
			sc = SessionCacheOff
		case a == "none":
			sc = SessionCacheNone
		case a == "builtin":
			sc = SessionCacheOn
		case strings.HasPrefix(a, "builtin:"):
			if n, err := strconv.Atoi(a[len("builtin:"):]); err != nil || n < 0 {
				c.fail(d, `invalid session cache "%s"`, a)
			}
			sc = SessionCacheOn
		case strings.HasPrefix(a, "shared:"):
			name, size, ok := strings.Cut(a[len("shared:"):], ":")
			n, err := ParseSize(size)
			if !ok || name == "" || err != nil || n <= 0 {
				c.fail(d, `invalid session cache "%s"`, a)
			}
			if n < 8*4096 {
				c.fail(d, `session cache "%s" is too small`, a)
			}
			if z, seen := c.sslZones[name]; seen && z.ocsp {
				c.fail(d, `the shared memory zone "%s" is already declared for a different use`, name)
			} else if !seen && n >= 8*4096 {
				if c.sslZones == nil {
					c.sslZones = map[string]sslZone{}
				}
				c.sslZones[name] = sslZone{size: n}
			}
			sc = SessionCacheOn
		default:
			c.fail(d, `invalid session cache "%s"`, a)
		}
	}
	return sc
}

// ocspCache parses ssl_ocsp_cache: off | shared:name:size (at least 8
// pages), the zone's name unique among the shared zones of ssl
// directives.
func (c *compiler) ocspCache(d *Directive) (string, int64) {
	a := d.Args[0]
	if a == "off" {
		return "", 0
	}
	rest, ok := strings.CutPrefix(a, "shared:")
	name, size, ok2 := strings.Cut(rest, ":")
	n, err := ParseSize(size)
	if !ok || !ok2 || name == "" || err != nil || n < 0 {
		c.fail(d, `invalid OCSP cache "%s"`, a)
		return "", 0
	}
	if n < 8*4096 {
		c.fail(d, `OCSP cache "%s" is too small`, a)
		return "", 0
	}
	if c.sslZones == nil {
		c.sslZones = map[string]sslZone{}
	}
	if z, seen := c.sslZones[name]; seen {
		if !z.ocsp {
			c.fail(d, `the shared memory zone "%s" is already declared for a different use`, name)
		} else if z.size != n {
			c.fail(d, `the size %d of shared memory zone "%s" conflicts with already declared size %d`, n, name, z.size)
		}
		return name, n
	}
	c.sslZones[name] = sslZone{ocsp: true, size: n}
	return name, n
}

// sslZone is a shared memory zone an ssl directive declared: an OCSP
// cache, else a session cache.
type sslZone struct {
	ocsp bool
	size int64
}

// ocspResponder checks ssl_ocsp_responder's URL as nginx does when it
// builds the server's context: http:// (any case) and a host, resolved
// now; the error words name the URL without its scheme.
func (c *compiler) ocspResponder(url string) {
	rest := url
	if len(url) <= 7 || !strings.EqualFold(url[:7], "http://") {
		c.failAt("", 0, `invalid URL prefix in OCSP responder "`+url+`" in "ssl_ocsp_responder"`)
		return
	}
	rest = url[7:]
	hostport := rest
	if i := strings.IndexAny(hostport, "/?"); i >= 0 {
		hostport = hostport[:i]
	}
	host, port := hostport, ""
	if strings.HasPrefix(host, "[") {
		i := strings.Index(host, "]")
		if i < 0 {
			c.failAt("", 0, `invalid host in OCSP responder "`+rest+`" in "ssl_ocsp_responder"`)
			return
		}
		host, port = host[1:i], strings.TrimPrefix(host[i+1:], ":")
	} else if i := strings.LastIndex(host, ":"); i >= 0 {
		host, port = host[:i], host[i+1:]
		if port == "" {
			port = "x" // "host:" is an invalid port
		}
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			c.failAt("", 0, `invalid port in OCSP responder "`+rest+`" in "ssl_ocsp_responder"`)
			return
		}
	}
	if host == "" {
		c.failAt("", 0, `no host in OCSP responder "`+rest+`" in "ssl_ocsp_responder"`)
		return
	}
	if net.ParseIP(host) == nil {
		if addrs, err := net.LookupHost(host); err != nil || len(addrs) == 0 {
			c.failAt("", 0, `host not found in OCSP responder "`+rest+`" in "ssl_ocsp_responder"`)
		}
	}
}

// serverTLS compiles a server's TLS settings, as nginx's merge of the ssl
// module's server configuration does: a server with certificates gets its
// own TLS context (the files are checked by the proxy at load); one
// without, the context of its address's default server.
func (c *compiler) serverTLS(d *Directive, s *Server, tls *tlsSettings) {
	t := &TLS{Protocols: tls.protocols, Ciphers: tls.ciphers, PreferServer: tls.prefer, Passwords: tls.passwords,
		VerifyClient: tls.verify, VerifyDepth: tls.verifyDepth, SessionCache: tls.sessionCache,
		SessionTickets: tls.sessionTickets, SessionTimeout: tls.sessionTimeout, RejectHandshake: tls.reject}
	if tls.stapling {
		t.Stapling, t.StaplingResponder, t.StaplingVerify = true, tls.staplingResponder, tls.staplingVerify
		if tls.trustedCert != "" {
			t.StaplingTrusted = c.confName(tls.trustedCert) // where the issuer may be found
		}
		if tls.staplingFile != "" {
			t.StaplingFile = c.confName(tls.staplingFile)
		}
	}
	s.TLS = t
	if len(tls.certs) == 0 {
		if tls.sslOn && !tls.reject {
			c.fail(d, `no "ssl_certificate" is defined for the "ssl" directive`)
		}
		if s.Conf.SSLCertLua != nil { // lua-nginx-module's merge: the hook needs a TLS context
			c.failAt("", 0, "no ssl configured for the server")
		}
		return
	}
	for i, cert := range tls.certs {
		if i >= len(tls.keys) {
			c.fail(d, `no "ssl_certificate_key" is defined for certificate "%s"`, cert)
		}
		cp := CertPair{Cert: c.confName(cert), Key: c.confName(tls.keys[i])}
		if strings.Contains(cert, "$") || strings.Contains(tls.keys[i], "$") {
			cp = CertPair{Cert: cert, Key: tls.keys[i], CertT: c.template(d, cert), KeyT: c.template(d, tls.keys[i])}
		}
		t.Certificates = append(t.Certificates, cp)
	}
	// nginx sets the cipher list when it makes the server's context
	// (ngx_http_ssl_merge_srv_conf), after its certificates, so only a
	// server with certificates checks it; OpenSSL refuses a string that
	// leaves no suite.
	ciphers := tls.ciphers
	if ciphers == "" {
		ciphers = defaultCiphers
	}
	ids, ok := ParseCipherList(ciphers)
	if !ok {
		c.failAt("", 0, `SSL_CTX_set_cipher_list("`+ciphers+`") failed (SSL: error:0A0000B9:SSL routines::no cipher match)`)
	}
	t.CipherSuites = ids
	if tls.curves != "" {
		curves, bad, ok := ParseCurveList(tls.curves)
		if !ok {
			c.failAt("", 0, `SSL_CTX_set1_curves_list("`+tls.curves+`") failed (SSL: error:0A080106:SSL routines::passed invalid argument:group '`+bad+`' cannot be set)`)
		}
		t.Curves = curves
	}
	if tls.verify != VerifyOff {
		if tls.clientCert == "" && tls.verify != VerifyOptionalNoCA {
			c.failAt("", 0, "no ssl_client_certificate for ssl_verify_client")
		}
		t.ClientCertificate = c.confName(tls.clientCert)
		t.TrustedCertificate = c.confName(tls.trustedCert)
	}
	t.CRL = c.confName(tls.crl)
	if tls.ocsp != OCSPOff {
		if tls.verify == VerifyOptionalNoCA {
			c.failAt("", 0, `"ssl_ocsp" is incompatible with "ssl_verify_client optional_no_ca"`)
		}
		if tls.ocspResponder != "" {
			c.ocspResponder(tls.ocspResponder)
		}
		t.OCSP, t.OCSPResponder = tls.ocsp, tls.ocspResponder
		t.OCSPCache, t.OCSPCacheSize = tls.ocspCache, tls.ocspCacheSize
	}
}

// confName resolves the name of a file the ssl module reads as nginx does:
// against the directory of the main file (its conf prefix), whatever -p
// says.
func (c *compiler) confName(name string) string { return c.cfg.ConfName(name) }

// ConfName resolves a path relative to the configuration file's directory
// (nginx's conf prefix), as ssl_certificate's are.
func (c *Config) ConfName(name string) string {
	return fullName(filepath.Dir(c.Main), name)
}

// checkSSLDefaults refuses an address that speaks TLS whose default server
// has no certificate (nginx's ngx_http_ssl_init), naming that server's
// block; other servers there without one use the default server's.
func (c *compiler) checkSSLDefaults() {
	ssl := map[string]bool{}
	var keys []string
	def := map[string]*Server{}
	for _, s := range c.cfg.HTTP.Servers {
		for _, l := range s.Listens {
			key := l.Network + " " + l.Addr
			if _, seen := ssl[key]; !seen {
				keys = append(keys, key)
				ssl[key] = false
			}
			ssl[key] = ssl[key] || l.SSL
			if def[key] == nil || l.DefaultServer {
				def[key] = s
			}
		}
	}
	for _, key := range keys {
		if s := def[key]; ssl[key] && len(s.TLS.Certificates) == 0 && !s.TLS.RejectHandshake {
			c.failAt(s.File, s.Line, `no "ssl_certificate" is defined for the "listen ... ssl" directive`)
			return
		}
	}
}
