// Package certcheck holds the checks OpenSSL makes of a certificate chain
// beyond its signatures, as nginx configures them: its length (the
// *_verify_depth directives) and, with a CRL file (ssl_crl, proxy_ssl_crl,
// lua_ssl_crl), every certificate of it against a CRL of its issuer
// (X509_V_FLAG_CRL_CHECK_ALL); and the verify results in OpenSSL's codes
// and words. crypto/x509 finds the chains; Chain checks one it found.
//
// As OpenSSL without X509_V_FLAG_PARTIAL_CHAIN, a chain is trusted only up
// to a self-signed certificate: callers put the self-signed certificates of
// a CA file in the roots they give crypto/x509 and the others in
// Chain.Inter.
package certcheck

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// Result is OpenSSL's verify result: an X509_V_ERR code and its text, OK,
// or None when no certificate was sent.
type Result struct {
	Code int
	Text string
}

// The codes of Result without an error.
const (
	None = -1
	OK   = 0
)

// OpenSSL's X509_V_ERR results that ngxsockify reports.
var (
	ErrNoIssuer         = Result{2, "unable to get issuer certificate"}
	ErrUnableGetCRL     = Result{3, "unable to get certificate CRL"}
	ErrNotYetValid      = Result{9, "certificate is not yet valid"}
	ErrExpired          = Result{10, "certificate has expired"}
	ErrCRLNotYetValid   = Result{11, "CRL is not yet valid"}
	ErrCRLExpired       = Result{12, "CRL has expired"}
	ErrSelfSigned       = Result{18, "self-signed certificate"}
	ErrSelfSignedChain  = Result{19, "self-signed certificate in certificate chain"}
	ErrNoLocalIssuer    = Result{20, "unable to get local issuer certificate"}
	ErrLeafSignature    = Result{21, "unable to verify the first certificate"}
	ErrChainTooLong     = Result{22, "certificate chain too long"}
	ErrRevoked          = Result{23, "certificate revoked"}
	ErrInvalidCA        = Result{24, "invalid CA certificate"}
	ErrPurpose          = Result{26, "unsupported certificate purpose"}
	ErrSignatureFailure = Result{7, "certificate signature failure"}
)

// Variable is $ssl_client_verify's value ("" reads as NONE).
func (r Result) Variable() string {
	switch r.Code {
	case None:
		return ""
	case OK:
		return "SUCCESS"
	}
	return "FAILED:" + r.Text
}

// UnknownIssuer reports the errors optional_no_ca lets pass
// (ngx_ssl_verify_error_optional).
func (r Result) UnknownIssuer() bool {
	switch r.Code {
	case 18, 19, 20, 21, 27:
		return true
	}
	return false
}

// CRL is one certificate revocation list of a CRL file. crypto/x509's
// ParseRevocationList refuses version 1 CRLs, which `openssl ca -gencrl`
// writes without crl extensions, so the older pkix form is used.
type CRL struct {
	list   *pkix.CertificateList
	issuer []byte // the issuer name, re-encoded (see nameKey)
}

// LoadCRLs reads the CRLs of a PEM file, failing in nginx's words.
func LoadCRLs(file string) ([]*CRL, error) {
	ders, err := LoadPEM(file, "X509 CRL")
	var crls []*CRL
	for _, der := range ders {
		l, perr := x509.ParseDERCRL(der) //nolint:staticcheck // reads version 1 CRLs too
		if perr != nil {
			err = perr
			break
		}
		crls = append(crls, &CRL{list: l, issuer: rdnKey(l.TBSCertList.Issuer)})
	}
	if err != nil {
		return nil, fmt.Errorf(`X509_LOOKUP_load_file("%s") failed (%w)`, file, err)
	}
	return crls, nil
}

// LoadPEM returns the DER of the blocks of type typ in file.
func LoadPEM(file, typ string) ([][]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type == typ {
			out = append(out, b.Bytes)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no certificate or crl found")
	}
	return out, nil
}

// nameKey re-encodes a DER name, so that names compare equal whatever
// string types their encoders chose.
func nameKey(der []byte) []byte {
	var seq pkix.RDNSequence
	if _, err := asn1.Unmarshal(der, &seq); err != nil {
		return der
	}
	return rdnKey(seq)
}

func rdnKey(seq pkix.RDNSequence) []byte {
	b, err := asn1.Marshal(seq)
	if err != nil {
		return nil
	}
	return b
}

// SelfSigned reports whether c is issued by itself and signed with its own
// key.
func SelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// Trust splits the certificates of CA files as OpenSSL trusts them: the
// self-signed ones are the roots crypto/x509 may end a chain at, the others
// the intermediates it may go through (Chain.Inter).
func Trust(certs []*x509.Certificate) (roots *x509.CertPool, inter []*x509.Certificate) {
	roots = x509.NewCertPool()
	for _, c := range certs {
		if SelfSigned(c) {
			roots.AddCert(c)
		} else {
			inter = append(inter, c)
		}
	}
	return roots, inter
}

// Chain is what is checked of a chain crypto/x509 verified: at most Depth
// intermediate certificates (OpenSSL 1.1+'s meaning of the verify depth),
// and with CRLs every certificate against its issuer's. Inter are the
// trusted certificates that are not self-signed.
type Chain struct {
	Depth int
	CRLs  []*CRL // nil: no CRL checks
	Inter []*x509.Certificate
}

// Check applies the depth and the CRLs to a chain crypto/x509 built
// (ending with a self-signed root). nginx's verify callback lets OpenSSL
// go on after an error, so the result is the last error found, in
// OpenSSL's order: the chain's length, then each certificate's CRL from
// the peer's certificate up.
func (c *Chain) Check(chain []*x509.Certificate, now time.Time) Result {
	res := Result{}
	complete := true
	if len(chain) > c.Depth+2 {
		// OpenSSL stops building the chain there, short of a root.
		chain, complete = chain[:c.Depth+2], false
		res = ErrNoLocalIssuer
		if slices.Contains(c.Inter, chain[len(chain)-1]) {
			res = ErrNoIssuer
		}
	}
	if c.CRLs == nil {
		return res
	}
	return c.CheckCRLs(chain, complete, now, res)
}

// CheckCRLs checks each certificate of chain against its issuer's CRL,
// the issuer being the next certificate, or for the last one itself when
// complete (a root) or self-signed; a last certificate without a known
// issuer is checked by name only. The last error wins over res.
func (c *Chain) CheckCRLs(chain []*x509.Certificate, complete bool, now time.Time, res Result) Result {
	for i, cert := range chain {
		var issuer *x509.Certificate
		switch {
		case i+1 < len(chain):
			issuer = chain[i+1]
		case complete || SelfSigned(cert):
			issuer = cert
		}
		if r := c.checkCRL(cert, issuer, now); r.Code != OK {
			res = r
		}
	}
	return res
}

// checkCRL looks cert up in the CRL its issuer signed (nil issuer: any
// CRL in the issuer's name).
func (c *Chain) checkCRL(cert, issuer *x509.Certificate, now time.Time) Result {
	name := nameKey(cert.RawIssuer)
	for _, crl := range c.CRLs {
		if !bytes.Equal(crl.issuer, name) || issuer != nil && issuer.CheckCRLSignature(crl.list) != nil { //nolint:staticcheck // see CRL
			continue
		}
		tbs := &crl.list.TBSCertList
		switch {
		case now.Before(tbs.ThisUpdate):
			return ErrCRLNotYetValid
		case !tbs.NextUpdate.IsZero() && now.After(tbs.NextUpdate):
			return ErrCRLExpired
		}
		for _, e := range tbs.RevokedCertificates {
			if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				return ErrRevoked
			}
		}
		return Result{}
	}
	return ErrUnableGetCRL
}

// LinkChain is the chain a peer's certificates form, its own first, each
// next one the issuer of the one before.
func LinkChain(sent []*x509.Certificate) []*x509.Certificate {
	chain := sent[:1]
	for last := sent[0]; !SelfSigned(last); {
		var next *x509.Certificate
		for _, c := range sent[1:] {
			if bytes.Equal(c.RawSubject, last.RawIssuer) && !slices.Contains(chain, c) && last.CheckSignatureFrom(c) == nil {
				next = c
				break
			}
		}
		if next == nil {
			break
		}
		chain = append(chain, next)
		last = next
	}
	return chain
}

// UnknownIssuer is the error OpenSSL gives a chain it cannot complete to
// a self-signed trusted certificate: sent is the peer's certificates (its
// own first), c.Inter the trusted ones that are not self-signed. Issuers
// are looked for among the trusted certificates first, as OpenSSL 1.1+
// does: a chain that ends at one of them lacks its issuer (2); else the
// peer's own certificate or one it sent is self-signed (18, 19), or no
// local issuer was found (20; 21 when not even the peer's certificate's
// issuer was).
func (c *Chain) UnknownIssuer(sent []*x509.Certificate) Result {
	last, trusted := sent[0], false
	seen := []*x509.Certificate{last}
	for {
		next := issuerIn(last, c.Inter, seen)
		if next != nil {
			trusted = true
		} else if next = issuerIn(last, sent[1:], seen); next != nil {
			trusted = false
		} else {
			break
		}
		seen = append(seen, next)
		last = next
	}
	switch {
	case trusted:
		return ErrNoIssuer
	case SelfSigned(sent[0]):
		return ErrSelfSigned
	}
	for _, s := range sent[1:] {
		if SelfSigned(s) {
			return ErrSelfSignedChain
		}
	}
	if len(seen) == 1 {
		return ErrLeafSignature
	}
	return ErrNoLocalIssuer
}

// issuerIn is the certificate of certs, not in seen, that signed c.
func issuerIn(c *x509.Certificate, certs, seen []*x509.Certificate) *x509.Certificate {
	for _, p := range certs {
		if bytes.Equal(p.RawSubject, c.RawIssuer) && !slices.Contains(seen, p) && c.CheckSignatureFrom(p) == nil {
			return p
		}
	}
	return nil
}
