package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"ngxsockify/internal/certcheck"
	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
)

// proxySSL is a level's TLS client settings for https:// backends, built
// at load: nginx's proxy_ssl_* (no SNI unless proxy_ssl_server_name on; the
// certificate checked only under proxy_ssl_verify on, against
// proxy_ssl_trusted_certificate, at most proxy_ssl_verify_depth
// intermediates long, with proxy_ssl_crl every certificate of the chain
// against its issuer's CRL, names as OpenSSL's X509_check_host checks
// them: subjectAltName DNS names, else the subject's CN).
type proxySSL struct {
	base  *tls.Config
	roots *x509.CertPool
	chain *certcheck.Chain // the depth and CRLs, for the chains roots verify
	// certVar, keyVar and passwords: a client certificate whose paths
	// have variables, loaded for every connection as nginx's
	// ngx_http_upstream_ssl_certificate does; confName resolves them.
	certVar, keyVar *vars.Template
	passwords       []string
	confName        func(string) string
}

// buildProxySSL makes the TLS settings of lc (nil when it proxies to no
// https:// URL it can know of: built anyway, cheap, when proxy_pass is set).
func buildProxySSL(cfg *nginxconf.Config, lc *nginxconf.LocConf) (*proxySSL, error) {
	ps := &proxySSL{base: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10}}
	if lc.ProxySSLCertificateVar != nil || lc.ProxySSLCertificateKeyVar != nil {
		ps.certVar, ps.keyVar = lc.ProxySSLCertificateVar, lc.ProxySSLCertificateKeyVar
		ps.passwords, ps.confName = lc.ProxySSLPasswords, cfg.ConfName
	}
	if lc.ProxySSLSessionReuse {
		ps.base.ClientSessionCache = tls.NewLRUClientSessionCache(64)
	}
	if lc.ProxySSLCertificate != "" && ps.certVar == nil && ps.keyVar == nil {
		cert, err := loadKeyPair(nginxconf.CertPair{Cert: lc.ProxySSLCertificate, Key: lc.ProxySSLCertificateKey},
			lc.ProxySSLPasswords)
		if err != nil {
			return nil, err
		}
		ps.base.Certificates = []tls.Certificate{cert}
	}
	if lc.ProxySSLVerify {
		if lc.ProxySSLTrusted == "" {
			return nil, errors.New(`no proxy_ssl_trusted_certificate for proxy_ssl_verify`)
		}
		data, err := os.ReadFile(lc.ProxySSLTrusted)
		if err != nil {
			return nil, fmt.Errorf(`SSL_CTX_load_verify_locations("%s") failed (%v)`, lc.ProxySSLTrusted, unwrapPathErr(err))
		}
		certs := loadedCerts(data)
		if len(certs) == 0 {
			return nil, fmt.Errorf(`SSL_CTX_load_verify_locations("%s") failed (no certificates)`, lc.ProxySSLTrusted)
		}
		ps.chain = &certcheck.Chain{Depth: lc.ProxySSLVerifyDepth}
		ps.roots, ps.chain.Inter = certcheck.Trust(certs)
		if lc.ProxySSLCRL != "" {
			if ps.chain.CRLs, err = certcheck.LoadCRLs(lc.ProxySSLCRL); err != nil {
				return nil, err
			}
		}
	}
	return ps, nil
}

// certificate is the client certificate of one connection when its paths
// have variables (nil: none, or the constant one in base): an empty
// certificate path sends none, an empty key path is the certificate's.
func (ps *proxySSL) certificate(v *vars.Request) (*tls.Certificate, error) {
	if ps.certVar == nil && ps.keyVar == nil {
		return nil, nil
	}
	cert, key := evalOr(ps.certVar, v), evalOr(ps.keyVar, v)
	if cert == "" {
		return nil, nil
	}
	c, err := loadKeyPair(nginxconf.CertPair{Cert: ps.confName(cert), Key: ps.confName(key)}, ps.passwords)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// evalOr is t's value, "" for none.
func evalOr(t *vars.Template, v *vars.Request) string {
	if t == nil {
		return ""
	}
	return t.Eval(v)
}

// handshake runs the TLS handshake to the backend on c within timeout,
// sending name as SNI when sni is set and checking it when verifying, and
// cert when not nil.
func (ps *proxySSL) handshake(ctx context.Context, c net.Conn, name string, sni bool, timeout time.Duration, cert *tls.Certificate) (net.Conn, error) {
	cfg := ps.base.Clone()
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	if sni && net.ParseIP(name) == nil {
		cfg.ServerName = name
	}
	if ps.roots != nil {
		roots, chain := ps.roots, ps.chain
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return verifyBackend(cs, roots, chain, name) }
	}
	tc := tls.Client(c, cfg)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// errVerify is a backend certificate that failed proxy_ssl_verify: its
// chain (reason, OpenSSL's "code:text"), or its name.
type errVerify struct{ reason, name string }

func (e *errVerify) Error() string {
	if e.reason == "" {
		return `upstream SSL certificate does not match "` + e.name + `" while SSL handshaking to upstream`
	}
	return "upstream SSL certificate verify error: (" + e.reason + ") while SSL handshaking to upstream"
}

// verifyBackend checks the chain against roots, then its length and CRLs
// (chain's depth and crls), and the name as OpenSSL does (CN only without
// DNS names).
func verifyBackend(cs tls.ConnectionState, roots *x509.CertPool, chain *certcheck.Chain, name string) error {
	if len(cs.PeerCertificates) == 0 {
		return &errVerify{reason: "0:ok"} // nginx: no certificate
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range chain.Inter {
		inter.AddCert(c)
	}
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	if err == nil {
		now := time.Now()
		res := certcheck.Result{}
		for i, c := range chains {
			r := chain.Check(c, now)
			if r.Code == certcheck.OK {
				res = r
				break
			}
			if i == 0 {
				res = r
			}
		}
		if res.Code != certcheck.OK {
			return &errVerify{reason: fmt.Sprintf("%d:%s", res.Code, res.Text)}
		}
	}
	if err != nil {
		var ua x509.UnknownAuthorityError
		var inv x509.CertificateInvalidError
		switch {
		case errors.As(err, &ua):
			r := chain.UnknownIssuer(cs.PeerCertificates)
			return &errVerify{reason: fmt.Sprintf("%d:%s", r.Code, r.Text)}
		case errors.As(err, &inv) && inv.Reason == x509.Expired:
			return &errVerify{reason: "10:certificate has expired"}
		}
		return &errVerify{reason: "20:unable to get local issuer certificate"}
	}
	if !hostMatches(leaf, name) {
		return &errVerify{name: name}
	}
	return nil
}

// hostMatches is X509_check_host: the DNS names (one leading "*." label
// wildcard), else the last CN; IP addresses against IP SANs.
func hostMatches(cert *x509.Certificate, name string) bool {
	if ip := net.ParseIP(name); ip != nil {
		for _, a := range cert.IPAddresses {
			if a.Equal(ip) {
				return true
			}
		}
		return false
	}
	names := cert.DNSNames
	if len(names) == 0 && cert.Subject.CommonName != "" {
		names = []string{cert.Subject.CommonName}
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	for _, n := range names {
		n = strings.ToLower(n)
		if n == name {
			return true
		}
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			if i := strings.IndexByte(name, '.'); i > 0 && name[i+1:] == rest {
				return true
			}
		}
	}
	return false
}

// loadedCerts parses the certificates of PEM data, skipping what does not
// parse (as x509.CertPool.AppendCertsFromPEM does).
func loadedCerts(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for len(data) > 0 {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" || len(b.Headers) != 0 {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
	return out
}
