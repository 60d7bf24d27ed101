package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"sync"
	"time"

	"ngxsockify/nginxconf"
)

// sessionStore is a server's TLS session resumption, as its
// ssl_session_tickets and ssl_session_cache allow:
//
//   - tickets on (the default): the session travels in the ticket,
//     encrypted with the server's key (made at load: a reload forgets
//     them, as nginx's random keys do);
//   - tickets off with a cache (builtin or shared): the ticket is only an
//     ID into a cache in memory, per server and per loaded configuration
//     (nginx's shared cache also outlives a reload and is shared between
//     the servers naming it);
//   - tickets off without one (none, off): nothing resumes.
//
// Either way a session older than ssl_session_timeout does not resume, and
// every session carries its $ssl_session_id.
type sessionStore struct {
	tickets, cache bool
	timeout        time.Duration

	mu    sync.Mutex
	byID  map[string]cachedSession
	order []string // IDs, oldest first
}

type cachedSession struct {
	state   []byte // tls.SessionState.Bytes()
	expires time.Time
}

// maxCachedSessions bounds a server's session cache (nginx's builtin
// default is 20480 sessions).
const maxCachedSessions = 20480

func newSessionStore(t *nginxconf.TLS) *sessionStore {
	s := &sessionStore{tickets: t.SessionTickets, cache: t.SessionCache == nginxconf.SessionCacheOn, timeout: t.SessionTimeout}
	if s.cache && !s.tickets {
		s.byID = map[string]cachedSession{}
	}
	return s
}

// resumes reports whether sessions may resume at all.
func (s *sessionStore) resumes() bool { return s.tickets || s.byID != nil }

// sessionExtraTag starts the entry ngxsockify adds to a session's Extra:
// the creation time (Unix seconds, 8 bytes) and the session ID follow.
var sessionExtraTag = []byte("ngxsockify-session-1\x00")

// wrap is WrapSession: it adds the creation time and id to ss and returns
// the ticket.
func (s *sessionStore) wrap(cfg *tls.Config, cs tls.ConnectionState, ss *tls.SessionState, id []byte) ([]byte, error) {
	now := time.Now()
	extra := append(append([]byte(nil), sessionExtraTag...), binary.BigEndian.AppendUint64(nil, uint64(now.Unix()))...)
	ss.Extra = append(ss.Extra, append(extra, id...))
	if s.tickets {
		return cfg.EncryptTicket(cs, ss)
	}
	state, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.order) > 0 {
		old, ok := s.byID[s.order[0]]
		if ok && len(s.byID) < maxCachedSessions && now.Before(old.expires) {
			break
		}
		delete(s.byID, s.order[0])
		s.order = s.order[1:]
	}
	s.byID[string(key)] = cachedSession{state: state, expires: now.Add(s.timeout)}
	s.order = append(s.order, string(key))
	return key, nil
}

// unwrap is UnwrapSession: the session a ticket names and its ID, or nil
// when it is unknown, expired, or not ours.
func (s *sessionStore) unwrap(cfg *tls.Config, identity []byte, cs tls.ConnectionState) (*tls.SessionState, []byte) {
	var ss *tls.SessionState
	if s.tickets {
		ss, _ = cfg.DecryptTicket(identity, cs)
	} else if s.byID != nil {
		s.mu.Lock()
		e, ok := s.byID[string(identity)]
		s.mu.Unlock()
		if ok {
			ss, _ = tls.ParseSessionState(e.state)
		}
	}
	if ss == nil {
		return nil, nil
	}
	for _, e := range ss.Extra {
		rest, ok := bytes.CutPrefix(e, sessionExtraTag)
		if !ok || len(rest) < 8 {
			continue
		}
		created := time.Unix(int64(binary.BigEndian.Uint64(rest)), 0)
		if time.Since(created) > s.timeout {
			return nil, nil
		}
		return ss, rest[8:]
	}
	return nil, nil
}
