package proxy

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// stapler keeps the OCSP response stapled to one certificate under
// ssl_stapling on (without ssl_stapling_file), as nginx does: the first
// handshake that needs it starts a request to the responder
// (ssl_stapling_responder, else the certificate's OCSP URL) and goes on
// without a staple; a "good" response is then stapled until an hour
// passes or its nextUpdate comes, and a failure is tried again after five
// minutes. Under ssl_stapling_verify the response must be signed by the
// issuer or a responder it authorised.
type stapler struct {
	leaf, issuer *x509.Certificate
	chain        []*x509.Certificate // the certificate file's other certificates
	url          string
	verify       bool
	// addr is the responder's address, resolved at load as nginx resolves
	// it (the system's resolver); "": the URL's host is an address
	addr string

	mu       sync.Mutex
	resp     []byte
	valid    time.Time // the response is stapled until then
	refresh  time.Time // no new request before then
	fetching bool
}

// staplingClient asks the responders given by address (never through a
// proxy of the environment).
var staplingClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// newStapler prepares stapling for c; nil (and the reason) when it cannot
// be done: no issuer in the certificate's chain or the trusted
// certificates, no responder URL.
func newStapler(c *tls.Certificate, responder, trusted string, verify bool) (*stapler, string) {
	leaf := c.Leaf
	if leaf == nil {
		return nil, "no certificate"
	}
	var issuer *x509.Certificate
	var chain []*x509.Certificate
	for _, der := range c.Certificate[1:] {
		if ic, err := x509.ParseCertificate(der); err == nil {
			chain = append(chain, ic)
		}
	}
	if len(chain) > 0 && leaf.CheckSignatureFrom(chain[0]) == nil {
		issuer = chain[0]
	}
	if issuer == nil && trusted != "" {
		if data, err := os.ReadFile(trusted); err == nil {
			for rest := data; ; {
				var b *pem.Block
				if b, rest = pem.Decode(rest); b == nil {
					break
				}
				ic, err := x509.ParseCertificate(b.Bytes)
				if err == nil && bytes.Equal(ic.RawSubject, leaf.RawIssuer) && leaf.CheckSignatureFrom(ic) == nil {
					issuer = ic
					break
				}
			}
		}
	}
	if issuer == nil {
		return nil, fmt.Sprintf(`"ssl_stapling" ignored, issuer certificate not found for certificate "%s"`, leaf.Subject.CommonName)
	}
	if responder == "" && len(leaf.OCSPServer) > 0 {
		responder = leaf.OCSPServer[0]
	}
	if responder == "" {
		return nil, fmt.Sprintf(`"ssl_stapling" ignored, no OCSP responder URL in the certificate "%s"`, leaf.Subject.CommonName)
	}
	sp := &stapler{leaf: leaf, issuer: issuer, chain: chain, url: responder, verify: verify}
	u, err := url.Parse(responder)
	if err != nil || !strings.EqualFold(u.Scheme, "http") || u.Hostname() == "" {
		return nil, fmt.Sprintf(`"ssl_stapling" ignored, invalid URL prefix in OCSP responder "%s"`, responder)
	}
	if host := u.Hostname(); net.ParseIP(host) == nil {
		addrs, err := net.LookupHost(host)
		if err != nil || len(addrs) == 0 {
			return nil, fmt.Sprintf(`"ssl_stapling" ignored, host not found in OCSP responder "%s"`, responder)
		}
		port := u.Port()
		if port == "" {
			port = "80"
		}
		sp.addr = net.JoinHostPort(addrs[0], port)
	}
	return sp, ""
}

// staple is the response to staple now (nil: none), starting a request to
// the responder when it is due.
func (s *stapler) staple(logf func(string)) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if !s.fetching && !now.Before(s.refresh) {
		s.fetching = true
		go s.fetch(logf)
	}
	if s.resp != nil && now.Before(s.valid) {
		return s.resp
	}
	return nil
}

// ocspFetch sends an OCSP request to the responder at rawURL (GET, the
// request in base64 in the path, as nginx sends it) and returns the
// body of a 200 answer; addr, when set, is the address to connect to
// (the URL's host resolved), else the URL's host is one.
func ocspFetch(rawURL, addr string, req []byte) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil || !strings.EqualFold(u.Scheme, "http") {
		return nil, fmt.Errorf(`invalid URL prefix in OCSP responder "%s" in the certificate`, rawURL)
	}
	u.Scheme = "http"
	path := u.EscapedPath()
	if !strings.HasSuffix(path, "/") {
		path += "/"
	}
	u.RawPath, u.Path, u.RawQuery = "", "", ""
	target := u.String() + path + url.QueryEscape(base64.StdEncoding.EncodeToString(req))
	client := staplingClient
	if addr != "" {
		client = &http.Client{Timeout: staplingClient.Timeout, Transport: &http.Transport{
			Proxy: nil, DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
		}}
	}
	r, err := client.Get(target)
	if err != nil {
		return nil, fmt.Errorf("OCSP responder %s: %v", rawURL, err)
	}
	defer r.Body.Close()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("OCSP responder %s: %v", rawURL, err)
	}
	if r.StatusCode != http.StatusOK {
		return nil, fmt.Errorf(`OCSP responder sent invalid "%d %s" status`, r.StatusCode, http.StatusText(r.StatusCode))
	}
	if ct, ok := r.Header["Content-Type"]; ok && len(ct) > 0 && !strings.EqualFold(strings.TrimSpace(ct[0]), "application/ocsp-response") {
		// nginx accepts no other type, parameters included
		return nil, fmt.Errorf(`OCSP responder sent invalid "Content-Type" header: "%s"`, ct[0])
	}
	return body, nil
}

func (s *stapler) fetch(logf func(string)) {
	resp, valid, err := s.ask()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetching = false
	now := time.Now()
	if err != nil {
		s.refresh = now.Add(5 * time.Minute)
		if logf != nil {
			logf(err.Error())
		}
		return
	}
	s.resp, s.valid = resp, valid
	s.refresh = now.Add(time.Hour)
	if valid.Before(s.refresh) {
		s.refresh = valid
	}
}

// ask sends the OCSP request and checks the answer.
func (s *stapler) ask() ([]byte, time.Time, error) {
	req, err := ocsp.CreateRequest(s.leaf, s.issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return nil, time.Time{}, err
	}
	body, err := ocspFetch(s.url, s.addr, req)
	if err != nil {
		return nil, time.Time{}, err
	}
	// The signature is checked as OpenSSL's OCSP_basic_verify does for
	// nginx: against the signer certificate the response carries or one of
	// the certificate file's chain, and under ssl_stapling_verify that
	// signer must be the issuer or one it signed.
	var parsed *ocsp.Response
	if s.verify {
		parsed, err = ocsp.ParseResponseForCert(body, s.leaf, s.issuer)
	} else {
		parsed, err = ocsp.ParseResponseForCert(body, s.leaf, nil)
		if err == nil && ocspSigner(parsed, s.chain) == nil {
			err = errors.New("signer certificate not found")
		}
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("OCSP_basic_verify() failed (%v)", err)
	}
	if parsed.Status != ocsp.Good {
		status := map[int]string{ocsp.Revoked: "revoked", ocsp.Unknown: "unknown"}[parsed.Status]
		return nil, time.Time{}, fmt.Errorf(`certificate status "%s" in the OCSP response`, status)
	}
	return body, ocspValidUntil(parsed), nil
}

// ocspSigner is the certificate that signed resp: the one it carries
// (ocsp.ParseResponseForCert checked that signature) or the first of chain
// whose key verifies it, as OpenSSL's OCSP_basic_verify looks; nil if none.
func ocspSigner(resp *ocsp.Response, chain []*x509.Certificate) *x509.Certificate {
	if resp.Certificate != nil {
		return resp.Certificate
	}
	for _, c := range chain {
		if resp.CheckSignatureFrom(c) == nil {
			return c
		}
	}
	return nil
}

// ocspValidUntil is how long a status may be used: until the response's
// nextUpdate, or an hour without one, as nginx keeps it.
func ocspValidUntil(resp *ocsp.Response) time.Time {
	if resp.NextUpdate.IsZero() {
		return time.Now().Add(time.Hour)
	}
	return resp.NextUpdate
}
