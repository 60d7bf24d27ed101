package luahooks

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"ngxsockify/internal/certcheck"
)

// verifyPeer takes the CN when the certificate names no hosts, as
// OpenSSL's X509_check_host does (lua-nginx-module's t/cert/test.crt is
// such a certificate).
func TestVerifyPeerCommonName(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	self := func(cn string, dns ...string) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	for _, tc := range []struct {
		cert     *x509.Certificate
		name     string
		mismatch bool
	}{
		{self("test.com"), "test.com", false},
		{self("test.com"), "TEST.com", false},
		{self("test.com"), "other.com", true},
		{self("test.com", "a.test"), "test.com", true}, // DNS names present: no CN fallback
		{self("test.com", "a.test"), "a.test", false},
		{self("test.com"), "", false},
	} {
		roots := x509.NewCertPool()
		roots.AddCert(tc.cert)
		err := verifyPeer(roots, &certcheck.Chain{Depth: 1}, tc.name)(tls.ConnectionState{PeerCertificates: []*x509.Certificate{tc.cert}})
		var host x509.HostnameError
		if got := errors.As(err, &host); got != tc.mismatch || (err != nil && !got) {
			t.Errorf("%v for %q: %v", tc.cert.DNSNames, tc.name, err)
		}
	}
	other := self("test.com")
	var ce chainError
	if err := verifyPeer(x509.NewCertPool(), &certcheck.Chain{Depth: 1}, "test.com")(tls.ConnectionState{PeerCertificates: []*x509.Certificate{other}}); !errors.As(err, &ce) || ce.Code != certcheck.ErrSelfSigned.Code {
		t.Errorf("untrusted: %v, want OpenSSL's 18", err)
	}
}

// ngx.ssl outside ssl_certificate_by_lua: the constants are there, the
// handshake functions answer nil and "no ssl context".
func TestNgxSSLOutsideTheHandshake(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	out := runCode(t, rt, PhaseContent, `local ssl = require "ngx.ssl"
		ngx.print(ssl.TLS1_2_VERSION, " ", select(2, ssl.server_name()), " ", select(2, ssl.clear_certs()), " ",
			select(2, ssl.cert_pem_to_der("x")))`, newReq("/"))
	if want := "771 no ssl context no ssl context PEM_read_bio_X509_AUX() failed"; out.Err != nil || string(out.Body) != want {
		t.Errorf("got %q (%v), want %q", out.Body, out.Err, want)
	}
	out = runCode(t, rt, PhaseContent, `local ssl = require "ngx.ssl"
		ngx.print(select(2, ssl.set_cert("x")), " ", select(2, ssl.set_priv_key({})), " ", select(2, ssl.set_cert(ssl.parse_pem_priv_key)))`, newReq("/"))
	if want := "bad cert arg bad priv key arg bad cert arg"; out.Err != nil || string(out.Body) != want {
		t.Errorf("got %q (%v), want %q", out.Body, out.Err, want)
	}
	out = runCode(t, rt, PhaseContent, `ngx.print(pcall(require("ngx.ssl").set_der_cert, 1))`, newReq("/"))
	if !strings.Contains(string(out.Body), "string expected, got number") {
		t.Errorf("set_der_cert(1): %q", out.Body)
	}
}
