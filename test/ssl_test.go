package test

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// The TLS differential suite: each case's config runs on real nginx (when
// installed) and on ngxsockify, with certificates made here, and the same
// clients must get the same answers from both.

// testPKI is a small certificate authority and the certificates the cases
// use, as PEM files in dir.
type testPKI struct {
	dir    string
	serial int64
	certs  map[string]*x509.Certificate
	keys   map[string]crypto.Signer
	chains map[string][][]byte // DER, the certificate first, as the client sends it
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), serial: 0x1000, certs: map[string]*x509.Certificate{},
		keys: map[string]crypto.Signer{}, chains: map[string][][]byte{}}
	now := time.Now()
	ca := func(name string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(72 * time.Hour)}
	}
	leaf := func(subject pkix.Name, notAfter time.Time) *x509.Certificate {
		return &x509.Certificate{Subject: subject, NotBefore: now.Add(-48 * time.Hour), NotAfter: notAfter,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	}
	p.issue(t, "root", ca("Test Root"), "", false)
	p.issue(t, "int", ca("Test Intermediate"), "root", false)
	p.issue(t, "alice", leaf(pkix.Name{CommonName: "alice", Organization: []string{"Example, Inc."}, Country: []string{"DE"}}, now.Add(50*time.Hour)), "root", false)
	p.issue(t, "mallory", leaf(pkix.Name{CommonName: "mallory"}, now.Add(50*time.Hour)), "root", false)
	p.issue(t, "old", leaf(pkix.Name{CommonName: "old"}, now.Add(-time.Hour)), "root", false)
	p.issue(t, "bob", leaf(pkix.Name{CommonName: "bob"}, now.Add(50*time.Hour)), "int", false)
	p.issue(t, "eve", leaf(pkix.Name{CommonName: "eve"}, now.Add(50*time.Hour)), "", false)
	p.issue(t, "localhost", leaf(pkix.Name{CommonName: "localhost"}, now.Add(50*time.Hour)), "", false)
	p.issue(t, "rsa", leaf(pkix.Name{CommonName: "rsa"}, now.Add(50*time.Hour)), "", true)

	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(24 * time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: p.certs["mallory"].SerialNumber, RevocationTime: now.Add(-time.Minute)}},
	}, p.certs["root"], p.keys["root"])
	if err != nil {
		t.Fatal(err)
	}
	p.write(t, "root.crl", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl}))
	return p
}

// issue makes name's key and certificate, signed by parent ("" for
// self-signed), and writes name.crt and name.key.
func (p *testPKI) issue(t *testing.T, name string, tmpl *x509.Certificate, parent string, useRSA bool) {
	t.Helper()
	var key crypto.Signer
	var err error
	if useRSA {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	p.serial++
	tmpl.SerialNumber = big.NewInt(p.serial)
	signer, signerCert := key, tmpl
	if parent != "" {
		signer, signerCert = p.keys[parent], p.certs[parent]
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p.certs[name], p.keys[name] = cert, key
	p.chains[name] = [][]byte{der}
	if parent != "" && parent != "root" {
		p.chains[name] = append(p.chains[name], p.certs[parent].Raw)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p.write(t, name+".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	p.write(t, name+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}))
}

func (p *testPKI) write(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(p.dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// concat writes name as the concatenation of the PKI's files parts (a
// certificate and its chain).
func (p *testPKI) concat(t *testing.T, name string, parts ...string) {
	t.Helper()
	var data []byte
	for _, f := range parts {
		b, err := os.ReadFile(p.path(f))
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b...)
	}
	p.write(t, name, data)
}

// path is the absolute path of one of the PKI's files.
func (p *testPKI) path(name string) string { return filepath.Join(p.dir, name) }

// clientCert is name's certificate (and the intermediate, if any) for a
// client to present.
func (p *testPKI) clientCert(name string) *tls.Certificate {
	return &tls.Certificate{Certificate: p.chains[name], PrivateKey: p.keys[name]}
}

// sslRequest is one request of a TLS case: over a new connection unless
// it resumes the previous one's session.
type sslRequest struct {
	name     string
	port     int    // 0: {{PORT}}, 2: {{PORT2}} ...
	sni      string // "" sends none
	host     string // the Host header ("localhost" when empty)
	path     string // "/" when empty
	cert     string // the client certificate's name in the PKI
	maxVer   uint16
	ciphers  []uint16
	curves   []tls.CurveID
	resume   bool          // reuse the session cache of the previous request
	wait     time.Duration // before connecting
	want     string        // status and body, or "handshake failed"
	wantRe   string        // or a regexp the status and body match
	noNginx  bool          // an ngxsockify-only check
	peerName string        // the CN of the certificate the server must show
	alert    bool          // a failed handshake reads "handshake failed: <the client's error>"
}

// sslResult is what a client saw: "<status> <body>" or "handshake failed",
// and the server's certificate.
type sslResult struct {
	text    string
	verify  string // X-Verify, when the config adds it
	peerCN  string
	reached bool
}

func sslGet(ports []int, pki *testPKI, rq sslRequest, cache tls.ClientSessionCache) sslResult {
	cfg := &tls.Config{InsecureSkipVerify: true, ServerName: rq.sni, MaxVersion: rq.maxVer, CipherSuites: rq.ciphers, CurvePreferences: rq.curves, ClientSessionCache: cache}
	if rq.cert != "" {
		// sent whatever CAs the server names, as the suites' clients do
		cert := pki.clientCert(rq.cert)
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	port := ports[0]
	if rq.port > 1 {
		port = ports[rq.port-1]
	}
	d := &tls.Dialer{Config: cfg}
	conn, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		if rq.alert {
			return sslResult{text: "handshake failed: " + err.Error()}
		}
		return sslResult{text: "handshake failed"}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	tc := conn.(*tls.Conn)
	res := sslResult{reached: true}
	if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 {
		res.peerCN = pc[0].Subject.CommonName
	}
	host, path := rq.host, rq.path
	if host == "" {
		host = "localhost"
	}
	if path == "" {
		path = "/"
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		res.text = "read failed: " + err.Error()
		return res
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	res.text = fmt.Sprintf("%d %s", resp.StatusCode, body)
	res.verify = resp.Header.Get("X-Verify")
	return res
}

// runSSLCase runs reqs against the config on nginx and ngxsockify; then
// the error log of each must hold every line of logs.
func runSSLCase(t *testing.T, pki *testPKI, conf string, reqs []sslRequest, logs ...string) {
	conf = strings.ReplaceAll(conf, "{{PKI}}", pki.dir)
	for _, kind := range []string{"nginx", "ngxsockify"} {
		t.Run(kind, func(t *testing.T) {
			s := startServer(t, kind, ServerOptions{HTTP: conf})
			var cache tls.ClientSessionCache
			for _, rq := range reqs {
				if rq.noNginx && kind == "nginx" {
					continue
				}
				if !rq.resume {
					cache = tls.NewLRUClientSessionCache(4)
				}
				time.Sleep(rq.wait)
				got := sslGet(s.Ports, pki, rq, cache)
				switch {
				case rq.want != "" && got.text != rq.want:
					t.Errorf("%s: got %q, want %q", rq.name, got.text, rq.want)
				case rq.wantRe != "" && !regexp.MustCompile(rq.wantRe).MatchString(got.text):
					t.Errorf("%s: got %q, want a match of %q", rq.name, got.text, rq.wantRe)
				}
				if rq.peerName != "" && got.peerCN != rq.peerName {
					t.Errorf("%s: server certificate %q, want %q", rq.name, got.peerCN, rq.peerName)
				}
			}
			if len(logs) == 0 {
				return
			}
			s.Stop()
			el := s.ErrorLog()
			for _, l := range logs {
				if !strings.Contains(el, l) {
					t.Errorf("error log lacks %q:\n%s", l, el)
				}
			}
		})
	}
}

// TestSSLVerifyClientUnknownIssuer: the verify result OpenSSL gives a
// client chain it cannot complete to a trusted self-signed certificate
// ($ssl_client_verify under optional_no_ca): one certificate whose issuer
// is unknown (21), a chain whose top's issuer is (20), a chain that ends
// at a trusted certificate that is not self-signed (2, which
// optional_no_ca does not let pass).
func TestSSLVerifyClientUnknownIssuer(t *testing.T) {
	pki := newTestPKI(t)
	conf := `
    ssl_certificate {{PKI}}/localhost.crt;
    ssl_certificate_key {{PKI}}/localhost.key;
    ssl_verify_client optional_no_ca;
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        ssl_client_certificate {{PKI}}/eve.crt;
        location / { return 200 "in|$ssl_client_verify"; }
    }
    server {
        listen 127.0.0.1:{{PORT2}} ssl;
        ssl_client_certificate {{PKI}}/int.crt;
        location / { return 200 "in|$ssl_client_verify"; }
    }
`
	runSSLCase(t, pki, conf, []sslRequest{
		{name: "one certificate", cert: "alice", want: "200 in|FAILED:unable to verify the first certificate"},
		{name: "a chain", cert: "bob", want: "200 in|FAILED:unable to get local issuer certificate"},
		// 2 is not among the errors optional_no_ca lets pass
		{name: "a trusted intermediate", port: 2, cert: "bob", wantRe: "(?s)^400 .*The SSL certificate error"},
	}, "client SSL certificate verify error: (2:unable to get issuer certificate) while reading client request headers")
}

// errPage is the start of nginx's special 400 pages.
func errPage(note string) string {
	return "400 <html>\r\n<head><title>400 " + note + "</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>" + note + "</center>\r\n"
}

// TestSSLVerifyClient: ssl_verify_client on lets in only a client whose
// certificate chains to ssl_client_certificate, is in date, not revoked
// (ssl_crl) and within ssl_verify_depth; everyone else gets nginx's 400
// before any location runs. optional admits clients without one;
// optional_no_ca also those whose issuer is unknown.
func TestSSLVerifyClient(t *testing.T) {
	pki := newTestPKI(t)
	conf := `
    ssl_certificate {{PKI}}/localhost.crt;
    ssl_certificate_key {{PKI}}/localhost.key;
    ssl_client_certificate {{PKI}}/root.crt;
    add_header X-Verify $ssl_client_verify always;
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name localhost;
        ssl_verify_client on;
        ssl_crl {{PKI}}/root.crl;
        location / { return 200 "in|$ssl_client_verify|$ssl_client_s_dn|$ssl_client_i_dn|$ssl_client_s_dn_legacy|$ssl_client_serial|$ssl_client_v_remain"; }
        location /fp { return 200 "$ssl_client_fingerprint"; }
    }
    server {
        listen 127.0.0.1:{{PORT2}} ssl;
        server_name localhost;
        ssl_verify_client optional;
        ssl_verify_depth 0;
        ssl_trusted_certificate {{PKI}}/int.crt;
        location / { return 200 "in|$ssl_client_verify|$ssl_client_s_dn"; }
    }
    server {
        listen 127.0.0.1:{{PORT3}} ssl;
        server_name localhost;
        ssl_verify_client optional_no_ca;
        location / { return 200 "in|$ssl_client_verify"; }
        location /cert { return 200 "$ssl_client_cert"; }
    }
    server {
        listen 127.0.0.1:{{PORT3}} ssl;
        server_name locked;
        ssl_verify_client on;
        location / { return 200 "in|locked"; }
    }
    server {
        listen 127.0.0.1:{{PORT4}};
        server_name localhost;
        ssl_verify_client on;
        location / { return 200 "plain|$ssl_client_verify|$ssl_client_s_dn|"; }
    }
`
	alice := "200 in|SUCCESS|CN=alice,O=Example\\, Inc.,C=DE|CN=Test Root|/C=DE/O=Example, Inc./CN=alice|" +
		fmt.Sprintf("%X", pki.certs["alice"].SerialNumber) + "|2"
	runSSLCase(t, pki, conf, []sslRequest{
		{name: "on, no certificate", wantRe: "^" + regexp.QuoteMeta(errPage("No required SSL certificate was sent"))},
		{name: "on, good certificate", cert: "alice", want: alice},
		{name: "on, self-signed", cert: "eve", wantRe: "^" + regexp.QuoteMeta(errPage("The SSL certificate error"))},
		{name: "on, expired", cert: "old", wantRe: "(?s)^400 .*The SSL certificate error"},
		{name: "on, revoked", cert: "mallory", wantRe: "(?s)^400 .*The SSL certificate error"},
		{name: "on, intermediate without a CRL", cert: "bob", wantRe: "(?s)^400 .*The SSL certificate error"},
		{name: "on, fingerprint", cert: "alice", path: "/fp", wantRe: "^200 [0-9a-f]{40}$"},
		{name: "optional, none", port: 2, want: "200 in|NONE|"},
		{name: "optional, good", port: 2, cert: "alice", want: "200 in|SUCCESS|CN=alice,O=Example\\, Inc.,C=DE"},
		{name: "optional, self-signed", port: 2, cert: "eve", wantRe: "(?s)^400 .*The SSL certificate error"},
		{name: "optional, chain over the depth", port: 2, cert: "bob", wantRe: "(?s)^400 .*The SSL certificate error"},
		{name: "optional_no_ca, self-signed", port: 3, cert: "eve", want: "200 in|FAILED:self-signed certificate"},
		{name: "optional_no_ca, expired", port: 3, cert: "old", wantRe: "(?s)^400 .*The SSL certificate error"},
		{name: "optional_no_ca, none", port: 3, want: "200 in|NONE"},
		{name: "optional_no_ca, cert", port: 3, cert: "eve", path: "/cert", wantRe: "^200 -----BEGIN CERTIFICATE-----\n\t[^\n]+\n\t"},
		// A server that verifies, reached with another server's SNI: 421;
		// without SNI its Host picks it and it refuses the certificate-less
		// client itself.
		{name: "misdirected", port: 3, sni: "localhost", host: "locked", want: "421 <html>\r\n<head><title>421 Misdirected Request</title></head>\r\n<body>\r\n<center><h1>421 Misdirected Request</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"},
		{name: "no SNI, Host of a verifying server", port: 3, host: "locked", wantRe: "(?s)^400 .*No required SSL certificate was sent"},
		{name: "SNI and Host of a verifying server", port: 3, sni: "locked", host: "locked", cert: "eve", wantRe: "(?s)^400 .*The SSL certificate error"},
	},
		`[info]`, `client sent no required SSL certificate while reading client request headers, client: 127.0.0.1, server: localhost, request: "GET / HTTP/1.0", host: "localhost"`,
		// the self-signed certificate where CRLs are checked: the last error
		// OpenSSL found is the missing CRL
		`*4 client SSL certificate verify error: (3:unable to get certificate CRL) while reading client request headers, client: 127.0.0.1, server: localhost, request: "GET / HTTP/1.0", host: "localhost"`,
		`*5 client SSL certificate verify error: (10:certificate has expired) while reading client request headers`,
		`*6 client SSL certificate verify error: (23:certificate revoked) while reading client request headers`,
		`*7 client SSL certificate verify error: (3:unable to get certificate CRL) while reading client request headers`,
		`*11 client SSL certificate verify error: (18:self-signed certificate) while reading client request headers, client: 127.0.0.1, server: localhost, request: "GET / HTTP/1.0", host: "localhost"`,
		// over ssl_verify_depth the chain stops short of the root
		`*12 client SSL certificate verify error: (2:unable to get issuer certificate) while reading client request headers`,
		`*17 client attempted to request the server name different from the one that was negotiated while reading client request headers, client: 127.0.0.1, server: localhost, request: "GET / HTTP/1.0", host: "locked"`,
		`*19 client SSL certificate verify error: (18:self-signed certificate) while reading client request headers, client: 127.0.0.1, server: locked, request: "GET / HTTP/1.0", host: "locked"`,
	)
	for _, kind := range []string{"nginx", "ngxsockify"} {
		t.Run("plain/"+kind, func(t *testing.T) {
			s := startServer(t, kind, ServerOptions{HTTP: strings.ReplaceAll(conf, "{{PKI}}", pki.dir)})
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", s.Ports[3]))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "plain|||" || resp.Header.Get("X-Verify") != "" {
				t.Errorf("plain request: %q, X-Verify %q", body, resp.Header.Get("X-Verify"))
			}
		})
	}
}

// TestSSLVerifyClientKeepAlive: a refused client cannot try again on the
// same connection (nginx closes it after the 400).
func TestSSLVerifyClientKeepAlive(t *testing.T) {
	pki := newTestPKI(t)
	s := startNgxsockify(t, strings.ReplaceAll(`
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        ssl_certificate {{PKI}}/localhost.crt;
        ssl_certificate_key {{PKI}}/localhost.key;
        ssl_client_certificate {{PKI}}/root.crt;
        ssl_verify_client on;
        location / { return 200 "in"; }
    }`, "{{PKI}}", pki.dir))
	conn, err := tls.Dial("tcp", s.Addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
	all, _ := io.ReadAll(conn)
	if strings.Count(string(all), "HTTP/1.1 400") != 1 || strings.Contains(string(all), "200 OK") {
		t.Errorf("two pipelined requests without a certificate: %q", all)
	}
}

// TestSSLSessions: ssl_session_tickets and ssl_session_cache decide
// whether a session resumes ($ssl_session_reused), ssl_session_timeout how
// long; $ssl_session_id names the session.
func TestSSLSessions(t *testing.T) {
	pki := newTestPKI(t)
	conf := `
    ssl_certificate {{PKI}}/localhost.crt;
    ssl_certificate_key {{PKI}}/localhost.key;
    server { listen 127.0.0.1:{{PORT}} ssl; location / { return 200 "$ssl_session_reused"; } location /id { return 200 "$ssl_session_id"; } }
    server { listen 127.0.0.1:{{PORT2}} ssl; ssl_session_tickets off; ssl_session_cache shared:S:1m; location / { return 200 "$ssl_session_reused"; } location /id { return 200 "$ssl_session_id"; } }
    server { listen 127.0.0.1:{{PORT3}} ssl; ssl_session_tickets off; ssl_session_cache off; location / { return 200 "$ssl_session_reused"; } location /id { return 200 "$ssl_session_id"; } }
    server { listen 127.0.0.1:{{PORT4}} ssl; ssl_session_tickets off; location / { return 200 "$ssl_session_reused"; } }
    server { listen 127.0.0.1:{{PORT5}} ssl; ssl_session_timeout 1s; location / { return 200 "$ssl_session_reused"; } }
`
	runSSLCase(t, pki, conf, []sslRequest{
		{name: "tickets", want: "200 ."},
		{name: "tickets resumed", resume: true, want: "200 r"},
		// OpenSSL names a new session only when a server-side cache keeps it
		{name: "session id", path: "/id", want: "200 "},
		{name: "session id resumed", path: "/id", resume: true, wantRe: "^200 [0-9a-f]{64}$"},
		{name: "TLS 1.2 session id", path: "/id", maxVer: tls.VersionTLS12, want: "200 "},
		{name: "TLS 1.2 session id resumed", path: "/id", maxVer: tls.VersionTLS12, resume: true, wantRe: "^200 [0-9a-f]{64}$"},
		{name: "TLS 1.2 resumed", maxVer: tls.VersionTLS12, resume: true, want: "200 r"},
		{name: "TLS 1.2, cache off", port: 3, path: "/id", maxVer: tls.VersionTLS12, want: "200 "},
		{name: "TLS 1.2, cache", port: 2, path: "/id", maxVer: tls.VersionTLS12, wantRe: "^200 [0-9a-f]{64}$"},
		{name: "TLS 1.2, cache, resumed", port: 2, path: "/id", maxVer: tls.VersionTLS12, resume: true, wantRe: "^200 [0-9a-f]{64}$"},
		{name: "TLS 1.3, cache", port: 2, path: "/id", wantRe: "^200 [0-9a-f]{64}$"},
		{name: "TLS 1.2, cache off, not resumed", port: 3, maxVer: tls.VersionTLS12, resume: true, want: "200 ."},
		{name: "cache", port: 2, want: "200 ."},
		// nginx (OpenSSL's stateful TLS 1.3 tickets) does not resume these
		// with crypto/tls clients; it does with OpenSSL's, as
		// ssl_session_reuse.t shows.
		{name: "cache resumed", port: 2, resume: true, want: "200 r", noNginx: true},
		{name: "cache off", port: 3, want: "200 ."},
		{name: "cache off not resumed", port: 3, resume: true, want: "200 ."},
		{name: "cache none", port: 4, want: "200 ."},
		{name: "cache none not resumed", port: 4, resume: true, want: "200 ."},
		{name: "timeout", port: 5, want: "200 ."},
		{name: "timeout resumed in time", port: 5, resume: true, want: "200 r"},
		{name: "timeout expired", port: 5, resume: true, wait: 2100 * time.Millisecond, want: "200 ."},
	})
}

// TestSSLCertificatesAndProtocols: RSA and ECDSA certificates in one
// server, picked by what the client accepts; the address's default server's
// ssl_protocols hold for every server on it; $ssl_protocol, $ssl_cipher and
// $ssl_ciphers in OpenSSL's words.
func TestSSLCertificatesAndProtocols(t *testing.T) {
	pki := newTestPKI(t)
	conf := `
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name localhost;
        ssl_certificate {{PKI}}/localhost.crt;
        ssl_certificate_key {{PKI}}/localhost.key;
        ssl_certificate {{PKI}}/rsa.crt;
        ssl_certificate_key {{PKI}}/rsa.key;
        ssl_protocols TLSv1.3;
        location / { return 200 "$ssl_protocol|$ssl_cipher"; }
        location /ciphers { return 200 "$ssl_ciphers"; }
    }
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name other;
        ssl_certificate {{PKI}}/rsa.crt;
        ssl_certificate_key {{PKI}}/rsa.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { return 200 "other|$ssl_protocol"; }
    }
    server {
        listen 127.0.0.1:{{PORT2}} ssl;
        ssl_certificate {{PKI}}/localhost.crt;
        ssl_certificate_key {{PKI}}/localhost.key;
        ssl_certificate {{PKI}}/rsa.crt;
        ssl_certificate_key {{PKI}}/rsa.key;
        location / { return 200 "$ssl_protocol|$ssl_cipher"; }
    }
`
	runSSLCase(t, pki, conf, []sslRequest{
		// crypto/tls prefers RSA-PSS to ECDSA signatures, and OpenSSL follows
		// the client's order
		{name: "TLS 1.3", want: "200 TLSv1.3|TLS_AES_128_GCM_SHA256", peerName: "rsa"},
		{name: "TLS 1.2 refused", maxVer: tls.VersionTLS12, want: "handshake failed"},
		{name: "TLS 1.2 refused for the SNI server too", sni: "other", host: "other", maxVer: tls.VersionTLS12, want: "handshake failed"},
		{name: "SNI server, TLS 1.3", sni: "other", host: "other", want: "200 other|TLSv1.3", peerName: "rsa"},
		{name: "client ciphers", path: "/ciphers", wantRe: "^200 ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:.*:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256$"},
		{name: "ECDSA", port: 2, maxVer: tls.VersionTLS12, ciphers: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
			want: "200 TLSv1.2|ECDHE-ECDSA-AES128-GCM-SHA256", peerName: "localhost"},
		{name: "RSA", port: 2, maxVer: tls.VersionTLS12, ciphers: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384},
			want: "200 TLSv1.2|ECDHE-RSA-AES256-GCM-SHA384", peerName: "rsa"},
	})
}

// TestSSLRejectHandshake: ssl_reject_handshake on fails the handshakes that
// select its server, by SNI or as the address's default server (also
// without SNI), with the alert unrecognized_name; such a default server
// needs no certificate (nginx-tests ssl_reject_handshake.t).
func TestSSLRejectHandshake(t *testing.T) {
	pki := newTestPKI(t)
	conf := `
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name localhost;
        ssl_reject_handshake on;
        location / { return 200 "default"; }
    }
    server {
        listen 127.0.0.1:{{PORT}};
        server_name virtual;
        ssl_certificate {{PKI}}/localhost.crt;
        ssl_certificate_key {{PKI}}/localhost.key;
        location / { return 200 "virtual $ssl_server_name"; }
    }
    server {
        listen 127.0.0.1:{{PORT2}} ssl;
        server_name localhost;
        ssl_certificate {{PKI}}/localhost.crt;
        ssl_certificate_key {{PKI}}/localhost.key;
        location / { return 200 "default2 $ssl_server_name"; }
    }
    server {
        listen 127.0.0.1:{{PORT2}};
        server_name virtual2;
        ssl_reject_handshake on;
    }
    server {
        listen 127.0.0.1:{{PORT2}};
        server_name virtual3;
        ssl_reject_handshake off;
        location / { return 200 "virtual3"; }
    }
`
	const rejected = "handshake failed: remote error: tls: unrecognized name"
	runSSLCase(t, pki, conf, []sslRequest{
		{name: "default rejected", sni: "localhost", alert: true, want: rejected},
		{name: "no SNI rejected", alert: true, want: rejected},
		{name: "unknown name rejected", sni: "nowhere", alert: true, want: rejected},
		{name: "TLS 1.2 rejected", maxVer: tls.VersionTLS12, alert: true, want: rejected},
		{name: "virtual accepted", sni: "virtual", host: "virtual", want: "200 virtual virtual"},
		{name: "default accepted", port: 2, sni: "localhost", want: "200 default2 localhost"},
		{name: "no SNI accepted", port: 2, want: "200 default2 "},
		{name: "named server rejected", port: 2, sni: "virtual2", host: "virtual2", alert: true, want: rejected},
		{name: "off accepted", port: 2, sni: "virtual3", host: "virtual3", want: "200 virtual3"},
	})
}

// TestSSLCiphers: ssl_ciphers chooses the TLS 1.2 suites; its default,
// HIGH:!aNULL:!MD5, has those with RSA key exchange, which crypto/tls
// leaves out unless asked for (nginx-tests ssl_certificates.t). A server
// SNI names uses its own list (unlike its protocols: the default server's).
func TestSSLCiphers(t *testing.T) {
	pki := newTestPKI(t)
	conf := `
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name localhost;
        ssl_certificate {{PKI}}/rsa.crt;
        ssl_certificate_key {{PKI}}/rsa.key;
        location / { return 200 "$ssl_protocol|$ssl_cipher"; }
    }
    server {
        listen 127.0.0.1:{{PORT2}} ssl;
        server_name localhost;
        ssl_certificate {{PKI}}/rsa.crt;
        ssl_certificate_key {{PKI}}/rsa.key;
        ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256;
        location / { return 200 "$ssl_protocol|$ssl_cipher"; }
    }
    server {
        listen 127.0.0.1:{{PORT2}} ssl;
        server_name other;
        ssl_certificate {{PKI}}/rsa.crt;
        ssl_certificate_key {{PKI}}/rsa.key;
        ssl_ciphers AES128-GCM-SHA256;
        location / { return 200 "other|$ssl_protocol|$ssl_cipher"; }
    }
`
	tls12 := func(name string, port int, sni string, suite uint16, want string) sslRequest {
		return sslRequest{name: name, port: port, sni: sni, host: sni, maxVer: tls.VersionTLS12, ciphers: []uint16{suite}, want: want}
	}
	runSSLCase(t, pki, conf, []sslRequest{
		tls12("default, RSA key exchange", 0, "", tls.TLS_RSA_WITH_AES_128_GCM_SHA256, "200 TLSv1.2|AES128-GCM-SHA256"),
		tls12("default, CBC SHA-256", 0, "", tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, "200 TLSv1.2|ECDHE-RSA-AES128-SHA256"),
		tls12("listed", 2, "", tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "200 TLSv1.2|ECDHE-RSA-AES128-GCM-SHA256"),
		tls12("not listed", 2, "", tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, "handshake failed"),
		tls12("SNI server: its own list", 2, "other", tls.TLS_RSA_WITH_AES_128_GCM_SHA256, "200 other|TLSv1.2|AES128-GCM-SHA256"),
		tls12("SNI server: not the default server's list", 2, "other", tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "handshake failed"),
	})
}

// TestSSLCurves: ssl_ecdh_curve limits the key exchange groups (the
// address's default server's, unlike the ciphers); $ssl_curve names the
// one chosen, none under RSA key exchange, and $ssl_curves the client's,
// in OpenSSL's words (nginx-tests ssl_curve.t).
func TestSSLCurves(t *testing.T) {
	pki := newTestPKI(t)
	conf := `
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name localhost;
        ssl_certificate {{PKI}}/rsa.crt;
        ssl_certificate_key {{PKI}}/rsa.key;
        ssl_ecdh_curve secp384r1:prime256v1;
        location / { return 200 "$ssl_curve|$ssl_curves"; }
    }
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name other;
        ssl_certificate {{PKI}}/rsa.crt;
        ssl_certificate_key {{PKI}}/rsa.key;
        ssl_ecdh_curve X25519;
        location / { return 200 "other|$ssl_curve"; }
    }
    server {
        listen 127.0.0.1:{{PORT2}} ssl;
        ssl_certificate {{PKI}}/rsa.crt;
        ssl_certificate_key {{PKI}}/rsa.key;
        location / { return 200 "$ssl_curve|$ssl_curves"; }
    }
`
	p256, p384, x25519 := []tls.CurveID{tls.CurveP256}, []tls.CurveID{tls.CurveP384}, []tls.CurveID{tls.X25519}
	runSSLCase(t, pki, conf, []sslRequest{
		{name: "listed", curves: p384, want: "200 secp384r1|secp384r1"},
		{name: "listed second", curves: []tls.CurveID{tls.X25519, tls.CurveP256}, want: "200 prime256v1|X25519:prime256v1"},
		{name: "not listed", curves: x25519, want: "handshake failed"},
		{name: "TLS 1.2", maxVer: tls.VersionTLS12, curves: p256, want: "200 prime256v1|prime256v1"},
		{name: "SNI server: the default server's list", sni: "other", host: "other", curves: x25519, want: "handshake failed"},
		{name: "SNI server", sni: "other", host: "other", curves: p384, want: "200 other|secp384r1"},
		// OpenSSL's order (X25519, prime256v1, ...), not the client's
		{name: "auto", port: 2, curves: []tls.CurveID{tls.CurveP521, tls.CurveP256}, want: "200 prime256v1|prime256v1:secp521r1"},
		{name: "RSA key exchange: none", port: 2, maxVer: tls.VersionTLS12, ciphers: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}, want: "200 |X25519:prime256v1:secp384r1:secp521r1"},
	})
}

// TestSSLClientVariables: $ssl_client_escaped_cert is $ssl_client_raw_cert
// escaped as an URI component.
func TestSSLClientVariables(t *testing.T) {
	pki := newTestPKI(t)
	conf := `
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        ssl_certificate {{PKI}}/localhost.crt;
        ssl_certificate_key {{PKI}}/localhost.key;
        ssl_verify_client optional_no_ca;
        location /raw { return 200 "$ssl_client_raw_cert"; }
        location /esc { return 200 "$ssl_client_escaped_cert"; }
        location /time { return 200 "$ssl_client_v_start|$ssl_client_v_end"; }
    }
`
	c := pki.certs["alice"]
	raw := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	esc := url.PathEscape(raw)
	esc = strings.NewReplacer("=", "%3D", "+", "%2B", "/", "%2F", "&", "%26", "$", "%24", "!", "%21", "'", "%27", "(", "%28", ")", "%29", "*", "%2A", ",", "%2C", ";", "%3B", ":", "%3A", "@", "%40").Replace(esc)
	when := func(t time.Time) string { return t.UTC().Format("Jan _2 15:04:05 2006 GMT") }
	runSSLCase(t, pki, conf, []sslRequest{
		{name: "raw", path: "/raw", cert: "alice", want: "200 " + raw},
		{name: "escaped", path: "/esc", cert: "alice", want: "200 " + esc},
		{name: "times", path: "/time", cert: "alice", want: "200 " + when(c.NotBefore) + "|" + when(c.NotAfter)},
		{name: "none", path: "/raw", want: "200 "},
	})
}

// TestSSLPasswordFile: encrypted keys, in OpenSSL's PKCS#8 forms and the
// legacy DEK-Info one, open with the ssl_password_file line that fits.
func TestSSLPasswordFile(t *testing.T) {
	openssl := requireTool(t, "openssl")
	pki := newTestPKI(t)
	key := pki.path("localhost.key")
	variants := map[string][]string{
		"pkcs8-default": {"pkcs8", "-topk8", "-in", key, "-passout", "pass:right"},
		"pkcs8-aes128":  {"pkcs8", "-topk8", "-in", key, "-v2", "aes128", "-v2prf", "hmacWithSHA1", "-passout", "pass:right"},
		"pkcs8-des3":    {"pkcs8", "-topk8", "-in", key, "-v2", "des3", "-v2prf", "hmacWithSHA512", "-passout", "pass:right"},
		"legacy-aes":    {"pkey", "-in", key, "-aes128", "-passout", "pass:right", "-traditional"},
	}
	var conf strings.Builder
	conf.WriteString("    ssl_certificate {{PKI}}/localhost.crt;\n    ssl_password_file {{PKI}}/passwords;\n")
	var reqs []sslRequest
	port := 1
	for _, name := range []string{"pkcs8-default", "pkcs8-aes128", "pkcs8-des3", "legacy-aes"} {
		out, err := exec.Command(openssl, variants[name]...).Output()
		if err != nil {
			t.Fatalf("openssl %v: %v", variants[name], err)
		}
		if !strings.Contains(string(out), "ENCRYPTED") {
			t.Fatalf("%s: not encrypted:\n%s", name, out)
		}
		pki.write(t, name+".key", out)
		placeholder := "{{PORT}}"
		if port > 1 {
			placeholder = fmt.Sprintf("{{PORT%d}}", port)
		}
		fmt.Fprintf(&conf, "    server { listen 127.0.0.1:%s ssl; ssl_certificate_key {{PKI}}/%s.key; location / { return 200 %q; } }\n", placeholder, name, name)
		reqs = append(reqs, sslRequest{name: name, port: port, want: "200 " + name})
		port++
	}
	pki.write(t, "passwords", []byte("wrong\r\n\r\nright\r\n"))
	runSSLCase(t, pki, conf.String(), reqs)
}

// TestSSLStaplingFile: under ssl_stapling on, ssl_stapling_file's DER OCSP
// response is stapled to the server's certificates for a client that asks
// (crypto/tls's client always does); ssl_stapling off, or no file, staples
// nothing (ngxsockify asks no OCSP responder).
func TestSSLStaplingFile(t *testing.T) {
	pki := newTestPKI(t)
	now := time.Now()
	resp, err := ocsp.CreateResponse(pki.certs["root"], pki.certs["root"], ocsp.Response{
		Status: ocsp.Revoked, SerialNumber: pki.certs["alice"].SerialNumber, RevokedAt: now.Add(-time.Hour),
		ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour),
	}, pki.keys["root"])
	if err != nil {
		t.Fatal(err)
	}
	pki.write(t, "resp.der", resp)
	conf := strings.ReplaceAll(`
    ssl_certificate {{PKI}}/alice.crt;
    ssl_certificate_key {{PKI}}/alice.key;
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        ssl_stapling on;
        ssl_stapling_file {{PKI}}/resp.der;
        location / { return 200 "ok"; }
    }
    server {
        listen 127.0.0.1:{{PORT2}} ssl;
        ssl_stapling_file {{PKI}}/resp.der;
        location / { return 200 "ok"; }
    }
    server {
        listen 127.0.0.1:{{PORT3}} ssl;
        ssl_stapling off;
        ssl_stapling_file {{PKI}}/resp.der;
        location / { return 200 "ok"; }
    }
`, "{{PKI}}", pki.dir)
	for _, kind := range []string{"nginx", "ngxsockify"} {
		t.Run(kind, func(t *testing.T) {
			s := startServer(t, kind, ServerOptions{HTTP: conf})
			for i, want := range []bool{true, false, false} {
				c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.Ports[i]), &tls.Config{InsecureSkipVerify: true})
				if err != nil {
					t.Fatalf("port %d: %v", i+1, err)
				}
				got := c.ConnectionState().OCSPResponse
				c.Close()
				if want && string(got) != string(resp) {
					t.Errorf("port %d: stapled %d bytes, want the file's %d", i+1, len(got), len(resp))
				}
				if !want && len(got) != 0 {
					t.Errorf("port %d: stapled %d bytes, want none", i+1, len(got))
				}
			}
		})
	}
}

// TestSSLStaplingResponder: ssl_stapling on without a file asks the OCSP
// responder (ssl_stapling_responder) with a GET whose path is the request
// in base64; the first handshake goes without a staple, later ones get a
// "good" response (with ssl_stapling_verify on too, when the issuer signed
// it); a "revoked" one is not stapled, nor one whose signer is neither in
// it nor in the certificate's chain (OpenSSL's OCSP_basic_verify, even
// under ssl_stapling_verify off). A responder named by a host name is
// resolved at load, by the system (no resolver directive needed). The
// issuer is found in ssl_trusted_certificate.
func TestSSLStaplingResponder(t *testing.T) {
	pki := newTestPKI(t)
	root, rootKey := pki.certs["root"], pki.keys["root"]
	responder := func(status int, embed bool) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			der, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.URL.Path, "/"))
			if err != nil {
				http.Error(w, "bad request", 400)
				return
			}
			req, err := ocsp.ParseRequest(der)
			if err != nil {
				http.Error(w, "bad request", 400)
				return
			}
			now := time.Now()
			tmpl := ocsp.Response{Status: status, SerialNumber: req.SerialNumber,
				RevokedAt: now.Add(-time.Hour), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}
			if embed {
				tmpl.Certificate = root // the signer travels with the response
			}
			resp, err := ocsp.CreateResponse(root, root, tmpl, rootKey)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			w.Header().Set("Content-Type", "application/ocsp-response")
			w.Write(resp)
		}))
	}
	good, revoked, bare := responder(ocsp.Good, true), responder(ocsp.Revoked, true), responder(ocsp.Good, false)
	defer good.Close()
	defer revoked.Close()
	defer bare.Close()
	conf := strings.NewReplacer("{{PKI}}", pki.dir, "{{GOOD}}", good.URL, "{{REVOKED}}", revoked.URL, "{{BARE}}", bare.URL,
		"{{NAMED}}", strings.Replace(good.URL, "127.0.0.1", "localhost", 1)).Replace(`
    ssl_certificate {{PKI}}/alice.crt;
    ssl_certificate_key {{PKI}}/alice.key;
    ssl_trusted_certificate {{PKI}}/root.crt;
    ssl_stapling on;
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        ssl_stapling_responder {{GOOD}}/;
        location / { return 200 "ok"; }
    }
    server {
        listen 127.0.0.1:{{PORT2}} ssl;
        ssl_stapling_responder {{GOOD}}/;
        ssl_stapling_verify on;
        location / { return 200 "ok"; }
    }
    server {
        listen 127.0.0.1:{{PORT3}} ssl;
        ssl_stapling_responder {{REVOKED}}/;
        location / { return 200 "ok"; }
    }
    server {
        listen 127.0.0.1:{{PORT4}} ssl;
        ssl_stapling_responder {{BARE}}/;
        location / { return 200 "ok"; }
    }
    server {
        listen 127.0.0.1:{{PORT5}} ssl;
        ssl_stapling_responder {{NAMED}}/;
        location / { return 200 "ok"; }
    }
`)
	for _, kind := range []string{"nginx", "ngxsockify"} {
		t.Run(kind, func(t *testing.T) {
			s := startServer(t, kind, ServerOptions{HTTP: conf})
			staple := func(i int) []byte {
				c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.Ports[i]), &tls.Config{InsecureSkipVerify: true})
				if err != nil {
					t.Fatalf("port %d: %v", i+1, err)
				}
				defer c.Close()
				return c.ConnectionState().OCSPResponse
			}
			for i := range 5 {
				staple(i) // starts the request
			}
			time.Sleep(time.Second)
			for i, want := range []bool{true, true, false, false, true} {
				got := staple(i)
				if !want {
					if len(got) != 0 {
						t.Errorf("port %d: stapled %d bytes, want none", i+1, len(got))
					}
					continue
				}
				r, err := ocsp.ParseResponseForCert(got, pki.certs["alice"], root)
				if err != nil || r.Status != ocsp.Good {
					t.Errorf("port %d: staple %d bytes (%v), want a good response\n%s", i+1, len(got), err, s.ErrorLog())
				}
			}
		})
	}
}
