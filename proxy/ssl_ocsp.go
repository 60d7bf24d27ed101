package proxy

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ocsp"

	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/upstream"
)

// ocspChecker is ssl_ocsp of one TLS context: once the client's
// certificate has verified, the status of each certificate of the chain
// but the root (ssl_ocsp leaf: of the client's own only) is asked of its
// OCSP responder (ssl_ocsp_responder, else the certificate's AIA URL), as
// nginx's ngx_ssl_ocsp_validate does, and a chain with a certificate that
// is not "good", or whose status could not be had, fails verification.
type ocspChecker struct {
	leaf bool
	// responder is ssl_ocsp_responder ("": each certificate's URL), addr
	// its host resolved at load ("": the host is an address)
	responder, addr string
	cache           *ocspCache // ssl_ocsp_cache; nil: off
	// resolver finds the server's `resolver` for a responder URL of a
	// certificate that names a host (nil result: none defined)
	resolver func() *upstream.Resolver
}

// ocspLog writes an ssl_ocsp message of a connection: request says
// whether it happened while asking a responder (else while handshaking).
type ocspLog func(level ngxlog.Level, request bool, msg string)

// ocspRequestError is a failure while asking a responder, with what
// nginx's log says of the request: the responder's host and the address
// asked ("" before one was).
type ocspRequestError struct {
	err        error
	host, peer string
}

func (e *ocspRequestError) Error() string {
	s := e.err.Error() + " while requesting certificate status, responder: " + e.host
	if e.peer != "" {
		s += ", peer: " + e.peer
	}
	return s
}

// ocspFailed is the text of $ssl_client_verify's FAILED: when a status
// could not be had.
const ocspFailed = "certificate status request failed"

// newOCSPChecker prepares a context's ssl_ocsp (nil when off).
func newOCSPChecker(t *nginxconf.TLS, resolver func() *upstream.Resolver) *ocspChecker {
	if t.OCSP == nginxconf.OCSPOff {
		return nil
	}
	oc := &ocspChecker{leaf: t.OCSP == nginxconf.OCSPLeaf, responder: t.OCSPResponder, resolver: resolver}
	if oc.responder != "" {
		if u, err := url.Parse(oc.responder); err == nil && net.ParseIP(u.Hostname()) == nil {
			// resolved at load, as nginx does (the load checked it resolves)
			if addrs, err := net.LookupHost(u.Hostname()); err == nil && len(addrs) > 0 {
				port := u.Port()
				if port == "" {
					port = "80"
				}
				oc.addr = net.JoinHostPort(addrs[0], port)
			}
		}
	}
	if t.OCSPCache != "" {
		oc.cache = ocspZone(t.OCSPCache, t.OCSPCacheSize)
	}
	return oc
}

// check returns "" when every certificate of chain (the verified chain,
// the client's certificate first, the root last) that is to be checked
// is good, else the failure's text for $ssl_client_verify.
func (oc *ocspChecker) check(ctx context.Context, chain []*x509.Certificate, logf ocspLog) string {
	for i := 0; i < len(chain)-1; i++ {
		if oc.leaf && i == 1 {
			break
		}
		cert, issuer := chain[i], chain[i+1]
		key := ocspKey(cert, issuer)
		status, ok := oc.cache.lookup(key)
		if !ok {
			var valid time.Time
			var err error
			status, valid, err = oc.ask(ctx, cert, issuer, chain, logf)
			if err != nil {
				var re *ocspRequestError
				logf(ngxlog.Err, errors.As(err, &re), err.Error())
				return ocspFailed
			}
			oc.cache.store(key, status, valid)
		}
		switch status {
		case ocsp.Good:
		case ocsp.Revoked:
			return "certificate revoked"
		default:
			return "certificate status unknown"
		}
	}
	return ""
}

// ask gets cert's status from its responder and checks the response as
// OpenSSL's OCSP_basic_verify does for nginx (no flags): signed by the
// issuer, or by a responder the issuer certified for OCSP signing, its
// times valid (five minutes' leeway); valid is how long it may be kept.
func (oc *ocspChecker) ask(ctx context.Context, cert, issuer *x509.Certificate, chain []*x509.Certificate, logf ocspLog) (int, time.Time, error) {
	responder, addr := oc.responder, oc.addr
	if addr != "" && (oc.resolver == nil || oc.resolver() == nil) {
		// nginx resolves a configured responder's name again per request
		// when a resolver is defined; without one it says so and uses the
		// addresses found at load
		if u, err := url.Parse(responder); err == nil {
			logf(ngxlog.Warn, true, (&ocspRequestError{fmt.Errorf("no resolver defined to resolve %s", u.Hostname()), u.Hostname(), ""}).Error())
		}
	}
	if responder == "" {
		if len(cert.OCSPServer) == 0 {
			return 0, time.Time{}, errors.New("no OCSP responder URL in certificate")
		}
		responder = cert.OCSPServer[0]
		if len(responder) <= 7 || !strings.EqualFold(responder[:7], "http://") {
			return 0, time.Time{}, fmt.Errorf(`invalid URL prefix in OCSP responder "%s" in certificate`, responder)
		}
		u, err := url.Parse(responder)
		if err != nil || u.Hostname() == "" {
			return 0, time.Time{}, fmt.Errorf(`no host in OCSP responder "%s" in certificate`, responder[7:])
		}
		if host := u.Hostname(); net.ParseIP(host) == nil {
			var r *upstream.Resolver
			if oc.resolver != nil {
				r = oc.resolver()
			}
			if r == nil {
				return 0, time.Time{}, &ocspRequestError{fmt.Errorf("no resolver defined to resolve %s", host), host, ""}
			}
			addrs, err := r.LookupHost(ctx, host)
			if err != nil || len(addrs) == 0 {
				return 0, time.Time{}, &ocspRequestError{fmt.Errorf("%s could not be resolved (%v)", host, err), host, ""}
			}
			port := u.Port()
			if port == "" {
				port = "80"
			}
			addr = net.JoinHostPort(addrs[0], port)
		}
	}
	req, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return 0, time.Time{}, err
	}
	st, valid, err := oc.answer(responder, addr, req, cert, issuer, chain)
	if err != nil {
		host, peer := "", addr
		if u, perr := url.Parse(responder); perr == nil {
			host = u.Hostname()
			if peer == "" {
				peer = u.Host
				if u.Port() == "" {
					peer = net.JoinHostPort(host, "80")
				}
			}
		}
		return 0, time.Time{}, &ocspRequestError{err, host, peer}
	}
	return st, valid, nil
}

// answer asks the responder and checks its response.
func (oc *ocspChecker) answer(responder, addr string, req []byte, cert, issuer *x509.Certificate, chain []*x509.Certificate) (int, time.Time, error) {
	body, err := ocspFetch(responder, addr, req)
	if err != nil {
		var op *net.OpError
		var no syscall.Errno
		if errors.As(err, &op) && op.Op == "dial" && errors.As(err, &no) {
			err = fmt.Errorf("connect() failed (%s)", ngxlog.Errno(no))
		}
		return 0, time.Time{}, err
	}
	resp, err := ocsp.ParseResponseForCert(body, cert, nil)
	if err != nil {
		var re ocsp.ResponseError
		if errors.As(err, &re) {
			return 0, time.Time{}, fmt.Errorf("OCSP response not successful (%d: %s)", int(re.Status), re.Status.String())
		}
		if strings.Contains(err.Error(), "no response matching") {
			return 0, time.Time{}, errors.New("certificate status not found in the OCSP response")
		}
		return 0, time.Time{}, fmt.Errorf("d2i_OCSP_RESPONSE() failed (%v)", err)
	}
	if err := ocspSigned(resp, issuer, chain); err != nil {
		return 0, time.Time{}, fmt.Errorf("OCSP_basic_verify() failed (SSL: %v)", err)
	}
	now := time.Now()
	const leeway = 5 * time.Minute
	if resp.ThisUpdate.After(now.Add(leeway)) || !resp.NextUpdate.IsZero() && resp.NextUpdate.Before(now.Add(-leeway)) {
		return 0, time.Time{}, errors.New("OCSP_check_validity() failed")
	}
	return resp.Status, ocspValidUntil(resp), nil
}

// ocspSigned checks who signed resp: the certificate inside the response
// (whose signature ParseResponseForCert checked) or one of the client's
// chain, and it must be the issuer itself or a certificate the issuer
// signed that may sign OCSP responses.
func ocspSigned(resp *ocsp.Response, issuer *x509.Certificate, chain []*x509.Certificate) error {
	signer := ocspSigner(resp, chain)
	if signer == nil {
		return errors.New("error:13800076:OCSP routines::signer certificate not found")
	}
	if bytes.Equal(signer.RawSubject, issuer.RawSubject) && bytes.Equal(signer.RawSubjectPublicKeyInfo, issuer.RawSubjectPublicKeyInfo) {
		return nil
	}
	if signer.CheckSignatureFrom(issuer) != nil {
		return errors.New("error:13800070:OCSP routines::root ca not trusted")
	}
	now := time.Now()
	if now.Before(signer.NotBefore) || now.After(signer.NotAfter) {
		return errors.New("error:13800065:OCSP routines::certificate verify error")
	}
	for _, u := range signer.ExtKeyUsage {
		if u == x509.ExtKeyUsageOCSPSigning {
			return nil
		}
	}
	// OpenSSL then looks for explicit trust in the root, and finds none
	return errors.New("error:13800067:OCSP routines::missing ocspsigning usage error:13800070:OCSP routines::root ca not trusted")
}

// ocspKey identifies a certificate's status in a cache: its issuer's name
// and key, and its serial number (an OCSP CertID).
func ocspKey(cert, issuer *x509.Certificate) string {
	return string(issuer.RawSubject) + "\x00" + string(issuer.RawSubjectPublicKeyInfo) + "\x00" + cert.SerialNumber.String()
}

// ocspCache is an ssl_ocsp_cache zone: statuses by certificate, each kept
// until its response's nextUpdate, shared by the servers that name the
// zone and kept across reloads (as nginx keeps a shared zone of the same
// name and size).
type ocspCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]ocspEntry
}

type ocspEntry struct {
	status int
	valid  time.Time
}

var (
	ocspZonesMu sync.Mutex
	ocspZones   = map[string]*ocspCache{}
)

// ocspEntrySize is about what a status takes in nginx's zone.
const ocspEntrySize = 128

func ocspZone(name string, size int64) *ocspCache {
	ocspZonesMu.Lock()
	defer ocspZonesMu.Unlock()
	key := fmt.Sprintf("%s:%d", name, size)
	z := ocspZones[key]
	if z == nil {
		z = &ocspCache{max: int(size / ocspEntrySize), entries: map[string]ocspEntry{}}
		ocspZones[key] = z
	}
	return z
}

func (z *ocspCache) lookup(key string) (int, bool) {
	if z == nil {
		return 0, false
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	e, ok := z.entries[key]
	if !ok {
		return 0, false
	}
	if !time.Now().Before(e.valid) {
		delete(z.entries, key)
		return 0, false
	}
	return e.status, true
}

func (z *ocspCache) store(key string, status int, valid time.Time) {
	if z == nil {
		return
	}
	now := time.Now()
	if !now.Before(valid) {
		return
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if len(z.entries) >= z.max {
		// full: drop what expired, else the entry that expires first
		var first string
		for k, e := range z.entries {
			if !now.Before(e.valid) {
				delete(z.entries, k)
			} else if first == "" || e.valid.Before(z.entries[first].valid) {
				first = k
			}
		}
		if len(z.entries) >= z.max && first != "" {
			delete(z.entries, first)
		}
	}
	z.entries[key] = ocspEntry{status: status, valid: valid}
}
