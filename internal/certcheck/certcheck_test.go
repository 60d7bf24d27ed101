package certcheck

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pki is root -> int -> leaf, and alice issued by root.
type pki struct {
	root, int, leaf, alice *x509.Certificate
	keys                   map[*x509.Certificate]*ecdsa.PrivateKey
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{keys: map[*x509.Certificate]*ecdsa.PrivateKey{}}
	now := time.Now()
	serial := int64(100)
	issue := func(cn string, ca bool, parent *x509.Certificate) *x509.Certificate {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial++
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: ca, BasicConstraintsValid: true}
		if ca {
			tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		}
		signer, signerCert := key, tmpl
		if parent != nil {
			signer, signerCert = p.keys[parent], parent
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		p.keys[c] = key
		return c
	}
	p.root = issue("root", true, nil)
	p.int = issue("int", true, p.root)
	p.leaf = issue("leaf", false, p.int)
	p.alice = issue("alice", false, p.root)
	return p
}

// crlFile writes a CRL of issuer revoking revoked, and returns its path.
func (p *pki) crlFile(t *testing.T, issuer *x509.Certificate, revoked ...*x509.Certificate) string {
	t.Helper()
	now := time.Now()
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: now.Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour), RevokedCertificateEntries: entries}, issuer, p.keys[issuer])
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), issuer.Subject.CommonName+".crl")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestUnknownIssuer(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		name  string
		sent  []*x509.Certificate
		inter []*x509.Certificate
		want  Result
	}{
		{"one certificate", []*x509.Certificate{p.leaf}, nil, ErrLeafSignature},
		{"a chain", []*x509.Certificate{p.leaf, p.int}, nil, ErrNoLocalIssuer},
		{"a trusted intermediate", []*x509.Certificate{p.leaf}, []*x509.Certificate{p.int}, ErrNoIssuer},
		{"sent and trusted", []*x509.Certificate{p.leaf, p.int}, []*x509.Certificate{p.int}, ErrNoIssuer},
		{"self-signed", []*x509.Certificate{p.root}, nil, ErrSelfSigned},
		{"self-signed in the chain", []*x509.Certificate{p.leaf, p.int, p.root}, nil, ErrSelfSignedChain},
	} {
		c := &Chain{Depth: 1, Inter: tc.inter}
		if got := c.UnknownIssuer(tc.sent); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	p := newPKI(t)
	now := time.Now()
	full := []*x509.Certificate{p.leaf, p.int, p.root}
	rootCRL := p.crlFile(t, p.root, p.int)
	intCRL := p.crlFile(t, p.int)
	crls := func(files ...string) []*CRL {
		var out []*CRL
		for _, f := range files {
			l, err := LoadCRLs(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, l...)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		chain *Chain
		certs []*x509.Certificate
		want  Result
	}{
		{"depth 1", &Chain{Depth: 1}, full, Result{}},
		{"depth 0", &Chain{Depth: 0}, full, ErrNoLocalIssuer},
		{"depth 0, trusted intermediate", &Chain{Depth: 0, Inter: []*x509.Certificate{p.int}}, full, ErrNoIssuer},
		// every certificate against its issuer's CRL; the last error wins
		{"int revoked", &Chain{Depth: 1, CRLs: crls(rootCRL, intCRL)}, full, ErrRevoked},
		{"no CRL of int", &Chain{Depth: 1, CRLs: crls(p.crlFile(t, p.root))}, full, ErrUnableGetCRL},
		{"none revoked", &Chain{Depth: 1, CRLs: crls(p.crlFile(t, p.root), intCRL)}, full, Result{}},
		{"alice", &Chain{Depth: 1, CRLs: crls(rootCRL)}, []*x509.Certificate{p.alice, p.root}, Result{}},
	} {
		if got := tc.chain.Check(tc.certs, now); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, err := LoadCRLs(filepath.Join(t.TempDir(), "missing.crl")); err == nil {
		t.Error("a missing CRL file loaded")
	}
}
