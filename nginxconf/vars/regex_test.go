package vars

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/dlclark/regexp2"
	"github.com/google/go-cmp/cmp"
)

func groups(c *Captures) []string {
	var out []string
	for i := 0; i < c.Len(); i++ {
		s, ok := c.Group(i)
		if !ok {
			s = "<unset>"
		}
		out = append(out, s)
	}
	return out
}

func TestRegexMatch(t *testing.T) {
	tests := []struct {
		name, pattern string
		caseless      bool
		subject       string
		want          []string // nil: no match
		named         map[string]string
	}{
		{"named numbered in order", `(?<a>x)(y)`, false, "xy", []string{"xy", "x", "y"}, map[string]string{"a": "x"}},
		{"python named", `(?P<a>x)(y)`, false, "xy", []string{"xy", "x", "y"}, map[string]string{"a": "x"}},
		{"quote named", `(?'a'x)(y)`, false, "xy", []string{"xy", "x", "y"}, map[string]string{"a": "x"}},
		{"lookahead", `^/(?!private)([^/]+)`, false, "/public/x", []string{"/public", "public"}, nil},
		{"lookahead miss", `^/(?!private)([^/]+)`, false, "/private/x", nil, nil},
		{"backreference", `^/(\w+)/\1$`, false, "/ab/ab", []string{"/ab/ab", "ab"}, nil},
		{"caseless", `^/VNC`, true, "/vnc.html", []string{"/vnc"}, nil},
		{"case sensitive", `^/VNC`, false, "/vnc.html", nil, nil},
		{"posix class", `^[[:alpha:]]+([[:digit:]]+)$`, false, "abc123", []string{"abc123", "123"}, nil},
		{"quoted literal", `^\Qa.b\E$`, false, "a.b", []string{"a.b"}, nil},
		{"quoted literal no dot", `^\Qa.b\E$`, false, "axb", nil, nil},
		{"optional group unset", `^(a)?(b)$`, false, "b", []string{"b", "<unset>", "b"}, nil},
		{"bytes not runes", `^/(.)(.*)$`, false, "/\xc3\xa9x", []string{"/\xc3\xa9x", "\xc3", "\xa9x"}, nil},
		{"invalid utf8 kept", `^/(.+)$`, false, "/\xff\xfe", []string{"/\xff\xfe", "\xff\xfe"}, nil},
		{"dollar before final newline", `a$`, false, "a\n", []string{"a"}, nil},
		{"non-capturing", `(?:a)(b)`, false, "ab", []string{"ab", "b"}, nil},
		{"empty last iteration (PCRE, not RE2)", `^(a|)+`, false, "aa", []string{"aa", ""}, nil},
		{"empty last iteration star", `^(a*)+`, false, "aab", []string{"aa", ""}, nil},
		{"escaped paren", `\((a)\)`, false, "(a)", []string{"(a)", "a"}, nil},
		{"paren in class", `[(](a)`, false, "(a", []string{"(a", "a"}, nil},
		{"websockify token", `^/websockify/(?<host>[a-z0-9.-]+)/(?<port>\d+)$`, false, "/websockify/vnc1.local/5901",
			[]string{"/websockify/vnc1.local/5901", "vnc1.local", "5901"}, map[string]string{"host": "vnc1.local", "port": "5901"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			re, err := CompileRegex(tc.pattern, tc.caseless)
			if err != nil {
				t.Fatal(err)
			}
			c, ok := re.Match(tc.subject)
			if ok != (tc.want != nil) {
				t.Fatalf("Match(%q) ok = %v, want %v", tc.subject, ok, tc.want != nil)
			}
			if ok != re.MatchString(tc.subject) {
				t.Errorf("MatchString disagrees with Match")
			}
			if !ok {
				return
			}
			if diff := cmp.Diff(tc.want, groups(c)); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
			for n, want := range tc.named {
				if got, _ := c.Named(n); got != want {
					t.Errorf("Named(%q) = %q, want %q", n, got, want)
				}
			}
		})
	}
}

// TestRegexEnginesAgree runs every RE2-compatible pattern on both engines.
func TestRegexEnginesAgree(t *testing.T) {
	patterns := []string{`^/(\w+)/(.*)$`, `(?<a>[a-z]+)(\d+)?`, `^/websockify`, `\.(js|css|png)$`, `^/(a|ab)(c|bcd)(d*)$`, `x*`}
	subjects := []string{"/abc/def", "/", "abc123", "/websockify?x", "/app/ui.js", "/abcd", "", "zzz"}
	for _, p := range patterns {
		for _, caseless := range []bool{false, true} {
			re := MustCompileRegex(p, caseless)
			if !re.UsesRE2() {
				t.Fatalf("%q should use RE2", p)
			}
			slow := *re
			slow.std = nil
			for _, s := range subjects {
				c1, ok1 := re.Match(s)
				c2, ok2 := slow.Match(s)
				if ok1 != ok2 || ok1 && !cmp.Equal(groups(c1), groups(c2)) {
					t.Errorf("%q on %q: std %v %v, regexp2 %v %v", p, s, ok1, groups(c1), ok2, groups(c2))
				}
			}
		}
	}
}

// badRegexes are checked against `nginx -t` when nginx is present; the
// recorded messages come from Debian's nginx 1.22 with PCRE2.
var badRegexes = map[string]string{
	"(abc":             `pcre2_compile() failed: missing closing parenthesis in "(abc"`,
	"a)":               `pcre2_compile() failed: unmatched closing parenthesis in "a)" at ")"`,
	"[z-a]":            `pcre2_compile() failed: range out of order in character class in "[z-a]" at "a]"`,
	"(?<n>a)(?<n>b)":   `pcre2_compile() failed: two named subpatterns have the same name (PCRE2_DUPNAMES not set) in "(?<n>a)(?<n>b)" at "b)"`,
	"(?P<n>a)(?P<n>b)": `pcre2_compile() failed: two named subpatterns have the same name (PCRE2_DUPNAMES not set) in "(?P<n>a)(?P<n>b)" at "b)"`,
	"(?<1a>x)":         `pcre2_compile() failed: subpattern name must start with a non-digit in "(?<1a>x)" at "1a>x)"`,
	"[abc":             `pcre2_compile() failed: missing terminating ] for character class in "[abc"`,
	"(?<n":             `pcre2_compile() failed: syntax error in subpattern name (missing terminator?) in "(?<n"`,
	"a(?":              `pcre2_compile() failed: missing closing parenthesis in "a(?"`,
	"[[:foo:]]":        `pcre2_compile() failed: unknown POSIX class name in "[[:foo:]]" at "foo:]]"`,
	`\`:                `pcre2_compile() failed: \ at end of pattern in "\"`,
}

func TestRegexErrors(t *testing.T) {
	for p, want := range badRegexes {
		_, err := CompileRegex(p, false)
		if err == nil || err.Error() != want {
			t.Errorf("CompileRegex(%q) = %v\nwant %s", p, err, want)
		}
	}
}

// regexProbes are compiled by nginx -t and by CompileRegex; both must
// accept or both fail with the same message. Patterns using PCRE features
// regexp2 cannot express are listed in regexUnsupported instead.
var regexProbes = []string{
	"a**", "*a", "+", "a{2,1}", "a{99999}", "(?z)", "(?<=a+)b", "a++b", "[a", "[]", "[^]", "a]", "(?#comment",
	"(?i", "(?i)A", `\p{Zz}`, `\c`, `\x{110000}`, `(?<n>a)\k<m>`, `\2(a)`, `(a)\2`, "(?P=n)", "(?P>n)",
	"a{,3}", "a(?<=b)", "(?<!a|bc)x", "[[:alpha:][:digit:]]", "[[:^alpha:]]", `\N{U+41}`, `\g{1}(a)`, `(a)\g1`,
	`(a)\g{-1}`, "(?<a-b>x)", "x{2}{3}", "(?=a)*", `\ddd\Z`, `a\z`, `[\d-z]`, `[a-\d]`, `\o{101}`, `\0101`,
	`(?'n'x)\k'n'`, "(?:", "())", "((a)", `\Q(`, `\E)`, "^*", "$?", `\b*`, "a|*", "(*)", "()*", "(?i)*", "a{3",
	"a{3,", "x{,3}", "(?<ab", "(?<a!>x)", `\x{ff}`, `\x{100}`, `[\x{100}]`, "(?(1)a|b)", "(a)(?(1)a|b)",
	"(?(<n>)a)", "(?<n>a)(?(<n>)a|b)", "[[:alpha:]-z]", "[a-[:digit:]]", `\ca`, `[\Qa-\E]`, `\Q*\E+`, "a++",
	"(?<=ab|c)d", "(?<=a|bc)d", "[[.a.]]", `\pL`, `\p{L}+`, `[\p{Lu}a]`, `\o{400}`, `(?<a>x)\g{a}`,
	`\k{n}(?<n>x)`, `\1`, `(a)\10`, `\12`, `[\12]`, `\x4`, "a{65536}", "a{1,65536}",
	"(?<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa>x)", "(abc", "a)", "[z-a]", "(?<n>a)(?<n>b)", "(?<1a>x)", "[[:foo:]]",
	`\`, "^/websockify(/.*)?$", `\.(?:js|css)$`, "(?i)^/VNC/(?<vnchost>[^/]+)",
}

var regexUnsupported = []string{`x\K`, "(?|a)", "(?R)", "(*UTF)a", "(?<a>x)(?&a)"}

func TestRegexErrorsNginx(t *testing.T) {
	requireNginx(t)
	check := func(p string) string {
		return nginxCheck(t, fmt.Sprintf("server { listen 127.0.0.1:1; location ~ %q { return 200; } }", p))
	}
	for _, p := range regexProbes {
		want := check(p)
		got := ""
		if _, err := CompileRegex(p, false); err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("%q:\nnginx: %s\nours:  %s", p, want, got)
		}
	}
	for _, p := range regexUnsupported {
		if msg := check(p); msg != "" {
			t.Errorf("%q: nginx rejects it too: %s", p, msg)
		}
		if _, err := CompileRegex(p, false); err == nil || !strings.HasPrefix(err.Error(), "unsupported regex feature") {
			t.Errorf("%q: %v, want unsupported", p, err)
		}
	}
}

// TestRegexDifferential compares captures with nginx: each pattern is a map
// regex over $uri whose value lists $1..$4.
func TestRegexDifferential(t *testing.T) {
	requireNginx(t)
	patterns := []struct {
		p        string
		caseless bool
	}{
		{`^/(?<a>x+)(y*)(z)?`, false},
		{`^/(?!priv)([^/]+)/?(.*)`, false},
		{`^/(\w+)-\1(.*)`, false},
		{`^/(.)(.)(.)`, false},
		{`^/VNC/([[:alpha:]]+)(\d*)`, true},
		{`(?P<ext>\.[a-z0-9]+)$`, false},
		{`^/(a|ab)(c|bcd)(d*)`, false},
		{`^/(.*?)(/+)(.*)$`, false},
		{`^/\Q.+\E(.*)`, false},
		{`^(?<whole>/)(?:x(y)|z(w))`, false},
		{`^/(\w+)(\W)(\d*)`, false},
		{`^/([[:^alpha:]]+)([\W\d]*)`, false},
		{`^/([^\D]+)(.)`, false},
		{`^/(?<a>\w)(\w)\k<a>\2`, false},
		{`^/(a|x)(\w)\g{-1}`, false},
		{`^/(x)?(?(1)x|y)(.*)`, false},
		{`^/(\w++)(\w)?`, false},
		{`^/(\x{c3})(\xa9)`, false},
		{`^/(\s|\h)?([^/]*)`, false},
		{`^/.*(?<=(ab|cd))(\w)`, false},
		{`^/(\p{L}+)`, false},
		{`(\W+)$`, false},
		{`^/(a|)+`, false},
		{`^/(\P{L}+)`, false},
		{`^/([\P{L}]+)`, false},
		{`^/(\p{^L}+)(\pL*)`, false},
		{`^/([^\p{L}x]+)`, false},
		{`^/([\p{Lu}\d]+)`, false},
		{"^/caf\xc3\xa9(.*)", true},
		{`^/caf\x{c3}\xa9(.*)`, true},
		{`^/(?:(a)|b)*`, false},
		{`^/((a)|b)+`, false},
		{`^/(a*)+`, false},
		{`^/(a+|b+)*`, false},
		{`^/x(\303)\251([\251\303]*)`, false},
	}
	subjects := []string{"/CAF%C3%A9x", "/caf%C3%89", "/%C3%89%C3%A9-1A", "/%D7x%AA%B5", "/aa", "/ab", "/b", "/aab", "/xxyx", "/ab%20ab%20", "/a%09b", "/123abc", "/abab", "/aab", "/xxxx", "/yab", "/cdx", "/x%C3%A9%C3%A9", "/x", "/xy", "/priv/a", "/pub/a/b", "/ab-ab!", "/ab-ac", "/%C3%A9%C3%A8x",
		"/vnc/Lite123", "/VNC/abc", "/app/ui.js", "/abcd", "/a//b", "/.+tail", "/zw", "/xy", "/%ff%fe%fd", "/a%0Ab"}
	var conf strings.Builder
	var tmpl strings.Builder
	g := NewRegistry()
	for i, p := range patterns {
		key := "~" + p.p
		if p.caseless {
			key = "~*" + p.p
		}
		fmt.Fprintf(&conf, "map $uri $r%d { %q \"m|$1|$2|$3|$4\"; default no; }\n", i, key)
		fmt.Fprintf(&tmpl, "%d=[$r%d]\n", i, i)
		m, err := NewMap(g, "$uri", []MapEntry{{key, "m|$1|$2|$3|$4"}, {"default", "no"}}, MapOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.DeclareMap(fmt.Sprintf("r%d", i), m); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Fprintf(&conf, "server { listen 127.0.0.1:{{PORT}}; location / { return 200 %q; } }", tmpl.String())
	addr := startNginx(t, conf.String(), false)
	ours := g.MustCompile(tmpl.String())
	for _, s := range subjects {
		status, body := rawGet(t, addr, s, nil)
		if status != 200 {
			t.Fatalf("%s: status %d", s, status)
		}
		r := newTestRequest(t, g, s, nil)
		if got := ours.Eval(r); got != body {
			u, _ := url.PathUnescape(s)
			t.Errorf("subject %q:\nnginx: %q\nours:  %q", u, body, got)
		}
	}
}

func BenchmarkRegexMatch(b *testing.B) {
	cases := []struct {
		name, p, s string
	}{
		{"prefix", `^/websockify`, "/websockify?token=abc"},
		{"captures", `^/vnc/(?<host>[a-z0-9.-]+)/(\d+)$`, "/vnc/host1.example/5901"},
		{"ext", `\.(js|css|png|svg)$`, "/app/images/icons/novnc-icon.svg"},
		{"lookahead", `^/(?!private)([^/]+)/(.*)$`, "/public/some/long/path.html"},
	}
	for _, c := range cases {
		re := MustCompileRegex(c.p, false)
		b.Run(c.name+"/auto", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				re.Match(c.s)
			}
		})
		slow := *re
		slow.std = nil
		b.Run(c.name+"/regexp2", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				slow.Match(c.s)
			}
		})
	}
}

// TestCompilePCREOptions runs the translator's UTF-8 and extended modes
// (ngx.re's "u" and "x"); the expectations were checked against Debian's
// lua-nginx-module (PCRE 8.39).
func TestCompilePCREOptions(t *testing.T) {
	u, x, ux := PCREOptions{UTF8: true, PCRE1: true}, PCREOptions{Extended: true, PCRE1: true}, PCREOptions{UTF8: true, Extended: true, PCRE1: true}
	tests := []struct {
		name    string
		pattern string
		o       PCREOptions
		subject string
		want    []string // nil: no match
	}{
		{"utf dot is a character", `^.`, u, "é", []string{"é"}},
		{"byte dot is a byte", `^.`, PCREOptions{}, "é", []string{"\xc3"}},
		{"utf literal quantified whole", "^é+$", u, "éé", []string{"éé"}},
		{"utf \\w stays ASCII", `\w+`, u, "héllo", []string{"h"}},
		{"utf \\s stays ASCII", `\s`, u, "a\u00a0b", nil},
		{"utf \\h knows NBSP", `\h`, u, "a\u00a0b", []string{"\u00a0"}},
		{"utf \\v knows U+2028", `\v`, u, "a\u2028b", []string{"\u2028"}},
		{"utf \\R knows NEL", `\R`, u, "a\u0085b", []string{"\u0085"}},
		{"utf \\b is ASCII", `\bx\b`, u, "éxé", []string{"x"}},
		{"utf \\x{} code point", `\x{20ac}+`, u, "€€", []string{"€€"}},
		{"utf \\xHH code point", `\xe9`, u, "é", []string{"é"}},
		{"utf octal code point", `\351`, u, "é", []string{"é"}},
		{"byte octal", `\351`, PCREOptions{}, "\xe9", []string{"\xe9"}},
		{"utf class range", `[à-ÿ]+`, u, "éè", []string{"éè"}},
		{"utf caseless", `é`, PCREOptions{UTF8: true, Caseless: true}, "É", []string{"É"}},
		{"byte caseless has no é/É", `é`, PCREOptions{Caseless: true}, "É", nil},
		{"utf property", `\p{Greek}+`, u, "Σσ", []string{"Σσ"}},
		{"utf posix is ASCII", `[[:alpha:]]+`, u, "aé", []string{"a"}},
		{"utf backreference", `(?<n>.)\k<n>`, u, "éé", []string{"éé", "é"}},
		{"utf possessive", `é*+`, u, "ééx", []string{"éé"}},
		{"x drops spaces", `a b`, x, "ab", []string{"ab"}},
		{"x escaped space", `a\ b`, x, "a b", []string{"a b"}},
		{"x comment", "a # note\nb", x, "ab", []string{"ab"}},
		{"x class keeps space", `[a b]+`, x, "a b", []string{"a b"}},
		{"x quantifier after space", `a +b`, x, "aab", []string{"aab"}},
		{"x lazy after space", `a+ ?`, x, "aa", []string{"a"}},
		{"x \\Q keeps spaces", `\Q a \E`, x, " a ", []string{" a "}},
		{"x NBSP is no space", "\u00a0a", ux, "a", nil},
		{"inline x", `(?x) a b`, PCREOptions{}, "ab", []string{"ab"}},
		{"inline x group", `(?x: a b ) c`, PCREOptions{}, "ab c", []string{"ab c"}},
		{"inline -x", `(a (?-x) b) c`, x, "a bc", []string{"a bc", "a b"}},
		{"x named group", `(?<n> a ) \k<n>`, x, "aa", []string{"aa", "a"}},
		{"anchored", `b`, PCREOptions{Anchored: true}, "ab", nil},
		{"multiline", `^b`, PCREOptions{Multiline: true}, "a\nb", []string{"b"}},
		{"dotall", `a.b`, PCREOptions{DotAll: true}, "a\nb", []string{"a\nb"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			re, groups, err := CompilePCRE(tc.pattern, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			var m *regexp2.Match
			if tc.o.UTF8 {
				m, err = re.FindRunesMatch([]rune(tc.subject))
			} else {
				m, err = re.FindRunesMatch(ByteRunes(tc.subject))
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			if m != nil {
				for n := 0; n <= len(groups); n++ {
					g := m.GroupByNumber(n)
					if tc.o.UTF8 {
						got = append(got, string(g.Runes()))
					} else {
						got = append(got, string(runeBytes(g.Runes())))
					}
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%q on %q (-want +got):\n%s", tc.pattern, tc.subject, diff)
			}
		})
	}
}

// runeBytes undoes ByteRunes.
func runeBytes(rs []rune) []byte {
	b := make([]byte, len(rs))
	for i, r := range rs {
		if r >= 0xF780 {
			r -= 0xF700
		}
		b[i] = byte(r)
	}
	return b
}

// TestCompilePCREErrorsPCRE1 checks ngx.re's compile errors (PCRE 8.39's
// wording and offsets, as lua-nginx-module reports them).
func TestCompilePCREErrorsPCRE1(t *testing.T) {
	u, x := PCREOptions{UTF8: true, PCRE1: true}, PCREOptions{Extended: true, PCRE1: true}
	tests := []struct {
		pattern string
		o       PCREOptions
		want    string
	}{
		{"(abc", u, `pcre_compile() failed: missing ) in "(abc"`},
		{"a**", x, `pcre_compile() failed: nothing to repeat in "a**" at "*"`},
		{"\xff", u, `pcre_compile() failed: invalid UTF-8 string in "` + "\xff" + `" at "` + "\xff" + `"`},
		{`\x{110000}`, u, `pcre_compile() failed: character value in \x{} or \o{} is too large in "\x{110000}" at "}"`},
		{`\x{d800}`, u, `pcre_compile() failed: disallowed Unicode code point (>= 0xd800 && <= 0xdfff) in "\x{d800}" at "}"`},
		{`\x{100}`, PCREOptions{PCRE1: true}, `pcre_compile() failed: character value in \x{} or \o{} is too large in "\x{100}" at "}"`},
		{"( ?:a)", x, `pcre_compile() failed: nothing to repeat in "( ?:a)" at "?:a)"`},
		{"(? :a)", x, `pcre_compile() failed: unrecognized character after (? or (?- in "(? :a)" at " :a)"`},
		{`\p {L}`, x, `pcre_compile() failed: unknown property name after \P or \p in "\p {L}" at " {L}"`},
		{"(?<=a+)b", u, `pcre_compile() failed: lookbehind assertion is not fixed length in "(?<=a+)b" at ")b"`},
		{"(?<n>a)(?<n>b)", u, `pcre_compile() failed: two named subpatterns have the same name in "(?<n>a)(?<n>b)" at ">b)"`},
		{`\k<q>`, u, `pcre_compile() failed: reference to non-existent subpattern in "\k<q>" at ">"`},
		{`[[:foo:]]`, u, `pcre_compile() failed: unknown POSIX class name in "[[:foo:]]" at "foo:]]"`},
		{"(?z)", u, `pcre_compile() failed: unrecognized character after (? or (?- in "(?z)" at "z)"`},
		{`\2(a)`, u, `pcre_compile() failed: reference to non-existent subpattern in "\2(a)"`},
		{`\L`, u, `pcre_compile() failed: PCRE does not support \L, \l, \N{name}, \U, or \u in "\L" at "L"`},
	}
	for _, tc := range tests {
		_, _, err := CompilePCRE(tc.pattern, tc.o)
		if err == nil || err.Error() != tc.want {
			t.Errorf("CompilePCRE(%q, %+v) = %v\nwant %s", tc.pattern, tc.o, err, tc.want)
		}
	}
	// PCRE 8.x takes "-" after a class literally where PCRE2 refuses it.
	if _, _, err := CompilePCRE(`[\d-z]`, PCREOptions{PCRE1: true}); err != nil {
		t.Errorf(`[\d-z] in PCRE1: %v`, err)
	}
}
