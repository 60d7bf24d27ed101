package luahooks

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	lua "github.com/yuin/gopher-lua"
	"ngxsockify/internal/certcheck"
	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
)

// The TLS part of cosockets: sock:sslhandshake(reused_session, server_name,
// ssl_verify, send_status_req), as lua-resty-core 0.1.25 over
// lua-nginx-module 0.10.23 gives it. The location's lua_ssl_protocols and
// lua_ssl_ciphers choose what is offered; the debug lines are nginx's
// ("SSL: TLSv1.2, cipher: ...", "SSL reused session", "lua ssl save|set|
// free session: ...").

// sslSession is a TLS session a handshake made: what reusing it resumes
// (the server's ticket, set when it arrives: under TLS 1.3 after the
// handshake) and the name the debug lines give it (OpenSSL's pointer in
// nginx).
type sslSession struct {
	id     string
	ticket atomic.Pointer[tls.ClientSessionState]
}

// sslSessionRef is the cdata sslhandshake returns: each return is its own
// reference to the session, freed (logged) when Lua drops it, as
// ffi.gc's ngx_http_lua_ffi_ssl_free_session does.
type sslSessionRef struct{ s *sslSession }

// sessionCache resumes one session and saves the ticket of the new one,
// whatever the key.
type sessionCache struct {
	resume *tls.ClientSessionState
	save   *sslSession
}

func (c *sessionCache) Get(string) (*tls.ClientSessionState, bool) { return c.resume, c.resume != nil }
func (c *sessionCache) Put(_ string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.save.ticket.Store(cs)
	}
}

var sslSessionSeq atomic.Uint64

// defaultCiphers are lua_ssl_ciphers' default, OpenSSL's DEFAULT.
var defaultCiphers, _ = nginxconf.ParseCipherList("DEFAULT")

func newSSLSession() *sslSession {
	// 16 hex digits, as nginx's %p of the SSL_SESSION (a serial here)
	return &sslSession{id: fmt.Sprintf("%016X", sslSessionSeq.Add(1))}
}

// sessionRefs are the session references Lua holds, so that their
// release can be logged: nginx logs "lua ssl free session" when LuaJIT's
// collector frees one (at collectgarbage() at the latest). Here a
// reference is seen freed after a Go collection finds it unreachable; a
// collectgarbage("collect") forces one when references were handed out
// since the last.
type sessionRefs struct {
	mu    sync.Mutex
	live  []liveRef
	fresh bool
}

type liveRef struct {
	p   weak.Pointer[sslSessionRef]
	id  string
	log func(ngxlog.Level, string)
}

var sslSessionRefs sessionRefs

// add tracks ref, logging with log when it is freed.
func (t *sessionRefs) add(ref *sslSessionRef, log func(ngxlog.Level, string)) {
	t.mu.Lock()
	t.live = append(t.live, liveRef{p: weak.Make(ref), id: ref.s.id, log: log})
	t.fresh = true
	freed := t.prune()
	t.mu.Unlock()
	logFreed(freed)
}

// collect runs for collectgarbage("collect").
func (t *sessionRefs) collect() {
	t.mu.Lock()
	force := t.fresh
	t.fresh = false
	t.mu.Unlock()
	if !force {
		return
	}
	runtime.GC()
	t.mu.Lock()
	freed := t.prune()
	t.mu.Unlock()
	logFreed(freed)
}

// prune drops the freed references and returns them (t.mu held).
func (t *sessionRefs) prune() []liveRef {
	var freed []liveRef
	kept := t.live[:0]
	for _, r := range t.live {
		if r.p.Value() == nil {
			freed = append(freed, r)
		} else {
			kept = append(kept, r)
		}
	}
	clear(t.live[len(kept):])
	t.live = kept
	return freed
}

func logFreed(freed []liveRef) {
	for _, r := range freed {
		if r.log != nil {
			r.log(ngxlog.Debug, "lua ssl free session: "+r.id)
		}
	}
}

func (st *state) sockSSLHandshake(L *lua.LState) int {
	if n := L.GetTop(); n < 1 || n > 5 {
		cError(L, "ngx.socket sslhandshake: expecting 1 ~ 5 arguments (including the object), but seen %d", n)
	}
	s := sock(L, "sslhandshake")
	if s.conn == nil {
		return fail(L, "closed")
	}
	reuse := L.Get(2)
	var prev *sslSessionRef
	if ud, ok := reuse.(*lua.LUserData); ok {
		prev, _ = ud.Value.(*sslSessionRef)
	}
	if _, ok := s.conn.(*tls.Conn); ok { // already handshaked (or a pooled TLS connection)
		if prev != nil {
			L.Push(reuse)
			return 1
		}
		return st.sslResult(L, reuse, newSSLSession())
	}
	name := ""
	if v, ok := L.Get(3).(lua.LString); ok {
		name = string(v)
		st.logf(ngxlog.Debug, "lua ssl server name: \"%s\"", name)
	}
	verify := lua.LVAsBool(L.Get(4))
	cfg := &tls.Config{ServerName: name, InsecureSkipVerify: true}
	if req := st.r.req; req != nil {
		cfg.MinVersion, cfg.MaxVersion = nginxconf.ProtocolRange(req.SSLProtocols)
		cfg.CipherSuites = req.SSLCiphers
	} else {
		cfg.MinVersion, cfg.MaxVersion = nginxconf.ProtocolRange(nil)
	}
	if cfg.CipherSuites == nil {
		cfg.CipherSuites = defaultCiphers
	}
	if verify { // as OpenSSL: the chain, then the name (none if "") with the CN fallback
		roots, chain := x509.NewCertPool(), &certcheck.Chain{Depth: 1}
		if req := st.r.req; req != nil {
			if req.TrustedCAs != nil {
				roots = req.TrustedCAs
			}
			if req.SSLChain != nil {
				chain = req.SSLChain
			}
		}
		cfg.VerifyConnection = verifyPeer(roots, chain, name)
	}
	sess := newSSLSession()
	cache := &sessionCache{save: sess}
	if prev != nil {
		cache.resume = prev.s.ticket.Load()
		st.logf(ngxlog.Debug, "lua ssl set session: %s", prev.s.id)
	}
	cfg.ClientSessionCache = cache
	if cert := s.clientCert; cert != nil { // sent whatever CAs the server names, as OpenSSL does
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	tc := tls.Client(s.conn, cfg)
	defer s.wait(busyConnecting)()
	err := st.waitIO(s.conn, func() error {
		tc.SetDeadline(time.Now().Add(s.read))
		defer tc.SetDeadline(time.Time{})
		return tc.Handshake()
	})
	if err != nil {
		msg := "handshake failed"
		var unknown x509.UnknownAuthorityError
		var host x509.HostnameError
		var chainErr chainError
		switch {
		case errors.As(err, &unknown):
			msg = "20: unable to get local issuer certificate"
		case errors.As(err, &chainErr):
			msg = chainErr.Error()
		case errors.As(err, &host):
			msg = "certificate host mismatch"
		case sockErr(err) == "timeout":
			msg = "timeout"
		}
		if msg != "timeout" && msg != "handshake failed" { // not a verify error: nginx logs none
			st.sockLogf(L, "lua ssl certificate verify error: (%s)", msg)
		}
		st.dropSocket(s)
		return fail(L, msg)
	}
	cs := tc.ConnectionState()
	st.logf(ngxlog.Debug, "SSL: %s, cipher: \"%s\"", vars.ProtocolName(cs.Version), nginxconf.CipherDescription(cs.CipherSuite))
	if cs.DidResume && prev != nil {
		st.logf(ngxlog.Debug, "SSL reused session")
		sess = prev.s
	}
	s.wr = &waitReader{c: tc, r: tc}
	s.conn, s.br = tc, bufio.NewReaderSize(s.wr, s.bufSize)
	return st.sslResult(L, reuse, sess)
}

// sockSetClientCert is sock:setclientcert(cert, pkey) (lua-resty-core's):
// the chain of ngx.ssl.parse_pem_cert and the key of parse_pem_priv_key
// the next sslhandshake presents; two nils clear them.
func (st *state) sockSetClientCert(L *lua.LState) int {
	s := sock(L, "setclientcert")
	cert, key := L.Get(2), L.Get(3)
	if cert == lua.LNil && key == lua.LNil {
		s.clientCert = nil
		L.Push(lua.LTrue)
		return 1
	}
	if cert == lua.LNil || key == lua.LNil {
		return fail(L, "client certificate must be supplied with corresponding private key")
	}
	chain, ok := userValue[*sslCertChain](cert)
	if !ok {
		return fail(L, "bad cert arg: cdata expected, got "+cert.Type().String())
	}
	pkey, ok := userValue[*sslPrivKey](key)
	if !ok {
		return fail(L, "bad pkey arg: cdata expected, got "+key.Type().String())
	}
	c := &tls.Certificate{PrivateKey: pkey.key}
	for _, x := range chain.certs {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	s.clientCert = c
	L.Push(lua.LTrue)
	return 1
}

// userValue is v's Go value when v is a userdata holding a T.
func userValue[T any](v lua.LValue) (T, bool) {
	var zero T
	ud, ok := v.(*lua.LUserData)
	if !ok {
		return zero, false
	}
	t, ok := ud.Value.(T)
	return t, ok
}

// sslResult is sslhandshake's answer on success: true when reused_session
// is false, else a new reference to sess.
func (st *state) sslResult(L *lua.LState, reuse lua.LValue, sess *sslSession) int {
	if reuse == lua.LFalse {
		L.Push(lua.LTrue)
		return 1
	}
	st.logf(ngxlog.Debug, "lua ssl save session: %s", sess.id)
	ref := &sslSessionRef{s: sess}
	ud := L.NewUserData()
	ud.Value = ref
	sslSessionRefs.add(ref, st.rt.opts.Log)
	L.Push(ud)
	return 1
}

// chainError is a verified chain that failed lua_ssl_verify_depth or
// lua_ssl_crl, with OpenSSL's result.
type chainError certcheck.Result

func (e chainError) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Text) }

// verifyChainOnly checks the peer's chain without a host name: to a
// self-signed certificate of roots (through the peer's certificates and
// chain.Inter), then chain's depth and CRLs.
func verifyChainOnly(roots *x509.CertPool, chain *certcheck.Chain) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range chain.Inter {
			inter.AddCert(c)
		}
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		chains, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
		if errors.As(err, new(x509.UnknownAuthorityError)) {
			return chainError(chain.UnknownIssuer(cs.PeerCertificates))
		}
		if err != nil {
			return err
		}
		now, first := time.Now(), certcheck.Result{}
		for i, ch := range chains {
			r := chain.Check(ch, now)
			if r.Code == certcheck.OK {
				return nil
			}
			if i == 0 {
				first = r
			}
		}
		return chainError(first)
	}
}
