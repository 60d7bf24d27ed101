package vars

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"testing"
)

func TestDecodeBase64URL(t *testing.T) {
	sum := md5.Sum([]byte("x"))
	enc := base64.RawURLEncoding.EncodeToString(sum[:])
	cases := []struct {
		in   string
		want string // hex; "!" for an error
	}{
		{enc, hex.EncodeToString(sum[:])},
		{enc + "==", hex.EncodeToString(sum[:])},
		{enc + "=ignored+/", hex.EncodeToString(sum[:])}, // nothing after "=" is read
		{"", ""},
		{"=", ""},
		{"A", "!"},     // 1 mod 4
		{"AAAAA", "!"}, // 1 mod 4
		{"AB", "00"},   // the 4 low bits of B are dropped
		{"AAB", "0000"},
		{"-_-_", "fbffbf"},
		{"+/+/", "!"}, // the standard alphabet's bytes are not base64url
		{"A A", "!"},
	}
	for _, c := range cases {
		got, ok := decodeBase64URL(c.in)
		g := hex.EncodeToString(got)
		if !ok {
			g = "!"
		}
		if g != c.want {
			t.Errorf("decodeBase64URL(%q) = %s, want %s", c.in, g, c.want)
		}
	}
}

func TestParseTimeT(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "0099": 99, "9223372036854775807": 1<<63 - 1} {
		if v, ok := parseTimeT(in); !ok || v != want {
			t.Errorf("parseTimeT(%q) = %d, %v", in, v, ok)
		}
	}
	for _, in := range []string{"", "-1", "+1", "1x", " 1", "9223372036854775808", "99999999999999999999"} {
		if v, ok := parseTimeT(in); ok {
			t.Errorf("parseTimeT(%q) = %d, want an error", in, v)
		}
	}
}

func b64md5(s string) string {
	sum := md5.Sum([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestSecureLinkMD5(t *testing.T) {
	defer func(f func() int64) { secureLinkNow = f }(secureLinkNow)
	secureLinkNow = func() int64 { return 1000 }
	g := NewRegistry()
	sl := &SecureLink{Hash: g.MustCompile("$arg_h,$arg_e"), MD5: g.MustCompile("k$secure_link_expires$uri")}
	slt := g.MustCompile("[$secure_link][$secure_link_expires]")
	cases := []struct{ target, want string }{
		{"/a?h=" + b64md5("k1000/a") + "&e=1000", "[1][1000]"}, // expiring this second: still good
		{"/a?h=" + b64md5("k999/a") + "&e=999", "[0][999]"},
		{"/a?h=" + b64md5("k0999/a") + "&e=0999", "[0][0999]"},
		{"/a?h=" + b64md5("k1000/b") + "&e=1000", "[][1000]"}, // mismatch keeps the expiry text
		{"/a?h=" + b64md5("k1000/a") + "&e=0", "[][]"},
		{"/a?h=" + b64md5("k1000/a") + "&e=1x", "[][]"},
		{"/a?h=" + b64md5("k1000/a") + "x&e=1000", "[][1000]"},
		{"/a", "[][]"},
	}
	for _, c := range cases {
		r := newTestRequest(t, g, c.target, nil)
		r.SecureLink = sl
		if got := slt.Eval(r); got != c.want {
			t.Errorf("%s: %q, want %q", c.target, got, c.want)
		}
	}
	// the first read's answer stays for the request, as nginx caches it
	r := newTestRequest(t, g, "/a?h="+b64md5("k1000/a")+"&e=1000", nil)
	r.SecureLink = &SecureLink{Hash: sl.Hash, MD5: g.MustCompile("k$arg_e$uri")}
	exp := g.MustCompile("[$secure_link_expires]")
	if got := exp.Eval(r); got != "[]" {
		t.Errorf("expires before secure_link: %q", got)
	}
	if got := slt.Eval(r); got != "[1][]" {
		t.Errorf("expires read first stays not found: %q", got)
	}
	r.SecureLink = nil
	if got := slt.Eval(r); got != "[1][]" {
		t.Errorf("another location: %q", got)
	}
}

func TestSecureLinkSecret(t *testing.T) {
	g := NewRegistry()
	sl := &SecureLink{Secret: "s", HasSecret: true}
	tpl := g.MustCompile("[$secure_link]")
	sum := md5.Sum([]byte("f/x.html?a=1s"))
	h := hex.EncodeToString(sum[:])
	cases := []struct{ target, want string }{
		{"/p/" + h + "/f/x.html?a=1", "[f/x.html?a=1]"},
		{"/any/" + hexUpper(h) + "/f/x.html?a=1", "[f/x.html?a=1]"},
		{"/p/" + h + "/f/x.html", "[]"},
		{"/p/" + h[:31] + "/f/x.html?a=1", "[]"},
		{"/p/" + h + "/", "[]"},
		{"/p/" + h, "[]"},
		{"/", "[]"},
	}
	for _, c := range cases {
		r := newTestRequest(t, g, c.target, nil)
		r.SecureLink = sl
		if got := tpl.Eval(r); got != c.want {
			t.Errorf("%s: %q, want %q", c.target, got, c.want)
		}
	}
}

func hexUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func TestSecureLinkNotChangeable(t *testing.T) {
	g := NewRegistry()
	for _, name := range []string{"secure_link", "secure_link_expires"} {
		if err := g.Declare(name); err == nil {
			t.Errorf("set $%s accepted", name)
		}
		if _, err := g.Var(name); err == nil {
			t.Errorf("$%s writable", name)
		}
	}
}
