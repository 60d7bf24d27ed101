package test

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ocspResponder is an OCSP responder for a testPKI: it answers for the
// certificate's issuer (found by the request's issuer name hash), signed
// by that issuer, with the status set for the serial (good by default);
// under /wrong/ it signs everything with the root's key.
type ocspResponder struct {
	*httptest.Server
	pki      *testPKI
	mu       sync.Mutex
	statuses map[string]int // by serial
	asked    int
}

func newOCSPResponder(t *testing.T, pki *testPKI) *ocspResponder {
	o := &ocspResponder{pki: pki, statuses: map[string]int{}}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.Close)
	return o
}

func (o *ocspResponder) set(name string, status int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.statuses[o.pki.certs[name].SerialNumber.String()] = status
}

func (o *ocspResponder) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.statuses, o.asked = map[string]int{}, 0
}

func (o *ocspResponder) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	wrong := strings.HasPrefix(path, "/wrong/")
	b64, err := url.PathUnescape(path[strings.LastIndex(path, "/")+1:])
	if err != nil {
		http.Error(w, "bad request", 400)
		return
	}
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		http.Error(w, "bad request", 400)
		return
	}
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		http.Error(w, "bad request", 400)
		return
	}
	issuer := ""
	for _, name := range []string{"root", "int"} {
		h := sha1.Sum(o.pki.certs[name].RawSubject)
		if bytes.Equal(h[:], req.IssuerNameHash) {
			issuer = name
		}
	}
	if issuer == "" {
		http.Error(w, "unknown issuer", 404)
		return
	}
	o.mu.Lock()
	status := o.statuses[req.SerialNumber.String()]
	o.asked++
	o.mu.Unlock()
	now := time.Now()
	tmpl := ocsp.Response{Status: status, SerialNumber: req.SerialNumber,
		RevokedAt: now.Add(-time.Hour), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}
	signer := issuer
	switch {
	case wrong:
		signer = "root"
	case strings.HasPrefix(path, "/delegated/"):
		signer = "responder" // certified by the root for OCSP signing
	case strings.HasPrefix(path, "/uncertified/"):
		signer = "carol" // certified by the root, but not for OCSP signing
	}
	tmpl.Certificate = o.pki.certs[signer] // the signer travels with the response
	resp, err := ocsp.CreateResponse(o.pki.certs[issuer], o.pki.certs[signer], tmpl, o.pki.keys[signer])
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	if strings.HasPrefix(path, "/badtype/") {
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	w.Write(resp)
}

// TestSSLOCSP: ssl_ocsp asks the OCSP responder about a client's
// certificate (ssl_ocsp leaf) or every certificate of its chain but the
// root (on) once it verified; a revoked one, one of unknown status, one
// whose status could not be had (a bad signature, no responder) fail the
// verification: 400 under ssl_verify_client, and $ssl_client_verify says
// why where the request's server does not verify. ssl_ocsp_cache keeps the
// answers until their nextUpdate.
func TestSSLOCSP(t *testing.T) {
	pki := newTestPKI(t)
	o := newOCSPResponder(t, pki)
	now := time.Now()
	leaf := func(cn string, aia []string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(50 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, OCSPServer: aia}
	}
	pki.issue(t, "carol", leaf("carol", nil), "root", false)
	pki.issue(t, "dave", leaf("dave", []string{o.URL + "/aia"}), "root", false)
	pki.issue(t, "responder", &x509.Certificate{Subject: pkix.Name{CommonName: "responder"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(50 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}, "root", false)
	pki.write(t, "trusted.crt", append(pemCert(pki.certs["int"]), pemCert(pki.certs["root"])...))
	conf := strings.NewReplacer("{{PKI}}", pki.dir, "{{R}}", o.URL, "{{NAMED}}", strings.Replace(o.URL, "127.0.0.1", "localhost", 1)).Replace(`
    ssl_certificate {{PKI}}/localhost.crt;
    ssl_certificate_key {{PKI}}/localhost.key;
    ssl_client_certificate {{PKI}}/trusted.crt;
    ssl_verify_depth 2;
    ssl_ocsp leaf;
    ssl_ocsp_responder {{R}}/leaf;
    add_header X-Verify $ssl_client_verify always;
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name localhost;
        ssl_verify_client on;
        location / { return 200 "in|$ssl_client_verify"; }
    }
    server {
        listen 127.0.0.1:{{PORT2}} ssl;
        server_name localhost;
        ssl_verify_client optional;
        location / { return 200 "in|$ssl_client_verify"; }
    }
    server {
        listen 127.0.0.1:{{PORT2}};
        server_name open;
        location / { return 200 "open|$ssl_client_verify"; }
    }
    server {
        listen 127.0.0.1:{{PORT3}} ssl;
        server_name localhost;
        ssl_verify_client on;
        ssl_ocsp on;
        location / { return 200 "in|$ssl_client_verify"; }
    }
    server {
        listen 127.0.0.1:{{PORT4}} ssl;
        server_name localhost;
        ssl_verify_client on;
        ssl_ocsp_responder {{R}}/wrong;
        location / { return 200 "in|$ssl_client_verify"; }
    }
    server {
        listen 127.0.0.1:{{PORT5}} ssl;
        server_name localhost;
        ssl_verify_client on;
        ssl_ocsp_cache shared:OCSPTEST:1m;
        location / { return 200 "in|$ssl_client_verify"; }
    }
    server {
        listen 127.0.0.1:{{PORT6}} ssl;
        server_name localhost;
        ssl_verify_client optional;
        ssl_ocsp off;
        location / { return 200 "in|$ssl_client_verify"; }
    }
    server {
        listen 127.0.0.1:{{PORT7}} ssl;
        server_name localhost;
        ssl_verify_client on;
        ssl_ocsp_responder {{R}}/delegated;
        location / { return 200 "in|$ssl_client_verify"; }
    }
    server {
        listen 127.0.0.1:{{PORT8}} ssl;
        server_name badtype;
        ssl_verify_client on;
        ssl_ocsp_responder {{R}}/badtype;
        location / { return 200 "in|$ssl_client_verify"; }
    }
    server {
        listen 127.0.0.1:{{PORT9}} ssl;
        server_name localhost;
        ssl_verify_client on;
        ssl_ocsp_responder {{NAMED}}/named;
        location / { return 200 "in|$ssl_client_verify"; }
    }
    server {
        listen 127.0.0.1:{{PORT8}} ssl;
        server_name localhost;
        ssl_verify_client on;
        ssl_ocsp_responder {{R}}/uncertified;
        location / { return 200 "in|$ssl_client_verify"; }
    }
`)
	refused := "(?s)^400 .*The SSL certificate error"
	type step struct {
		sslRequest
		before func()
	}
	steps := []step{
		{sslRequest: sslRequest{name: "leaf, good", cert: "alice", want: "200 in|SUCCESS"}},
		{sslRequest: sslRequest{name: "leaf, revoked", cert: "mallory", wantRe: refused}, before: func() { o.set("mallory", ocsp.Revoked) }},
		{sslRequest: sslRequest{name: "leaf, unknown", cert: "carol", wantRe: refused}, before: func() { o.set("carol", ocsp.Unknown) }},
		{sslRequest: sslRequest{name: "no certificate", wantRe: "(?s)^400 .*No required SSL certificate was sent"}},
		{sslRequest: sslRequest{name: "optional, revoked", port: 2, cert: "mallory", wantRe: refused}},
		{sslRequest: sslRequest{name: "optional, good", port: 2, cert: "alice", want: "200 in|SUCCESS"}},
		{sslRequest: sslRequest{name: "optional, none", port: 2, want: "200 in|NONE"}},
		{sslRequest: sslRequest{name: "server without verify, revoked", port: 2, host: "open", cert: "mallory", want: "200 open|FAILED:certificate revoked"}},
		{sslRequest: sslRequest{name: "server without verify, unknown", port: 2, host: "open", cert: "carol", want: "200 open|FAILED:certificate status unknown"}},
		// the intermediate revoked: only "on" looks at it
		{sslRequest: sslRequest{name: "leaf, revoked intermediate", cert: "bob", want: "200 in|SUCCESS"}, before: func() { o.set("int", ocsp.Revoked) }},
		{sslRequest: sslRequest{name: "on, revoked intermediate", port: 3, cert: "bob", wantRe: refused}},
		{sslRequest: sslRequest{name: "on, good chain", port: 3, cert: "bob", want: "200 in|SUCCESS"}, before: func() { o.set("int", ocsp.Good) }},
		{sslRequest: sslRequest{name: "on, root-issued", port: 3, cert: "alice", want: "200 in|SUCCESS"}},
		// a response the issuer did not sign
		{sslRequest: sslRequest{name: "wrong signer", port: 4, cert: "bob", wantRe: refused}},
		{sslRequest: sslRequest{name: "issuer signs", port: 4, cert: "alice", want: "200 in|SUCCESS"}},
		// the cache keeps "good" until nextUpdate; without it the
		// revocation is seen at once
		{sslRequest: sslRequest{name: "cache store", port: 5, cert: "dave", want: "200 in|SUCCESS"}},
		{sslRequest: sslRequest{name: "cache lookup", port: 5, cert: "dave", want: "200 in|SUCCESS"}, before: func() { o.set("dave", ocsp.Revoked) }},
		{sslRequest: sslRequest{name: "uncached", cert: "dave", wantRe: refused}},
		{sslRequest: sslRequest{name: "ssl_ocsp off", port: 6, cert: "dave", want: "200 in|SUCCESS"}},
		// a responder the issuer certified for OCSP signing may answer
		{sslRequest: sslRequest{name: "delegated responder", port: 7, cert: "alice", want: "200 in|SUCCESS"}},
		{sslRequest: sslRequest{name: "delegated responder, revoked", port: 7, cert: "mallory", wantRe: refused}},
		{sslRequest: sslRequest{name: "responder without OCSP signing", port: 8, cert: "alice", wantRe: refused}},
		{sslRequest: sslRequest{name: "answer of another type", port: 8, sni: "badtype", host: "badtype", cert: "alice", wantRe: refused}},
		// a configured responder's name was resolved at load
		{sslRequest: sslRequest{name: "named responder", port: 9, cert: "alice", want: "200 in|SUCCESS"}},
	}
	for _, kind := range []string{"nginx", "ngxsockify"} {
		t.Run(kind, func(t *testing.T) {
			o.reset()
			s := startServer(t, kind, ServerOptions{HTTP: conf})
			for _, st := range steps {
				if st.before != nil {
					st.before()
				}
				rq := st.sslRequest
				got := sslGet(s.Ports, pki, rq, nil)
				switch {
				case rq.want != "" && got.text != rq.want:
					t.Errorf("%s: got %q, want %q", rq.name, got.text, rq.want)
				case rq.wantRe != "" && !regexp.MustCompile(rq.wantRe).MatchString(got.text):
					t.Errorf("%s: got %q, want a match of %q", rq.name, got.text, rq.wantRe)
				}
			}
			s.Stop()
			el := s.ErrorLog()
			for _, l := range []string{
				"client SSL certificate verify error: certificate revoked while reading client request headers",
				"client SSL certificate verify error: certificate status unknown while reading client request headers",
				"client SSL certificate verify error: certificate status request failed while reading client request headers",
				"OCSP_basic_verify() failed (SSL: error:13800070:OCSP routines::root ca not trusted) while requesting certificate status, responder: 127.0.0.1, peer: " + strings.TrimPrefix(o.URL, "http://"),
				`[error]`, `OCSP responder sent invalid "Content-Type" header: "application/octet-stream" while requesting certificate status, responder: 127.0.0.1, peer: ` + strings.TrimPrefix(o.URL, "http://"),
				"[warn]", "no resolver defined to resolve localhost while requesting certificate status, responder: localhost",
			} {
				if !strings.Contains(el, l) {
					t.Errorf("error log lacks %q:\n%s", l, el)
				}
			}
		})
	}
}

// TestSSLOCSPNoResponder: a certificate without an OCSP URL, and no
// ssl_ocsp_responder: its status cannot be had, the client is refused.
func TestSSLOCSPNoResponder(t *testing.T) {
	pki := newTestPKI(t)
	now := time.Now()
	pki.issue(t, "named", &x509.Certificate{Subject: pkix.Name{CommonName: "named"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(50 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, OCSPServer: []string{"http://localhost:1/ocsp"}}, "root", false)
	pki.issue(t, "ftp", &x509.Certificate{Subject: pkix.Name{CommonName: "ftp"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(50 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, OCSPServer: []string{"ftp://127.0.0.1/ocsp"}}, "root", false)
	conf := strings.ReplaceAll(`
    ssl_certificate {{PKI}}/localhost.crt;
    ssl_certificate_key {{PKI}}/localhost.key;
    ssl_client_certificate {{PKI}}/root.crt;
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        ssl_verify_client optional;
        ssl_ocsp on;
        location / { return 200 "in|$ssl_client_verify"; }
    }
    server {
        listen 127.0.0.1:{{PORT}};
        server_name open;
        location / { return 200 "open|$ssl_client_verify"; }
    }
`, "{{PKI}}", pki.dir)
	runSSLCase(t, pki, conf, []sslRequest{
		{name: "no URL", cert: "alice", wantRe: "(?s)^400 .*The SSL certificate error"},
		{name: "no URL, server without verify", host: "open", cert: "alice", want: "200 open|FAILED:certificate status request failed"},
		{name: "no certificate", want: "200 in|NONE"},
		// a name in the certificate's URL needs a resolver
		{name: "named URL, no resolver", host: "open", cert: "named", want: "200 open|FAILED:certificate status request failed"},
		{name: "URL of another scheme", host: "open", cert: "ftp", want: "200 open|FAILED:certificate status request failed"},
	}, "no OCSP responder URL in certificate while SSL handshaking, client: 127.0.0.1, server: 127.0.0.1:",
		"[error]", "no resolver defined to resolve localhost while requesting certificate status, responder: localhost",
		`invalid URL prefix in OCSP responder "ftp://127.0.0.1/ocsp" in certificate while SSL handshaking, client: 127.0.0.1, server: 127.0.0.1:`)
}

func pemCert(c *x509.Certificate) []byte {
	var b bytes.Buffer
	b.WriteString("-----BEGIN CERTIFICATE-----\n")
	enc := base64.StdEncoding.EncodeToString(c.Raw)
	for len(enc) > 64 {
		b.WriteString(enc[:64] + "\n")
		enc = enc[64:]
	}
	b.WriteString(enc + "\n-----END CERTIFICATE-----\n")
	return b.Bytes()
}
