package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"ngxsockify/internal/certcheck"
	"ngxsockify/luahooks"
	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/upstream"
)

// sslModule is nginx's ngx_http_ssl_module. At load it builds each
// server's TLS context (certificates, client verification, sessions); per
// connection the context of the server SNI names is used, else the
// address's default server's, as nginx switches SSL_CTX in its servername
// callback. In the post-read phase it refuses what nginx refuses before
// the phases: a Host other than the SNI name on a server that verifies
// clients (421), and a missing or failed client certificate (400).
var sslModule = module{
	name:      "ssl",
	provision: provisionTLS,
	register: func(e *engine) {
		e.add(phasePostRead, func(rq *request) rc { return rq.checkClientTLS() })
	},
}

// serverTLS is a server's runtime part of the ssl module.
type serverTLS struct {
	certs []tls.Certificate // ssl_certificate pairs, loaded
	// dynamic are the pairs whose paths hold variables, loaded per
	// handshake (certificateFor); passwords are ssl_password_file's.
	dynamic   []nginxconf.CertPair
	passwords []string
	// config is the server's TLS context, cloned for each connection that
	// uses it; nil for a server without certificates.
	config   *tls.Config
	verifier *clientVerifier // nil: ssl_verify_client off, or no context
	sessions *sessionStore
	// minVersion and maxVersion are ssl_protocols' range, curves
	// ssl_ecdh_curve's groups (nil: auto); the default server's apply to
	// every connection on its address, as in nginx (the protocol is
	// chosen before SNI switches the context, and the context switched to
	// brings its certificates and ciphers, not its groups: TestSSLCurves).
	minVersion, maxVersion uint16
	curves                 []tls.CurveID
	// staplers: ssl_stapling's OCSP responses of the certificates (by
	// their place in certs) when they are asked of a responder
	staplers map[*tls.Certificate]*stapler
	// ocsp: ssl_ocsp's checks of client certificates (nil: off)
	ocsp *ocspChecker
}

func provisionTLS(_ *Server, st *state) error {
	for _, srv := range st.cfg.HTTP.Servers {
		t := srv.TLS
		if t == nil || len(t.Certificates) == 0 {
			continue
		}
		rt := &st.servers[srv.ID].tls
		rt.passwords = t.Passwords
		var staple []byte
		if t.StaplingFile != "" {
			b, err := os.ReadFile(t.StaplingFile)
			if err != nil {
				return fmt.Errorf(`BIO_new_file("%s") failed (%w)`, t.StaplingFile, err)
			}
			staple = b
		}
		for _, cp := range t.Certificates {
			if cp.Dynamic() {
				rt.dynamic = append(rt.dynamic, cp)
				continue
			}
			c, err := loadKeyPair(cp, t.Passwords)
			if err != nil {
				return err
			}
			c.OCSPStaple = staple // ssl_stapling_file: the same response for each
			rt.certs = append(rt.certs, c)
		}
		if t.Stapling && t.StaplingFile == "" {
			for i := range rt.certs {
				sp, why := newStapler(&rt.certs[i], t.StaplingResponder, t.StaplingTrusted, t.StaplingVerify)
				if sp == nil {
					st.elog.Logf(ngxlog.Warn, 0, "%s", why)
					continue
				}
				if rt.staplers == nil {
					rt.staplers = map[*tls.Certificate]*stapler{}
				}
				rt.staplers[&rt.certs[i]] = sp
			}
		}
		v, err := newClientVerifier(t)
		if err != nil {
			return err
		}
		rt.verifier = v
		if v != nil {
			confID := srv.Conf.ID
			rt.ocsp = newOCSPChecker(t, func() *upstream.Resolver { return st.confs[confID].resolver.r })
		}
		rt.minVersion, rt.maxVersion = nginxconf.ProtocolRange(t.Protocols)
		rt.curves = t.Curves
		rt.sessions = newSessionStore(t)
		cfg := &tls.Config{
			// ssl_ciphers: the context SNI chose decides, as measured
			// on nginx (TestSSLCiphers)
			CipherSuites:           t.CipherSuites,
			NextProtos:             []string{"http/1.1"},
			SessionTicketsDisabled: !rt.sessions.resumes(),
		}
		var key [32]byte
		if _, err := rand.Read(key[:]); err != nil {
			return err
		}
		cfg.SetSessionTicketKeys([][32]byte{key})
		if v != nil {
			// Ask, never demand: nginx completes the handshake and
			// answers the request with 400 (checkClientTLS).
			cfg.ClientAuth = tls.RequestClientCert
			cfg.ClientCAs = v.names
		}
		rt.config = cfg
	}
	return nil
}

// certificate picks one of the server's certificates as OpenSSL does for
// a client that does not ask for server preference: under TLS 1.3 by the
// first of the client's signature algorithms one fits, under TLS 1.2 by
// the first of its cipher suites (ECDSA or RSA); else the first the
// client can use, else the first.
func (rt *serverTLS) certificate(hello *tls.ClientHelloInfo, maxVersion uint16) (*tls.Certificate, error) {
	usable := func(fits func(pub any) bool) *tls.Certificate {
		for i := range rt.certs {
			c := &rt.certs[i]
			if c.Leaf != nil && fits(c.Leaf.PublicKey) && hello.SupportsCertificate(c) == nil {
				return c
			}
		}
		return nil
	}
	tls13 := maxVersion >= tls.VersionTLS13 && slices.Contains(hello.SupportedVersions, tls.VersionTLS13)
	if tls13 {
		for _, scheme := range hello.SignatureSchemes {
			if c := usable(func(pub any) bool { return schemeFits(scheme, pub) }); c != nil {
				return c, nil
			}
		}
	} else {
		for _, id := range hello.CipherSuites {
			name := tls.CipherSuiteName(id)
			if c := usable(func(pub any) bool {
				_, isRSA := pub.(*rsa.PublicKey)
				_, isEC := pub.(*ecdsa.PublicKey)
				return isRSA && strings.Contains(name, "_RSA_") || isEC && strings.Contains(name, "_ECDSA_")
			}); c != nil {
				return c, nil
			}
		}
	}
	if c := usable(func(any) bool { return true }); c != nil {
		return c, nil
	}
	return &rt.certs[0], nil
}

// dynamicCertificate loads the certificates whose paths hold variables,
// evaluated for this handshake (nginx's ngx_http_ssl_certificate: a
// request made of the connection, so $ssl_server_name, $remote_addr,
// $server_addr and geo or map variables of them), and picks one of them and
// the static ones as certificate does.
func (rt *serverTLS) dynamicCertificate(st *state, hello *tls.ClientHelloInfo, maxVersion uint16) (*tls.Certificate, error) {
	ctx := hello.Context()
	if ctx.Value(http.LocalAddrContextKey) == nil {
		ctx = context.WithValue(ctx, http.LocalAddrContextKey, hello.Conn.LocalAddr())
	}
	hr := (&http.Request{Method: http.MethodGet, RequestURI: "/", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, RemoteAddr: hello.Conn.RemoteAddr().String(),
		TLS: &tls.ConnectionState{ServerName: hello.ServerName}}).WithContext(ctx)
	v := vars.NewRequest(st.cfg.HTTP.Vars, hr)
	all := &serverTLS{certs: append([]tls.Certificate(nil), rt.certs...)}
	for _, cp := range rt.dynamic {
		pair := nginxconf.CertPair{Cert: cp.Cert, Key: cp.Key}
		if cp.CertT != nil {
			pair.Cert = st.cfg.ConfName(cp.CertT.Eval(v))
		}
		if cp.KeyT != nil {
			pair.Key = st.cfg.ConfName(cp.KeyT.Eval(v))
		}
		c, err := loadKeyPair(pair, rt.passwords)
		if err != nil {
			return nil, err
		}
		if c.Leaf == nil && len(c.Certificate) > 0 {
			c.Leaf, _ = x509.ParseCertificate(c.Certificate[0])
		}
		all.certs = append(all.certs, c)
	}
	return all.certificate(hello, maxVersion)
}

// schemeFits reports whether a key of pub's type signs with scheme.
func schemeFits(scheme tls.SignatureScheme, pub any) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch scheme {
		case tls.PSSWithSHA256, tls.PSSWithSHA384, tls.PSSWithSHA512, tls.PKCS1WithSHA256, tls.PKCS1WithSHA384, tls.PKCS1WithSHA512, tls.PKCS1WithSHA1:
			return true
		}
	case *ecdsa.PublicKey:
		switch scheme {
		case tls.ECDSAWithP256AndSHA256:
			return k.Curve == elliptic.P256()
		case tls.ECDSAWithP384AndSHA384:
			return k.Curve == elliptic.P384()
		case tls.ECDSAWithP521AndSHA512:
			return k.Curve == elliptic.P521()
		case tls.ECDSAWithSHA1:
			return true
		}
	case ed25519.PublicKey:
		return scheme == tls.Ed25519
	}
	return false
}

// connTLS is what the ssl module keeps of one TLS connection, from the
// handshake to its last request; it belongs to the connection's goroutine.
type connTLS struct {
	vars vars.TLSConn
	// sni is the name the client sent when it named a server of the
	// address ("" otherwise): a Host other than it is misdirected on a
	// server that verifies clients.
	sni string
	// rt is the context of the handshake, verified its client certificate
	// result; verifiedBy, the verifier that gave result.
	rt         *serverTLS
	verifiedBy *clientVerifier
	result     certcheck.Result
	// ocsp is ssl_ocsp's verdict on the certificate the handshake
	// verified: "" good (or not checked), else $ssl_client_verify's
	// FAILED: text
	ocsp string
	// freshID is the session ID of a full handshake, resumedID that of
	// the session a resumption took up.
	freshID, resumedID []byte
}

// ctxTLSConn is the context key of a TLS connection's connTLS (connCtx
// answers it; keepForLog's context holds it).
type ctxTLSConn struct{}

func connTLSOf(ctx context.Context) *connTLS {
	c, _ := ctx.Value(ctxTLSConn{}).(*connTLS)
	return c
}

// configForClient is the listener's GetConfigForClient: the TLS context
// of the server the client's SNI names, else of the address's default
// server (also when the named server has no certificate), with this
// connection's session and verification callbacks.
func (s *Server) configForClient(l *listener, hello *tls.ClientHelloInfo) (*tls.Config, error) {
	st := s.state.Load()
	g := st.groupFor(l.spec, hello.Conn.LocalAddr())
	c := connTLSOf(hello.Context())
	if g == nil || g.def == nil || c == nil {
		return nil, errors.New("no server for this address")
	}
	def := &st.servers[g.def.ID].tls
	rt := def
	hook := g.def.Conf.SSLCertLua // the TLS context's ssl_certificate_by_lua*
	// hookless: the server SNI names has no TLS context (and so no hook):
	// nginx's hook then finds none in that server and fails the handshake.
	hookless := ""
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	chosen := g.def
	if srv, _, ok := g.match(name); ok && name != "" {
		c.sni = name
		chosen = srv
		if own := &st.servers[srv.ID].tls; own.config != nil {
			rt, hook = own, srv.Conf.SSLCertLua
		} else if srv != g.def {
			hookless = srv.PrimaryName()
		}
	}
	if chosen.TLS != nil && chosen.TLS.RejectHandshake {
		rejectHandshake(hello)
		return nil, errors.New("handshake rejected (ssl_reject_handshake)")
	}
	if rt.config == nil {
		return nil, errors.New(`no "ssl_certificate" is defined`)
	}
	c.rt = rt
	c.vars.ClientCiphers = append([]uint16(nil), hello.CipherSuites...)
	c.vars.ClientCurves = append([]tls.CurveID(nil), hello.SupportedCurves...)
	cfg := rt.config.Clone()
	cfg.MinVersion, cfg.MaxVersion = def.minVersion, def.maxVersion
	cfg.CurvePreferences = def.curves
	if l.spec.h2 {
		cfg.NextProtos = h2Protos // ALPN offers h2 on an http2 address (http2.go)
	}
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		pick := func() (*tls.Certificate, error) {
			if len(rt.dynamic) > 0 {
				return rt.dynamicCertificate(st, hello, cfg.MaxVersion)
			}
			return rt.certificate(hello, cfg.MaxVersion)
		}
		if hook != nil && st.lua != nil {
			return st.luaCertificate(hook, hookless, hello, cfg, pick)
		}
		c, err := pick()
		if sp := rt.staplers[c]; sp != nil && err == nil {
			staple := sp.staple(func(msg string) { st.elog.Logf(ngxlog.Err, 0, "%s", msg) })
			if staple != nil {
				cc := *c
				cc.OCSPStaple = staple
				return &cc, nil
			}
		}
		return c, err
	}
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		return rt.sessions.wrap(cfg, cs, ss, c.sessionID(cs.DidResume))
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, id := rt.sessions.unwrap(cfg, identity, cs)
		if ss != nil {
			c.resumedID = id
		}
		return ss, nil
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		// OpenSSL names a new session only when a server-side cache
		// keeps it; a ticket carries the ID to the resumption
		c.vars.SessionID = nil
		if cs.DidResume || rt.sessions.byID != nil {
			c.vars.SessionID = c.sessionID(cs.DidResume)
		}
		if rt.verifier != nil {
			chain := c.verify(rt.verifier, cs.PeerCertificates)
			if rt.ocsp != nil && chain != nil {
				// nginx asks once the handshake is done, before the
				// request is read; the handshake waits here instead
				ctx := hello.Context()
				c.ocsp = rt.ocsp.check(ctx, chain, func(level ngxlog.Level, request bool, msg string) {
					if !request {
						s.connLog(l, ctx, hello.Conn, level, msg+" while SSL handshaking")
					} else if cc := connOf(ctx); cc != nil {
						st.elog.Logf(level, cc.id, "%s", msg)
					}
				})
				c.vars.Verify = c.verifyVar()
			}
		}
		return nil // a failed certificate is refused per request, as in nginx
	}
	return cfg, nil
}

// The phase of ssl_certificate_by_lua* chunks, kept beside its only user
// (luaPhases lists the request phases).
func init() { luaPhases["ssl_certificate"] = luahooks.PhaseSSLCert }

// luaCertificate runs ssl_certificate_by_lua* code for a handshake
// (luahooks/ssl_cert.go): the certificate it sets, else pick's. A
// handshake for server hookless fails instead (see configForClient).
func (st *state) luaCertificate(code *nginxconf.LuaCode, hookless string, hello *tls.ClientHelloInfo, cfg *tls.Config, pick func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	ch := st.chunks[code.ID]
	if ch == nil { // a *_file name with variables: there are none here
		ch, _ = st.lua.CompileFile(luahooks.PhaseSSLCert, code.Path)
	}
	h := &luahooks.SSLHandshake{ServerName: hello.ServerName, ServerAddr: hello.Conn.LocalAddr(), ClientAddr: hello.Conn.RemoteAddr()}
	for _, v := range hello.SupportedVersions {
		if v >= cfg.MinVersion && v <= cfg.MaxVersion && v > h.Version {
			h.Version = v
		}
	}
	client := h.ClientAddr.String()
	if host, _, err := net.SplitHostPort(client); err == nil {
		client = host
	}
	where := fmt.Sprintf(", client: %s, server: %s", client, h.ServerAddr)
	h.Log = func(level ngxlog.Level, msg string) {
		st.elog.Logf(level, 0, "%s, context: ssl_certificate_by_lua*%s", msg, where)
	}
	h.HandshakeLog = func(level ngxlog.Level, msg string) { st.elog.Logf(level, 0, "%s%s", msg, where) }
	if hookless != "" {
		where = " while loading SSL certificate by lua" + where
		st.elog.Logf(ngxlog.Alert, 0, "no ssl_certificate_by_lua* defined in server %s%s", hookless, where)
		st.elog.Logf(ngxlog.Info, 0, "SSL_do_handshake() failed (SSL: error:0A000179:SSL routines::cert cb error)%s", where)
		return nil, luahooks.ErrSSLCertHook
	}
	cert, err := st.lua.RunSSLCert(hello.Context(), ch, h, pick)
	if err != nil || cert != nil {
		return cert, err
	}
	return pick()
}

// sessionID is the connection's $ssl_session_id: the resumed session's,
// or a new random one.
func (c *connTLS) sessionID(resumed bool) []byte {
	if resumed && c.resumedID != nil {
		return c.resumedID
	}
	if c.freshID == nil {
		c.freshID = make([]byte, 32)
		rand.Read(c.freshID)
	}
	return c.freshID
}

// verify checks the client's certificate with v, unless v already did;
// it returns the chain verified when v's check was made now and passed.
func (c *connTLS) verify(v *clientVerifier, sent []*x509.Certificate) []*x509.Certificate {
	if c.verifiedBy == v {
		return nil
	}
	c.verifiedBy = v
	var chain []*x509.Certificate
	c.result, chain = v.verifyChain(sent, time.Now())
	c.vars.Verify = c.verifyVar()
	return chain
}

// verifyVar is $ssl_client_verify: the chain's result, and once that
// passed, ssl_ocsp's.
func (c *connTLS) verifyVar() string {
	if c.result.Code == certcheck.OK && c.ocsp != "" {
		return "FAILED:" + c.ocsp
	}
	return c.result.Variable()
}

// checkClientTLS is what nginx checks of a TLS request before its phases
// (ngx_http_set_virtual_server, ngx_http_process_request), with the
// settings of the server the Host chose.
func (rq *request) checkClientTLS() rc {
	if rq.r.TLS == nil {
		return rcDeclined
	}
	c := connTLSOf(rq.r.Context())
	t := rq.srv.TLS
	if c == nil || t == nil || t.VerifyClient == nginxconf.VerifyOff {
		return rcDeclined
	}
	if host := hostOf(rq.r); c.sni != "" && rq.r.Host != "" && host != c.sni {
		// answered in the SNI server's context, where nginx still is
		if s := rq.sniServer(c.sni); s != nil {
			rq.srv, rq.conf = s, s.Conf
			rq.v.ServerName = s.PrimaryName()
		}
		rq.logf(ngxlog.Info, "client attempted to request the server name different from the one that was negotiated while reading client request headers")
		rq.finalize(http.StatusMisdirectedRequest)
		return rcDone
	}
	// The certificate is checked against the CAs of the server that
	// serves the request when it has a TLS context of its own (nginx would
	// keep the handshake's result: stricter here, where the two differ),
	// else against the handshake's.
	v := c.rt.verifier
	if own := &rq.st.servers[rq.srv.ID].tls; own.config != nil {
		v = own.verifier
	}
	if v == nil {
		// The request's server verifies, the handshake's context did not
		// ask for a certificate.
		v = &clientVerifier{mode: t.VerifyClient}
	}
	c.verify(v, rq.r.TLS.PeerCertificates)
	res := c.result
	if res.Code != certcheck.None && res.Code != certcheck.OK && !(t.VerifyClient == nginxconf.VerifyOptionalNoCA && res.UnknownIssuer()) {
		rq.logf(ngxlog.Info, "client SSL certificate verify error: (%d:%s) while reading client request headers", res.Code, res.Text)
		rq.refuseCertificate(495, "The SSL certificate error")
		return rcDone
	}
	if res.Code == certcheck.None && t.VerifyClient == nginxconf.VerifyOn {
		rq.logf(ngxlog.Info, "client sent no required SSL certificate while reading client request headers")
		rq.refuseCertificate(496, "No required SSL certificate was sent")
		return rcDone
	}
	if res.Code == certcheck.OK && c.ocsp != "" {
		// ssl_ocsp of the handshake's context failed the certificate
		rq.logf(ngxlog.Info, "client SSL certificate verify error: %s while reading client request headers", c.ocsp)
		rq.refuseCertificate(495, "The SSL certificate error")
		return rcDone
	}
	return rcDeclined
}

// sniServer is the server of the request's address that name (the
// connection's SNI) picks, in the request's configuration; nil if none.
func (rq *request) sniServer(name string) *nginxconf.Server {
	cc := connOf(rq.r.Context())
	local, _ := rq.r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if cc == nil || cc.l == nil {
		return nil
	}
	l := cc.l
	if g := rq.st.groupFor(l.spec, local); g != nil {
		if s, _, ok := g.match(name); ok {
			return s
		}
	}
	return nil
}

// refuseCertificate answers nginx's 495 or 496: an error_page for that
// code if there is one, else a 400 page with note, closing the connection.
func (rq *request) refuseCertificate(code int, note string) {
	if _, ok := rq.conf.ErrorPages[code]; ok {
		rq.finalize(code)
		return
	}
	rq.w.Header().Set("Connection", "close")
	rq.send(http.StatusBadRequest, "text/html", special400(errorPage(http.StatusBadRequest, rq.conf.ServerTokens), note))
}

// rejectHandshake sends the client the fatal alert unrecognized_name, as
// nginx does under ssl_reject_handshake. crypto/tls answers an error of
// GetConfigForClient with internal_error, so the alert goes out first,
// as a plaintext record on the raw connection (nothing is encrypted
// before the server's hello); crypto/tls's own alert follows it.
func rejectHandshake(hello *tls.ClientHelloInfo) {
	ver := byte(0x01) // the record version: TLS 1.0, or 1.2 for newer clients
	for _, v := range hello.SupportedVersions {
		if v >= tls.VersionTLS12 {
			ver = 0x03
		}
	}
	const alertFatal, alertUnrecognizedName = 2, 112
	_, _ = hello.Conn.Write([]byte{21, 3, ver, 0, 2, alertFatal, alertUnrecognizedName})
}
