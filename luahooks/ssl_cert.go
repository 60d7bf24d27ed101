package luahooks

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"
	"ngxsockify/internal/certcheck"
	"ngxsockify/ngxlog"
)

// ssl_certificate_by_lua* and the ngx.ssl module (lua-resty-core 0.1.25's
// ngx/ssl.lua, whose FFI calls lua-nginx-module 0.10.23 answers):
//
//	clear_certs(), set_der_cert(der), set_der_priv_key(der),
//	cert_pem_to_der(pem), priv_key_pem_to_der(pem),
//	parse_pem_cert(pem), parse_pem_priv_key(pem), set_cert(chain),
//	set_priv_key(key), server_name(), raw_server_name(), server_port(),
//	raw_server_addr(), raw_client_addr(), get_tls1_version(),
//	get_tls1_version_str(), and the TLS*_VERSION constants.
//
// The chunk runs in the handshake, when the server picks its certificate
// (crypto/tls's GetCertificate; OpenSSL's cert callback in nginx), on the
// connection's goroutine; it may use cosockets, ngx.sleep and timers. What
// it sets replaces the certificate ssl_certificate configured; a chunk
// that sets nothing leaves that choice alone. ngx.exit(ngx.ERROR), an
// error, or certificates cleared and not replaced fail the handshake.
// In the request phases, ngx.ssl reads the request's TLS connection (its
// setters succeed and change nothing, as in nginx after the handshake);
// without one, it answers nil and "no ssl context". Resumed sessions skip the
// chunk, as in nginx (OpenSSL does not call the cert callback for them).

// SSLHandshake is what an ssl_certificate_by_lua* chunk sees of a TLS
// handshake, and what it decides.
type SSLHandshake struct {
	// ServerName is the client's SNI name as sent ("" if none).
	ServerName string
	// Version is the protocol the handshake negotiates (tls.VersionTLS12,
	// ...).
	Version uint16
	// ServerAddr and ClientAddr are the connection's ends.
	ServerAddr, ClientAddr net.Addr
	// Log writes the chunk's error-log lines with the connection's
	// context; nil uses Options.Log. HandshakeLog writes the lines nginx
	// logs about the handshake itself ("SSL_do_handshake() failed ...");
	// nil uses Log.
	Log, HandshakeLog func(level ngxlog.Level, msg string)

	cleared bool
	chain   []*x509.Certificate
	key     crypto.PrivateKey
}

// sslHandshakes maps the Request of a running ssl_certificate_by_lua*
// chunk to its handshake, for ngx.ssl.
var sslHandshakes sync.Map // *Request -> *SSLHandshake

// ErrSSLCertHook is the error of a handshake that an
// ssl_certificate_by_lua* chunk failed.
var ErrSSLCertHook = errors.New("cert cb error")

// RunSSLCert runs chunk c for handshake h. It returns the certificate the
// chunk chose, or nil when the chunk left the configured one (which
// fallback picks, and which fills in a certificate or key the chunk did
// not replace), or an error that fails the handshake (after logging
// lua-nginx-module's lines).
func (rt *Runtime) RunSSLCert(ctx context.Context, c *Chunk, h *SSLHandshake, fallback func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	req := &Request{Log: h.Log}
	sslHandshakes.Store(req, h)
	out := rt.Run(ctx, c, req)
	sslHandshakes.Delete(req)
	log := h.Log
	if log == nil {
		log = rt.opts.Log
	}
	hlog := h.HandshakeLog
	if hlog == nil {
		hlog = log
	}
	logf := func(log func(ngxlog.Level, string), level ngxlog.Level, format string, args ...any) {
		if log != nil {
			log(level, fmt.Sprintf(format, args...))
		}
	}
	if out.Err != nil {
		logf(log, ngxlog.Err, "%v", out.Err)
	}
	rc := 0
	switch {
	case out.Err != nil:
		rc = 500
	case out.Action == Close || out.Action == ErrorPage:
		rc = out.Status
	}
	if rc != 0 {
		logf(log, ngxlog.Debug, "lua_certificate_by_lua: handler return value: %d, cert cb exit code: 0", rc)
		logf(hlog, ngxlog.Info, "SSL_do_handshake() failed (SSL: error:0A000179:SSL routines::cert cb error) while SSL handshaking")
		return nil, ErrSSLCertHook
	}
	if !h.cleared && h.chain == nil && h.key == nil {
		return nil, nil
	}
	cert := &tls.Certificate{PrivateKey: h.key}
	for _, x := range h.chain {
		cert.Certificate = append(cert.Certificate, x.Raw)
	}
	if !h.cleared && (h.chain == nil || h.key == nil) {
		// One half replaced: the other is the configured certificate's.
		def, err := fallback()
		if err != nil {
			return nil, err
		}
		if h.chain == nil {
			cert.Certificate, cert.Leaf = def.Certificate, def.Leaf
		} else {
			cert.PrivateKey = def.PrivateKey
		}
	}
	if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
		// OpenSSL finds no certificate to sign with (TLS 1.3) or for any
		// cipher (TLS 1.2).
		reason := "0A0000C1:SSL routines::no shared cipher"
		if h.Version >= tls.VersionTLS13 {
			reason = "0A000076:SSL routines::no suitable signature algorithm"
		}
		logf(hlog, ngxlog.Info, "SSL_do_handshake() failed (SSL: error:%s) while SSL handshaking", reason)
		return nil, ErrSSLCertHook
	}
	if cert.Leaf == nil {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, err
		}
		cert.Leaf = leaf
	}
	if !keyMatches(cert.Leaf.PublicKey, cert.PrivateKey) {
		logf(hlog, ngxlog.Info, "SSL_do_handshake() failed (SSL: error:05800074:x509 certificate routines::key values mismatch) while SSL handshaking")
		return nil, ErrSSLCertHook
	}
	return cert, nil
}

// keyMatches reports whether key is the private half of pub.
func keyMatches(pub any, key crypto.PrivateKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	s, ok := key.(crypto.Signer)
	if !ok {
		return false
	}
	p, ok := s.Public().(equaler)
	return ok && p.Equal(pub)
}

// verifyPeer verifies a cosocket's peer as OpenSSL does for
// sslhandshake(..., name, true): the chain against roots (its depth and
// CRLs as chain says), then name (none when ""), where X509_check_host
// takes the subject's CN when the certificate has no DNS or IP names
// (crypto/tls ignores the CN).
func verifyPeer(roots *x509.CertPool, chain *certcheck.Chain, name string) func(tls.ConnectionState) error {
	verifyChain := verifyChainOnly(roots, chain)
	return func(cs tls.ConnectionState) error {
		if err := verifyChain(cs); err != nil || name == "" {
			return err
		}
		leaf := cs.PeerCertificates[0]
		err := leaf.VerifyHostname(name)
		if err != nil && len(leaf.DNSNames) == 0 && len(leaf.IPAddresses) == 0 && strings.EqualFold(leaf.Subject.CommonName, name) {
			return nil
		}
		return err
	}
}

// sslCertChain is ngx.ssl.parse_pem_cert's cdata, sslPrivKey
// parse_pem_priv_key's.
type sslCertChain struct{ certs []*x509.Certificate }
type sslPrivKey struct{ key crypto.PrivateKey }

// sslHandshake is the handshake of the running chunk; in a request over
// TLS, a view of the request's connection (what the setters change there
// has no effect: the handshake is over, as in nginx); else nil.
func (st *state) sslHandshake() *SSLHandshake {
	req := st.r.req
	if req == nil {
		return nil
	}
	if h, ok := sslHandshakes.Load(req); ok {
		return h.(*SSLHandshake)
	}
	hr := req.HTTP
	if hr == nil || hr.TLS == nil {
		return nil
	}
	h := &SSLHandshake{ServerName: hr.TLS.ServerName, Version: hr.TLS.Version}
	h.ServerAddr, _ = hr.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if ap, err := netip.ParseAddrPort(hr.RemoteAddr); err == nil {
		h.ClientAddr = net.TCPAddrFromAddrPort(ap)
	}
	return h
}

// parseCertChain reads every certificate of data, PEM (pem true) or
// concatenated DER.
func parseCertChain(data []byte, isPEM bool) ([]*x509.Certificate, error) {
	if !isPEM {
		return x509.ParseCertificates(data)
	}
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" && b.Type != "TRUSTED CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate")
	}
	return certs, nil
}

// parsePrivKey reads a private key in PEM (any of OpenSSL's key blocks) or
// DER (PKCS#1, PKCS#8 or SEC 1).
func parsePrivKey(data []byte, isPEM bool) (crypto.PrivateKey, error) {
	if isPEM {
		for {
			var b *pem.Block
			b, data = pem.Decode(data)
			if b == nil {
				return nil, errors.New("no key")
			}
			if k, err := parsePrivKey(b.Bytes, false); err == nil {
				return k, nil
			}
		}
	}
	if k, err := x509.ParsePKCS8PrivateKey(data); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(data); err == nil {
		return k, nil
	}
	return x509.ParseECPrivateKey(data)
}

// derOfKey is OpenSSL's i2d_PrivateKey: PKCS#1 for RSA, SEC 1 for EC,
// PKCS#8 for others.
func derOfKey(k crypto.PrivateKey) ([]byte, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return x509.MarshalPKCS1PrivateKey(k), nil
	case *ecdsa.PrivateKey:
		return x509.MarshalECPrivateKey(k)
	case ed25519.PrivateKey:
		return x509.MarshalPKCS8PrivateKey(k)
	}
	return nil, errors.New("unsupported key")
}

// tlsVersionNames are get_tls1_version_str's answers.
var tlsVersionNames = map[uint16]string{
	tls.VersionSSL30: "SSLv3", tls.VersionTLS10: "TLSv1", tls.VersionTLS11: "TLSv1.1",
	tls.VersionTLS12: "TLSv1.2", tls.VersionTLS13: "TLSv1.3",
}

// rawAddr is raw_server_addr/raw_client_addr: the address's bytes and
// "inet", "inet6" or "unix".
func rawAddr(a net.Addr) (string, string) {
	switch a := a.(type) {
	case *net.TCPAddr:
		if ip4 := a.IP.To4(); ip4 != nil {
			return string(ip4), "inet"
		}
		return string(a.IP.To16()), "inet6"
	case *net.UnixAddr:
		return a.Name, "unix"
	}
	return "", ""
}

// openNgxSSL is require "ngx.ssl".
func (st *state) openNgxSSL() lua.LValue {
	L := st.L
	chainMeta := L.NewTable()
	chainMeta.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString("cdata<void *>: certificate chain"))
		return 1
	}))
	keyMeta := L.NewTable()
	keyMeta.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString("cdata<void *>: private key"))
		return 1
	}))
	fail := func(L *lua.LState, msg string) int {
		L.Push(lua.LNil)
		L.Push(lua.LString(msg))
		return 2
	}
	// inPhase answers the handshake, or pushes nil, "no ssl context".
	inPhase := func(L *lua.LState) *SSLHandshake {
		if st.inInit || st.r.req == nil {
			L.RaiseError("no request found")
		}
		return st.sslHandshake()
	}
	// A string argument: lua-resty-core passes it on with its length.
	str := func(L *lua.LState, fn string) []byte {
		v := L.Get(1)
		s, ok := v.(lua.LString)
		if !ok {
			L.RaiseError("bad argument #1 to '%s' (string expected, got %s)", fn, typeName(v))
		}
		return []byte(s)
	}
	fns := map[string]lua.LGFunction{
		"clear_certs": func(L *lua.LState) int {
			h := inPhase(L)
			if h == nil {
				return fail(L, "no ssl context")
			}
			h.cleared, h.chain, h.key = true, nil, nil
			L.Push(lua.LTrue)
			return 1
		},
		"set_der_cert": func(L *lua.LState) int {
			der := str(L, "set_der_cert")
			h := inPhase(L)
			if h == nil {
				return fail(L, "no ssl context")
			}
			certs, err := parseCertChain(der, false)
			if err != nil || len(certs) == 0 {
				return fail(L, "d2i_X509_bio() failed")
			}
			h.chain = certs
			L.Push(lua.LTrue)
			return 1
		},
		"set_der_priv_key": func(L *lua.LState) int {
			der := str(L, "set_der_priv_key")
			h := inPhase(L)
			if h == nil {
				return fail(L, "no ssl context")
			}
			k, err := parsePrivKey(der, false)
			if err != nil {
				return fail(L, "d2i_PrivateKey_bio() failed")
			}
			h.key = k
			L.Push(lua.LTrue)
			return 1
		},
		"cert_pem_to_der": func(L *lua.LState) int {
			certs, err := parseCertChain(str(L, "cert_pem_to_der"), true)
			if err != nil {
				return fail(L, "PEM_read_bio_X509_AUX() failed")
			}
			var der []byte
			for _, c := range certs {
				der = append(der, c.Raw...)
			}
			L.Push(lua.LString(der))
			return 1
		},
		"priv_key_pem_to_der": func(L *lua.LState) int {
			k, err := parsePrivKey(str(L, "priv_key_pem_to_der"), true)
			if err != nil {
				return fail(L, "PEM_read_bio_PrivateKey() failed")
			}
			der, err := derOfKey(k)
			if err != nil {
				return fail(L, "i2d_PrivateKey() failed")
			}
			L.Push(lua.LString(der))
			return 1
		},
		"parse_pem_cert": func(L *lua.LState) int {
			certs, err := parseCertChain(str(L, "parse_pem_cert"), true)
			if err != nil {
				return fail(L, "PEM_read_bio_X509_AUX() failed")
			}
			ud := L.NewUserData()
			ud.Value = &sslCertChain{certs}
			L.SetMetatable(ud, chainMeta)
			L.Push(ud)
			return 1
		},
		"parse_pem_priv_key": func(L *lua.LState) int {
			k, err := parsePrivKey(str(L, "parse_pem_priv_key"), true)
			if err != nil {
				return fail(L, "PEM_read_bio_PrivateKey() failed")
			}
			ud := L.NewUserData()
			ud.Value = &sslPrivKey{k}
			L.SetMetatable(ud, keyMeta)
			L.Push(ud)
			return 1
		},
		"set_cert": func(L *lua.LState) int {
			var c *sslCertChain
			if ud, ok := L.Get(1).(*lua.LUserData); ok {
				c, _ = ud.Value.(*sslCertChain)
			}
			if c == nil {
				return fail(L, "bad cert arg")
			}
			h := inPhase(L)
			if h == nil {
				return fail(L, "no ssl context")
			}
			h.chain = c.certs
			L.Push(lua.LTrue)
			return 1
		},
		"set_priv_key": func(L *lua.LState) int {
			var k *sslPrivKey
			if ud, ok := L.Get(1).(*lua.LUserData); ok {
				k, _ = ud.Value.(*sslPrivKey)
			}
			if k == nil {
				return fail(L, "bad priv key arg")
			}
			h := inPhase(L)
			if h == nil {
				return fail(L, "no ssl context")
			}
			h.key = k.key
			L.Push(lua.LTrue)
			return 1
		},
		"server_name": func(L *lua.LState) int {
			h := inPhase(L)
			if h == nil {
				return fail(L, "no ssl context")
			}
			if h.ServerName == "" {
				L.Push(lua.LNil)
				return 1
			}
			L.Push(lua.LString(h.ServerName))
			return 1
		},
		"server_port": func(L *lua.LState) int {
			h := inPhase(L)
			if h == nil {
				return fail(L, "no ssl context")
			}
			if a, ok := h.ServerAddr.(*net.TCPAddr); ok {
				L.Push(lua.LNumber(a.Port))
				return 1
			}
			return fail(L, "unsupported address family")
		},
		"get_tls1_version": func(L *lua.LState) int {
			h := inPhase(L)
			if h == nil {
				return fail(L, "no ssl context")
			}
			L.Push(lua.LNumber(h.Version))
			return 1
		},
		"get_tls1_version_str": func(L *lua.LState) int {
			h := inPhase(L)
			if h == nil {
				return fail(L, "no ssl context")
			}
			if name, ok := tlsVersionNames[h.Version]; ok {
				L.Push(lua.LString(name))
				return 1
			}
			return fail(L, "unknown version")
		},
	}
	fns["raw_server_name"] = fns["server_name"]
	for name, addr := range map[string]func(h *SSLHandshake) net.Addr{
		"raw_server_addr": func(h *SSLHandshake) net.Addr { return h.ServerAddr },
		"raw_client_addr": func(h *SSLHandshake) net.Addr { return h.ClientAddr },
	} {
		fns[name] = func(L *lua.LState) int {
			h := inPhase(L)
			if h == nil {
				return fail(L, "no ssl context")
			}
			b, typ := rawAddr(addr(h))
			if typ == "" {
				return fail(L, "unsupported address family")
			}
			L.Push(lua.LString(b))
			L.Push(lua.LString(typ))
			return 2
		}
	}
	m := st.funcTable(fns)
	for v, name := range map[uint16]string{tls.VersionSSL30: "SSL3_VERSION", tls.VersionTLS10: "TLS1_VERSION",
		tls.VersionTLS11: "TLS1_1_VERSION", tls.VersionTLS12: "TLS1_2_VERSION", tls.VersionTLS13: "TLS1_3_VERSION"} {
		m.RawSetString(name, lua.LNumber(v))
	}
	m.RawSetString("version", lua.LString("0.1.25")) // lua-resty-core's
	return m
}
