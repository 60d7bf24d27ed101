package vars

import (
	"bytes"
	"crypto/md5"
	"strings"
	"time"
)

// SecureLink is ngx_http_secure_link_module's settings at one level, merged
// as nginx merges them: what $secure_link checks. In the md5 mode Hash and
// MD5 are both set; in the older mode Secret is (HasSecret: an empty secret
// still counts).
type SecureLink struct {
	Hash      *Template // secure_link: "hash" or "hash,expires"; nil: unset
	MD5       *Template // secure_link_md5: the text whose MD5 the hash must be
	Secret    string    // secure_link_secret
	HasSecret bool
}

// secureLinkNow is the clock expiry times compare with (tests replace it).
var secureLinkNow = func() int64 { return time.Now().Unix() }

// secureLink computes $secure_link for the location settings s (nil:
// none): in the md5 mode "1" for a good link, "0" for a good link whose
// expiry time has passed, not found otherwise; in the older mode the link
// part of the request URI, or not found.
func (r *Request) secureLink() (string, bool) {
	s := r.SecureLink
	if s == nil {
		return "", false
	}
	if s.HasSecret {
		return r.secureLinkSecret(s)
	}
	if s.Hash == nil || s.MD5 == nil {
		return "", false
	}
	// An expression that reads $secure_link itself recurses, as in nginx,
	// until nginx's bound on nested variable reads: at the last level
	// every variable reads as empty (nginx logs "cycle while evaluating
	// variable"), and each level's answer then decides the next one's.
	r.secureLinkDepth++
	v, ok := r.secureLinkMD5(s)
	r.secureLinkDepth--
	return v, ok
}

// maxVariableDepth is nginx's bound on nested variable reads.
const maxVariableDepth = 100

// secureLinkEval evaluates t in a computation of $secure_link: past nginx's
// bound on nested reads, without its variables.
func (r *Request) secureLinkEval(t *Template) string {
	if r.secureLinkDepth < maxVariableDepth {
		return t.Eval(r)
	}
	var b strings.Builder
	for i := range t.parts {
		if p := &t.parts[i]; p.v == nil {
			b.WriteString(r.part(p))
		}
	}
	return b.String()
}

func (r *Request) secureLinkMD5(s *SecureLink) (string, bool) {
	val := r.secureLinkEval(s.Hash)
	var expires int64
	if i := strings.IndexByte(val, ','); i >= 0 {
		exp := val[i+1:]
		val = val[:i]
		var ok bool
		expires, ok = parseTimeT(exp)
		if !ok || expires <= 0 {
			return "", false
		}
		// $secure_link_expires is the text after the comma, kept even
		// when the hash then fails, as nginx keeps it
		r.secureLinkExpires, r.hasSecureLinkExpires = exp, true
	}
	if len(val) > 24 {
		return "", false
	}
	hash, ok := decodeBase64URL(val)
	if !ok || len(hash) != md5.Size {
		return "", false
	}
	sum := md5.Sum([]byte(r.secureLinkEval(s.MD5)))
	if !bytes.Equal(hash, sum[:]) {
		return "", false
	}
	if expires != 0 && expires < secureLinkNow() {
		return "0", true
	}
	return "1", true
}

// secureLinkSecret is $secure_link in the older mode: the raw request URI
// is /prefix/<md5 hex>/link, where the hex digits are the MD5 of the link
// (arguments included) followed by the secret.
func (r *Request) secureLinkSecret(s *SecureLink) (string, bool) {
	uri := r.requestURI()
	if len(uri) < 1 {
		return "", false
	}
	// the first byte is skipped, as nginx does; the hash starts after the
	// next "/" and ends at the one after it
	rest := uri[1:]
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return "", false
	}
	rest = rest[i+1:]
	j := strings.IndexByte(rest, '/')
	if j < 0 {
		return "", false
	}
	hexHash, link := rest[:j], rest[j+1:]
	if len(hexHash) != 32 || link == "" {
		return "", false
	}
	h := md5.New()
	h.Write([]byte(link))
	h.Write([]byte(s.Secret))
	sum := h.Sum(nil)
	for k := 0; k < md5.Size; k++ {
		hi, lo := hexDigit(hexHash[2*k]), hexDigit(hexHash[2*k+1])
		if hi < 0 || lo < 0 || byte(hi<<4|lo) != sum[k] {
			return "", false
		}
	}
	return link, true
}

// secureLinkExpiresValue is $secure_link_expires: the expiry time the last
// computation of $secure_link in this request (since an internal redirect)
// read, as written; not found when it read none.
func (r *Request) secureLinkExpiresValue() (string, bool) {
	return r.secureLinkExpires, r.hasSecureLinkExpires
}

// ForgetModuleState drops what modules kept for this request, as nginx
// clears a request's module contexts on an internal redirect: today the
// expiry time $secure_link_expires reads.
func (r *Request) ForgetModuleState() {
	r.secureLinkExpires, r.hasSecureLinkExpires = "", false
	r.forgetUserID()
}

func hexDigit(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// parseTimeT is nginx's ngx_atotm: decimal digits only, at least one, that
// fit a 64-bit time_t.
func parseTimeT(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	const max = 1<<63 - 1
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if v > (max-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// base64URLValue maps the base64url alphabet to its values; every other
// byte is -1.
var base64URLValue = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = int8(i)
	}
	return t
}()

// decodeBase64URL decodes s as nginx's ngx_decode_base64url does: the
// text ends at the first "=" (whatever follows it is not looked at), any
// other byte outside the url alphabet fails, a length of 1 modulo 4
// fails, and the bits of an incomplete last group that make no whole byte
// are dropped without being checked.
func decodeBase64URL(s string) ([]byte, bool) {
	n := 0
	for ; n < len(s); n++ {
		if s[n] == '=' {
			break
		}
		if base64URLValue[s[n]] < 0 {
			return nil, false
		}
	}
	if n%4 == 1 {
		return nil, false
	}
	out := make([]byte, 0, n*3/4)
	v := func(i int) byte { return byte(base64URLValue[s[i]]) }
	i := 0
	for ; n-i > 3; i += 4 {
		out = append(out, v(i)<<2|v(i+1)>>4, v(i+1)<<4|v(i+2)>>2, v(i+2)<<6|v(i+3))
	}
	if n-i > 1 {
		out = append(out, v(i)<<2|v(i+1)>>4)
	}
	if n-i > 2 {
		out = append(out, v(i+1)<<4|v(i+2)>>2)
	}
	return out, true
}
