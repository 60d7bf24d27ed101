package test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// writeCert makes a self-signed certificate for name in dir and returns it
// (for the client's trust store) with the paths of its PEM files.
func writeCert(t *testing.T, dir, name string) (*x509.Certificate, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(key)
	cp, kp := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(cp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cert, cp, kp
}

// TestTLS serves two names on one ssl port: SNI picks each server's
// certificate, https answers, and wss relays to the target.
func TestTLS(t *testing.T) {
	certDir := t.TempDir()
	vncCert, vncCrt, vncKey := writeCert(t, certDir, "vnc.test")
	otherCert, otherCrt, otherKey := writeCert(t, certDir, "other.test")
	target := echoTarget(t)
	s := startNgxsockify(t, `
server {
    listen 127.0.0.1:{{PORT}} ssl;
    server_name vnc.test;
    ssl_certificate `+vncCrt+`;
    ssl_certificate_key `+vncKey+`;
    location = / { return 200 "vnc|$scheme|$https|$server_name|$ssl_server_name|$ssl_protocol"; }
    location /websockify { websockify_pass `+target+`; }
}
server {
    listen 127.0.0.1:{{PORT}} ssl;
    server_name other.test;
    ssl_certificate `+otherCrt+`;
    ssl_certificate_key `+otherKey+`;
    location = / { return 200 "other|$scheme|$https"; }
}`)
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"vnc.test", vncCert, "vnc|https|on|vnc.test|vnc.test|TLSv1.2"},
		{"other.test", otherCert, "other|https|on"},
	} {
		pool := x509.NewCertPool()
		pool.AddCert(tc.cert)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: tc.name}}
		c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		req, _ := http.NewRequest("GET", "https://"+s.Addr+"/", nil)
		req.Host = tc.name // nginx picks the server by Host; SNI picks the certificate
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != tc.want {
			t.Errorf("%s: body %q, want %q", tc.name, body, tc.want)
		}
		tr.CloseIdleConnections()
	}

	pool := x509.NewCertPool()
	pool.AddCert(vncCert)
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "vnc.test"}, HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial("wss://"+s.Addr+"/websockify", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	wsEcho(t, ws, "over TLS")

	// Twenty wss tunnels at once, 1 MiB each way in messages of 1 B to
	// 64 KiB, every byte checked: the relay decrypts and encrypts on its
	// event loop.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, _, err := d.Dial("wss://"+s.Addr+"/websockify", nil)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			rnd := mrand.New(mrand.NewPCG(uint64(i), 1))
			data := make([]byte, 1<<20)
			for j := range data {
				data[j] = byte(rnd.Uint32())
			}
			go func() {
				for off := 0; off < len(data); {
					n := min(1+rnd.IntN(64<<10), len(data)-off)
					if c.WriteMessage(websocket.BinaryMessage, data[off:off+n]) != nil {
						return
					}
					off += n
				}
			}()
			var got []byte
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			for len(got) < len(data) {
				_, m, err := c.ReadMessage()
				if err != nil {
					errs <- fmt.Errorf("tunnel %d after %d bytes: %v", i, len(got), err)
					return
				}
				got = append(got, m...)
			}
			if !bytes.Equal(got, data) {
				errs <- fmt.Errorf("tunnel %d: echo differs", i)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestTLSMissingCertificate: `listen ... ssl` without a certificate is a
// config error, as in nginx.
func TestTLSMissingCertificate(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "nginx.conf")
	os.WriteFile(main, []byte("events {}\nhttp {\n    server {\n        listen 127.0.0.1:1 ssl;\n    }\n}\n"), 0o644)
	out, code := runBin(t, "-t", "-c", main)
	if code != 1 || !strings.Contains(out, `no "ssl_certificate" is defined for the "listen ... ssl" directive`) {
		t.Errorf("exit %d, %q", code, out)
	}
}
