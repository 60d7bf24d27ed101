package proxy

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"ngxsockify/internal/certcheck"
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
	chain certcheck.Chain
}

// newClientVerifier loads a server's CA files and CRLs; nil when the
// server does not verify clients (its ssl_crl is still read, as nginx
// does).
func newClientVerifier(t *nginxconf.TLS) (*clientVerifier, error) {
	var crls []*certcheck.CRL
	if t.CRL != "" {
		var err error
		if crls, err = certcheck.LoadCRLs(t.CRL); err != nil {
			return nil, err
		}
	}
	if t.VerifyClient == nginxconf.VerifyOff {
		return nil, nil
	}
	v := &clientVerifier{mode: t.VerifyClient, names: x509.NewCertPool(),
		chain: certcheck.Chain{Depth: t.VerifyDepth, CRLs: crls}}
	var trusted []*x509.Certificate
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
		}
		trusted = append(trusted, certs...)
	}
	v.roots, v.chain.Inter = certcheck.Trust(trusted)
	return v, nil
}

func loadCAs(file string) ([]*x509.Certificate, error) {
	ders, err := certcheck.LoadPEM(file, "CERTIFICATE")
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

// verify checks the chain the client sent (its certificate first).
func (v *clientVerifier) verify(sent []*x509.Certificate, now time.Time) certcheck.Result {
	res, _ := v.verifyChain(sent, now)
	return res
}

// verifyChain is verify that also gives the chain verified, from the
// client's certificate to the root, when the result is certcheck.OK.
func (v *clientVerifier) verifyChain(sent []*x509.Certificate, now time.Time) (certcheck.Result, []*x509.Certificate) {
	if len(sent) == 0 {
		return certcheck.Result{Code: certcheck.None}, nil
	}
	if v.roots == nil {
		// no CA at all (a server verifying without a context of its own)
		return (&certcheck.Chain{}).UnknownIssuer(sent), nil
	}
	inter := x509.NewCertPool()
	for _, c := range v.chain.Inter {
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
					return certcheck.ErrNotYetValid, nil
				}
				return certcheck.ErrExpired, nil
			case x509.IncompatibleUsage:
				return certcheck.ErrPurpose, nil
			case x509.TooManyIntermediates:
				return certcheck.ErrChainTooLong, nil
			}
			return certcheck.ErrInvalidCA, nil
		case errors.As(err, &unknown):
			res := v.chain.UnknownIssuer(sent)
			if v.chain.CRLs != nil {
				// OpenSSL goes on with the CRLs of the chain it could build
				res = v.chain.CheckCRLs(certcheck.LinkChain(sent), false, now, res)
			}
			return res, nil
		}
		return certcheck.ErrSignatureFailure, nil
	}
	first := certcheck.Result{}
	for i, chain := range chains {
		r := v.chain.Check(chain, now)
		if r.Code == certcheck.OK {
			return r, chain
		}
		if i == 0 {
			first = r
		}
	}
	return first, nil
}
