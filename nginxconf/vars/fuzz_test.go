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
