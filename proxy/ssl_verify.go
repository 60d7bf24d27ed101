package proxy

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

	"ngxsockify/nginxconf"
)

// clientVerifier checks client certificates as OpenSSL does for nginx's
// ssl_verify_client: a chain from the client's certificate (through the
// certificates it sent and those of the CA files) to a self-signed
// certificate of ssl_client_certificate or ssl_trusted_certificate, at
// most ssl_verify_depth intermediate certificates long (OpenSSL 1.1+'s
// meaning), and with ssl_crl every certificate of the chain checked
// against a CRL of its issuer (X509_V_FLAG_CRL_CHECK_ALL).
type clientVerifier struct {
	mode  nginxconf.VerifyClient
	names *x509.CertPool // ssl_client_certificate's: the CA names sent to clients
	roots *x509.CertPool // the self-signed certificates of both files
	inter []*x509.Certificate
	depth int
	crls  []*revocationList // nil: no CRL checks
}

// revocationList is one CRL of ssl_crl. crypto/x509's
// ParseRevocationList refuses version 1 CRLs, which `openssl ca -gencrl`
// writes without crl extensions, so the older pkix form is used.
type revocationList struct {
	list   *pkix.CertificateList
	issuer []byte // the issuer name, re-encoded (see nameKey)
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

// newClientVerifier loads a server's CA files and CRLs; nil when the
// server does not verify clients (its ssl_crl is still read, as nginx
// does).
func newClientVerifier(t *nginxconf.TLS) (*clientVerifier, error) {
	var crls []*revocationList
	if t.CRL != "" {
		var err error
		if crls, err = loadCRLs(t.CRL); err != nil {
			return nil, err
		}
	}
	if t.VerifyClient == nginxconf.VerifyOff {
		return nil, nil
	}
	v := &clientVerifier{mode: t.VerifyClient, names: x509.NewCertPool(), roots: x509.NewCertPool(), depth: t.VerifyDepth, crls: crls}
	for _, f := range []string{t.ClientCertificate, t.TrustedCertificate} {
		if f == "" {
			continue
		}
		certs, err := loadCAs(f)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			if f == t.ClientCertificate {
				v.names.AddCert(c)
			}
			if selfSigned(c) {
				v.roots.AddCert(c)
			} else {
				v.inter = append(v.inter, c)
			}
		}
	}
	return v, nil
}

// loadPEM returns the DER of the blocks of type typ in file.
func loadPEM(file, typ string) ([][]byte, error) {
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

func loadCAs(file string) ([]*x509.Certificate, error) {
	ders, err := loadPEM(file, "CERTIFICATE")
	var certs []*x509.Certificate
	for _, der := range ders {
		c, perr := x509.ParseCertificate(der)
		if perr != nil {
			err = perr
			break
		}
		certs = append(certs, c)
	}
	if err != nil {
		return nil, fmt.Errorf(`SSL_CTX_load_verify_locations("%s") failed (%w)`, file, err)
	}
	return certs, nil
}

func loadCRLs(file string) ([]*revocationList, error) {
	ders, err := loadPEM(file, "X509 CRL")
	var crls []*revocationList
	for _, der := range ders {
		l, perr := x509.ParseDERCRL(der) //nolint:staticcheck // reads version 1 CRLs too
		if perr != nil {
			err = perr
			break
		}
		crls = append(crls, &revocationList{list: l, issuer: rdnKey(l.TBSCertList.Issuer)})
	}
	if err != nil {
		return nil, fmt.Errorf(`X509_LOOKUP_load_file("%s") failed (%w)`, file, err)
	}
	return crls, nil
}

// selfSigned: issued by itself and signed with its own key.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// verifyResult is OpenSSL's verify result: an X509_V_ERR code and its
// text, verifyOK, or verifyNone when no certificate was sent.
type verifyResult struct {
	code int
	text string
}

const (
	verifyNone = -1
	verifyOK   = 0
)

// OpenSSL's X509_V_ERR codes that ngxsockify reports.
var (
	errNoIssuer         = verifyResult{2, "unable to get issuer certificate"}
	errUnableGetCRL     = verifyResult{3, "unable to get certificate CRL"}
	errNotYetValid      = verifyResult{9, "certificate is not yet valid"}
	errExpired          = verifyResult{10, "certificate has expired"}
	errCRLNotYetValid   = verifyResult{11, "CRL is not yet valid"}
	errCRLExpired       = verifyResult{12, "CRL has expired"}
	errSelfSigned       = verifyResult{18, "self-signed certificate"}
	errSelfSignedChain  = verifyResult{19, "self-signed certificate in certificate chain"}
	errNoLocalIssuer    = verifyResult{20, "unable to get local issuer certificate"}
	errChainTooLong     = verifyResult{22, "certificate chain too long"}
	errRevoked          = verifyResult{23, "certificate revoked"}
	errInvalidCA        = verifyResult{24, "invalid CA certificate"}
	errPurpose          = verifyResult{26, "unsupported certificate purpose"}
	errSignatureFailure = verifyResult{7, "certificate signature failure"}
)

// variable is $ssl_client_verify's value ("" reads as NONE).
func (r verifyResult) variable() string {
	switch r.code {
	case verifyNone:
		return ""
	case verifyOK:
		return "SUCCESS"
	}
	return "FAILED:" + r.text
}

// unknownIssuer: the errors optional_no_ca lets pass
// (ngx_ssl_verify_error_optional).
func (r verifyResult) unknownIssuer() bool {
	switch r.code {
	case 2, 18, 19, 20, 21, 27:
		return true
	}
	return false
}

// verify checks the chain the client sent (its certificate first).
func (v *clientVerifier) verify(sent []*x509.Certificate, now time.Time) verifyResult {
	res, _ := v.verifyChain(sent, now)
	return res
}

// verifyChain is verify that also gives the chain verified, from the
// client's certificate to the root, when the result is verifyOK.
func (v *clientVerifier) verifyChain(sent []*x509.Certificate, now time.Time) (verifyResult, []*x509.Certificate) {
	if len(sent) == 0 {
		return verifyResult{code: verifyNone}, nil
	}
	if v.roots == nil {
		// no CA at all (a server verifying without a context of its own)
		return unknownIssuerOf(sent), nil
	}
	inter := x509.NewCertPool()
	for _, c := range v.inter {
		inter.AddCert(c)
	}
	for _, c := range sent[1:] {
		inter.AddCert(c)
	}
	chains, err := sent[0].Verify(x509.VerifyOptions{
		Roots: v.roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		var invalid x509.CertificateInvalidError
		var unknown x509.UnknownAuthorityError
		switch {
		case errors.As(err, &invalid):
			switch invalid.Reason {
			case x509.Expired:
				if now.Before(invalid.Cert.NotBefore) {
					return errNotYetValid, nil
				}
				return errExpired, nil
			case x509.IncompatibleUsage:
				return errPurpose, nil
			case x509.TooManyIntermediates:
				return errChainTooLong, nil
			}
			return errInvalidCA, nil
		case errors.As(err, &unknown):
			res := unknownIssuerOf(sent)
			if v.crls != nil {
				// OpenSSL goes on with the CRLs of the chain it could build
				res = v.checkCRLs(linkChain(sent), false, now, res)
			}
			return res, nil
		}
		return errSignatureFailure, nil
	}
	first := verifyResult{}
	for i, chain := range chains {
		r := v.checkChain(chain, now)
		if r.code == verifyOK {
			return r, chain
		}
		if i == 0 {
			first = r
		}
	}
	return first, nil
}

// unknownIssuerOf is the error OpenSSL gives a chain it cannot complete.
func unknownIssuerOf(sent []*x509.Certificate) verifyResult {
	if selfSigned(sent[0]) {
		return errSelfSigned
	}
	for _, c := range sent[1:] {
		if selfSigned(c) {
			return errSelfSignedChain
		}
	}
	return errNoLocalIssuer
}

// checkChain applies ssl_verify_depth and ssl_crl to a chain crypto/x509
// built (ending with a self-signed root). nginx's verify callback lets
// OpenSSL go on after an error, so the result is the last error found, in
// OpenSSL's order: the chain's length, then each certificate's CRL from
// the client's certificate up.
func (v *clientVerifier) checkChain(chain []*x509.Certificate, now time.Time) verifyResult {
	res := verifyResult{}
	complete := true
	if len(chain) > v.depth+2 {
		// OpenSSL stops building the chain there, short of a root.
		chain, complete = chain[:v.depth+2], false
		res = errNoLocalIssuer
		if slices.Contains(v.inter, chain[len(chain)-1]) {
			res = errNoIssuer
		}
	}
	if v.crls == nil {
		return res
	}
	return v.checkCRLs(chain, complete, now, res)
}

// checkCRLs checks each certificate of chain against its issuer's CRL,
// the issuer being the next certificate, or for the last one itself when
// complete (a root) or self-signed; a last certificate without a known
// issuer is checked by name only. The last error wins over res.
func (v *clientVerifier) checkCRLs(chain []*x509.Certificate, complete bool, now time.Time, res verifyResult) verifyResult {
	for i, c := range chain {
		var issuer *x509.Certificate
		switch {
		case i+1 < len(chain):
			issuer = chain[i+1]
		case complete || selfSigned(c):
			issuer = c
		}
		if r := v.checkCRL(c, issuer, now); r.code != verifyOK {
			res = r
		}
	}
	return res
}

// linkChain is the chain a client's certificates form, its own first,
// each next one the issuer of the one before.
func linkChain(sent []*x509.Certificate) []*x509.Certificate {
	chain := sent[:1]
	for last := sent[0]; !selfSigned(last); {
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

// checkCRL looks c up in the CRL its issuer signed (nil issuer: any CRL
// in the issuer's name).
func (v *clientVerifier) checkCRL(c, issuer *x509.Certificate, now time.Time) verifyResult {
	name := nameKey(c.RawIssuer)
	for _, crl := range v.crls {
		if !bytes.Equal(crl.issuer, name) || issuer != nil && issuer.CheckCRLSignature(crl.list) != nil { //nolint:staticcheck // see revocationList
			continue
		}
		tbs := &crl.list.TBSCertList
		switch {
		case now.Before(tbs.ThisUpdate):
			return errCRLNotYetValid
		case !tbs.NextUpdate.IsZero() && now.After(tbs.NextUpdate):
			return errCRLExpired
		}
		for _, e := range tbs.RevokedCertificates {
			if e.SerialNumber.Cmp(c.SerialNumber) == 0 {
				return errRevoked
			}
		}
		return verifyResult{}
	}
	return errUnableGetCRL
}
