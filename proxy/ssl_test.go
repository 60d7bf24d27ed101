package proxy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"ngxsockify/nginxconf"
)

func TestDecryptKeyPEM(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(key)
	plain := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	//nolint:staticcheck // the legacy form under test
	blk, err := x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", der, []byte("right"), x509.PEMCipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	enc := pem.EncodeToMemory(blk)
	for _, tc := range []struct {
		name      string
		data      []byte
		passwords []string
		want      []byte
		err       string
	}{
		{"plain, no passwords", plain, nil, plain, ""},
		{"plain, passwords ignored", plain, []string{"x"}, plain, ""},
		{"encrypted, second password", enc, []string{"wrong", "right"}, plain, ""},
		{"encrypted, no password", enc, nil, nil, "no ssl_password_file"},
		{"encrypted, wrong passwords", enc, []string{"wrong", "Right"}, nil, "bad decrypt"},
	} {
		got, err := decryptKeyPEM(tc.data, tc.passwords)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one with %q", tc.name, err, tc.err)
		case tc.err == "" && (err != nil || !bytes.Equal(got, tc.want)):
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

// TestSessionStoreCache: with tickets off and a cache, tickets are IDs into
// a store shared by concurrent handshakes; a session past the timeout does
// not resume.
func TestSessionStoreCache(t *testing.T) {
	s := newSessionStore(&nginxconf.TLS{SessionCache: nginxconf.SessionCacheOn, SessionTimeout: time.Minute})
	if !s.resumes() || s.byID == nil {
		t.Fatal("tickets off with a cache: want a cache")
	}
	cfg := &tls.Config{}
	state := realSession(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				id := []byte{byte(i), byte(j)}
				ticket, err := s.wrap(cfg, tls.ConnectionState{}, state(), id)
				if err != nil {
					t.Error(err)
					return
				}
				ss, got := s.unwrap(cfg, ticket, tls.ConnectionState{})
				if ss == nil || !bytes.Equal(got, id) {
					t.Errorf("session %v: got %v", id, got)
				}
			}
		}(i)
	}
	wg.Wait()
	if ss, _ := s.unwrap(cfg, []byte("unknown"), tls.ConnectionState{}); ss != nil {
		t.Error("an unknown ticket resumed")
	}
	s.timeout = -time.Second // everything has expired
	ticket, _ := s.wrap(cfg, tls.ConnectionState{}, state(), []byte{1})
	if ss, _ := s.unwrap(cfg, ticket, tls.ConnectionState{}); ss != nil {
		t.Error("an expired session resumed")
	}
	off := newSessionStore(&nginxconf.TLS{SessionCache: nginxconf.SessionCacheOff})
	if off.resumes() {
		t.Error("tickets and cache off: sessions resume")
	}
}

// realSession returns a maker of copies of the session state of a real
// TLS 1.3 handshake.
func realSession(t *testing.T) func() *tls.SessionState {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	got := make(chan []byte, 1)
	srvCfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srvCfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		b, err := ss.Bytes()
		select {
		case got <- b:
		default:
		}
		return []byte("ticket"), err
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		srv := tls.Server(a, srvCfg)
		if srv.Handshake() == nil {
			srv.Write([]byte("x"))
		}
	}()
	cl := tls.Client(b, &tls.Config{InsecureSkipVerify: true, ClientSessionCache: tls.NewLRUClientSessionCache(1)})
	cl.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := cl.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	raw := <-got
	return func() *tls.SessionState {
		ss, err := tls.ParseSessionState(raw)
		if err != nil {
			t.Error(err) // called from several goroutines: no Fatal
		}
		return ss
	}
}
