package vars

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// UserID is ngx_http_userid_filter_module's settings at one level.
type UserID struct {
	Enable  int    // UserIDOff, UserIDLog, UserIDV1, UserIDOn
	Service int64  // userid_service; -1: unset (v1: 0, on: the local IPv4 address)
	Name    string // userid_name (default "uid")
	Domain  string // userid_domain; "": none
	Path    string // userid_path (default "/")
	Expires int64  // userid_expires in seconds; 0: off, -1: max
	P3P     string // userid_p3p; "": none
	Mark    byte   // userid_mark; 0: off
	Flags   string // userid_flags as written into the cookie ("; secure; httponly; samesite=lax")
}

// userid values.
const (
	UserIDOff = iota
	UserIDLog
	UserIDV1
	UserIDOn
)

// userIDState is the module's per-request state (the main request's).
type userIDState struct {
	got, set   [16]byte // identifiers as sent (the cookie's bytes)
	hasGot     bool
	hasSet     bool
	cookie     string // the cookie's value as received
	read, made bool   // got parsed; set computed
}

var (
	uidStart = uint32(time.Now().Unix()&0xff)<<24 ^ uint32(os.Getpid())
	uidSeqV1 atomic.Uint32
	uidSeqV2 atomic.Uint32
)

func init() {
	uidSeqV1.Store(1)
	uidSeqV2.Store(0x03030302)
}

func (r *Request) uidState() *userIDState {
	if r.Main != nil {
		return r.Main.uidState()
	}
	if r.uid == nil {
		r.uid = &userIDState{}
	}
	return r.uid
}

// uidRead parses the cookie named by the settings, as nginx: at least 22
// characters, of which the first 22 are the identifier in base64.
func (r *Request) uidRead(c *UserID) *userIDState {
	st := r.uidState()
	if st.read || r.HTTP == nil {
		return st
	}
	st.read = true
	v, ok := cookieValue(r.HTTP.Header["Cookie"], c.Name)
	if !ok {
		return st
	}
	st.cookie = v
	if len(v) < 22 {
		r.logf(false, `client sent too short userid cookie "%s"`, v)
		return st
	}
	b, err := base64.RawStdEncoding.DecodeString(v[:22])
	if err != nil || len(b) != 16 {
		r.logf(false, `client sent invalid userid cookie "%s"`, v)
		return st
	}
	copy(st.got[:], b)
	st.hasGot = true
	return st
}

// uidMake decides the identifier to set: none while a valid cookie is kept
// (with the right mark, $uid_reset "" or "0"), the received one again when
// only its mark differs, else a new one.
func (r *Request) uidMake(c *UserID) *userIDState {
	st := r.uidRead(c)
	if st.made || r.HTTP == nil {
		return st
	}
	st.made = true
	if st.hasGot {
		reset, _ := r.Get("uid_reset")
		if reset == "" || reset == "0" {
			if c.Mark == 0 || (len(st.cookie) > 22 && st.cookie[22] == c.Mark) {
				return st
			}
			st.set, st.hasSet = st.got, true
			return st
		}
		if reset == "log" {
			r.logf(true, `userid cookie "%s=%s" was reset`, c.Name, uidHex(st.got))
		}
	}
	now := uint32(time.Now().Unix())
	if c.Enable == UserIDV1 {
		svc := uint32(0)
		if c.Service >= 0 {
			svc = uint32(c.Service)
		}
		binary.LittleEndian.PutUint32(st.set[0:], svc)
		binary.LittleEndian.PutUint32(st.set[4:], now)
		binary.LittleEndian.PutUint32(st.set[8:], uidStart)
		binary.LittleEndian.PutUint32(st.set[12:], uidSeqV1.Add(0x100)-0x100)
	} else {
		if c.Service >= 0 {
			binary.BigEndian.PutUint32(st.set[0:], uint32(c.Service))
		} else if a, ok := r.HTTP.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
			if ip4 := a.IP.To4(); ip4 != nil {
				copy(st.set[0:4], ip4)
			} else if len(a.IP) == net.IPv6len {
				copy(st.set[0:4], a.IP[12:16])
			}
		}
		binary.BigEndian.PutUint32(st.set[4:], now)
		binary.BigEndian.PutUint32(st.set[8:], uidStart)
		seq := uidSeqV2.Add(0x100) - 0x100
		if seq < 0x03030302 {
			uidSeqV2.CompareAndSwap(seq+0x100, 0x03030302)
		}
		binary.BigEndian.PutUint32(st.set[12:], seq)
	}
	st.hasSet = true
	return st
}

// uidHex is the identifier as $uid_got and $uid_set show it: four 32-bit
// words in the host's (little-endian) order, in hex.
func uidHex(b [16]byte) string {
	var s strings.Builder
	for i := 0; i < 16; i += 4 {
		fmt.Fprintf(&s, "%08X", binary.LittleEndian.Uint32(b[i:]))
	}
	return s.String()
}

// uidCache is a value of $uid_got or $uid_set kept once read: nginx keeps
// them (cacheable variables) in the main request's variables, which its
// subrequests share and an internal redirect leaves in place, while the
// module's state (userIDState) is forgotten there.
type uidCache struct {
	v     string
	found bool
	done  bool
}

func (c *uidCache) get(compute func() (string, bool)) (string, bool) {
	if !c.done {
		c.v, c.found = compute()
		c.done = true
	}
	return c.v, c.found
}

// uidGot is $uid_got. As in nginx, a subrequest's is its main request's:
// the main request's settings (its location's), cookie and state.
func (r *Request) uidGot() (string, bool) {
	m := r.MainRequest()
	return m.uidGotCache.get(func() (string, bool) {
		c := m.UserID
		if c == nil || c.Enable == UserIDOff {
			return "", false
		}
		st := m.uidRead(c)
		if !st.hasGot {
			return "", false
		}
		return c.Name + "=" + uidHex(st.got), true
	})
}

// uidSet is $uid_set, the main request's as uidGot.
func (r *Request) uidSet() (string, bool) {
	m := r.MainRequest()
	return m.uidSetCache.get(func() (string, bool) {
		c := m.UserID
		if c == nil || c.Enable < UserIDV1 {
			return "", false
		}
		st := m.uidMake(c)
		if !st.hasSet {
			return "", false
		}
		return c.Name + "=" + uidHex(st.set), true
	})
}

// forgetUserID drops the module's state at an internal redirect of the
// main request (nginx clears the module contexts), so the response's
// cookie is computed anew; the values $uid_got and $uid_set were read as
// stay (uidCache).
func (r *Request) forgetUserID() {
	if r.Main == nil {
		r.uid = nil
	}
}

// ReadUserID reads $uid_got and $uid_set now, so that copies of the
// request's variables (a mirror's, on its own goroutine) find them made
// and only read the module's state.
func (r *Request) ReadUserID() {
	r.uidGot()
	r.uidSet()
}

// UserIDHeaders gives the Set-Cookie and P3P values the userid filter adds
// to the main request's response ("" when it adds none).
func (r *Request) UserIDHeaders() (cookie, p3p string) {
	c := r.UserID
	if c == nil || c.Enable < UserIDV1 || r.HTTP == nil {
		return "", ""
	}
	st := r.uidMake(c)
	if !st.hasSet {
		return "", ""
	}
	v := []byte(base64.StdEncoding.EncodeToString(st.set[:]))
	if c.Mark != 0 {
		v[22] = c.Mark
	}
	var b strings.Builder
	b.WriteString(c.Name)
	b.WriteByte('=')
	b.Write(v)
	switch {
	case c.Expires < 0:
		b.WriteString("; expires=Thu, 31-Dec-37 23:55:55 GMT")
	case c.Expires > 0:
		b.WriteString("; expires=")
		b.WriteString(cookieTime(time.Now().Add(time.Duration(c.Expires) * time.Second)))
	}
	if c.Domain != "" {
		b.WriteString("; domain=")
		b.WriteString(c.Domain)
	}
	b.WriteString("; path=")
	b.WriteString(c.Path)
	b.WriteString(c.Flags)
	return b.String(), c.P3P
}

// cookieTime is nginx's cookie date: two-digit years up to 2037.
func cookieTime(t time.Time) string {
	t = t.UTC()
	y := t.Year()
	ys := fmt.Sprintf("%d", y)
	if y <= 2037 {
		ys = fmt.Sprintf("%02d", y%100)
	}
	return fmt.Sprintf("%s, %02d-%s-%s %02d:%02d:%02d GMT", t.Format("Mon"), t.Day(), t.Format("Jan"), ys, t.Hour(), t.Minute(), t.Second())
}

func (r *Request) logf(notice bool, format string, args ...any) {
	if r.Logf != nil {
		r.Logf(notice, format, args...)
	}
}
