package vars

import (
	"strings"
	"testing"
)

func FuzzNormalizeURI(f *testing.F) {
	for _, s := range []string{"/", "/a//b/./c/../d", "/%2e%2e/x", "/a/%2F..%2Fb", "/%zz", "/a/..."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := NormalizeURI(raw)
		if err != nil {
			return
		}
		if !strings.HasPrefix(u, "/") || strings.Contains(u, "//") || strings.Contains(u, "/./") ||
			strings.Contains(u, "/../") || strings.HasSuffix(u, "/.") || strings.HasSuffix(u, "/..") {
			t.Errorf("NormalizeURI(%q) = %q, not normal", raw, u)
		}
		if strings.IndexByte(u, 0) >= 0 {
			t.Errorf("NormalizeURI(%q) holds NUL", raw)
		}
	})
}

func FuzzCompileRegex(f *testing.F) {
	for _, s := range regexProbes {
		f.Add(s, "/websockify/a/5901")
	}
	f.Fuzz(func(t *testing.T, pattern, subject string) {
		re, err := CompileRegex(pattern, false)
		if err != nil {
			return
		}
		c, ok := re.Match(subject)
		if ok != re.MatchString(subject) {
			t.Errorf("%q on %q: Match and MatchString disagree", pattern, subject)
		}
		if ok && c.Len() != re.NumCaptures()+1 {
			t.Errorf("%q: %d groups, want %d", pattern, c.Len(), re.NumCaptures()+1)
		}
	})
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"$uri", "${x}y", "$1$2", "a$", "${", "$http_x_y:$arg_a"} {
		f.Add(s)
	}
	g := NewRegistry()
	f.Fuzz(func(t *testing.T, text string) {
		tp, err := g.Compile(text)
		if err != nil {
			return
		}
		if c, ok := tp.Const(); ok && c != text {
			t.Errorf("Const(%q) = %q", text, c)
		}
	})
}

// FuzzCompilePCRE compiles with every option set (ngx.re's u, x, i, m, s,
// a; PCRE1) and matches: nothing may panic, and the groups reported must
// be the regex's.
func FuzzCompilePCRE(f *testing.F) {
	for _, s := range regexProbes {
		f.Add(s, "héllo wörld\n\xff", uint8(0x13))
	}
	for _, s := range []string{"(?x) a # c\n b", `(?<n> \x{e9} ) \k<n>`, "é+ ?", `[à-ÿ\h]+\b`, `(?-x: a)`} {
		f.Add(s, "a éé b", uint8(0x3f))
	}
	f.Fuzz(func(t *testing.T, pattern, subject string, bits uint8) {
		o := PCREOptions{Caseless: bits&1 != 0, Multiline: bits&2 != 0, DotAll: bits&4 != 0,
			Extended: bits&8 != 0, UTF8: bits&16 != 0, Anchored: bits&32 != 0, PCRE1: bits&64 != 0}
		re, groups, err := CompilePCRE(pattern, o)
		if err != nil {
			return
		}
		runes := ByteRunes(subject)
		if o.UTF8 {
			runes = []rune(subject)
		}
		m, err := re.FindRunesMatch(runes)
		if err != nil || m == nil {
			return
		}
		if n := len(m.Groups()); n != len(groups)+1 {
			t.Errorf("%q %+v: %d groups, want %d", pattern, o, n, len(groups)+1)
		}
	})
}
