package proxy

import (
	"math/rand"
	"net/http/httptest"
	"strings"
	"testing"

	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
)

// newTestSubFilter compiles pairs (pattern, replacement, ...) as the
// config would and returns a fresh filter for one response.
func newTestSubFilter(t *testing.T, once bool, pairs ...string) *subFilter {
	t.Helper()
	reg := vars.NewRegistry()
	var pats []subPattern
	for i := 0; i < len(pairs); i += 2 {
		m, err := reg.Compile(nginxconf.LowerASCII(pairs[i]))
		if err != nil {
			t.Fatal(err)
		}
		v, err := reg.Compile(pairs[i+1])
		if err != nil {
			t.Fatal(err)
		}
		s, _ := m.Const()
		pats = append(pats, subPattern{match: s, value: &nginxconf.SubFilter{Match: m, Value: v}})
	}
	rq := &request{v: vars.NewRequest(reg, httptest.NewRequest("GET", "/", nil))}
	return &subFilter{rq: rq, t: newSubTables(pats), once: once}
}

// runSub filters body written in the given pieces.
func runSub(f *subFilter, pieces []string) string {
	var out strings.Builder
	for _, p := range pieces {
		out.Write(f.write([]byte(p)))
	}
	out.Write(f.end())
	return out.String()
}

func TestSubFilter(t *testing.T) {
	tests := []struct {
		name  string
		once  bool
		pairs []string
		in    string
		want  string
	}{
		{"once", true, []string{"hello", "bye"}, "Hello hello", "bye hello"},
		{"all", false, []string{"hello", "bye"}, "Hello hEllo x", "bye bye x"},
		{"case of the pattern", false, []string{"HeLLo", "bye"}, "hello HELLO", "bye bye"},
		{"first pair at a position", false, []string{"abc", "X", "ab", "Y", "abcd", "Z", "bc", "W"},
			"ab abc abcd", "Y X Xd"},
		{"leftmost wins", false, []string{"bcd", "1", "abc", "2"}, "abcd", "2d"},
		{"once per pair", true, []string{"a", "1", "b", "2"}, "abab", "12ab"},
		{"held at the end goes out as it is", false, []string{"abcd", "X", "bc", "Y"}, "xabc", "xabc"},
		{"a begun match that fails", false, []string{"abcd", "X", "bc", "Y"}, "xabce bc", "xaYe Y"},
		{"overlap", false, []string{"aa", "b"}, "aaaaa", "bba"},
		{"empty replacement", false, []string{"x", ""}, "axbxc", "abc"},
		{"non-ASCII bytes compare exactly", false, []string{"é", "e"}, "É é", "É e"},
		{"longer than the body", false, []string{"hello world", "x"}, "hello", "hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runSub(newTestSubFilter(t, tt.once, tt.pairs...), []string{tt.in})
			if got != tt.want {
				t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestSubFilterPieces checks that the body's split into writes never
// changes the result: every split in two, byte by byte, and random splits
// of random bodies over a small alphabet.
func TestSubFilterPieces(t *testing.T) {
	pairs := []string{"abca", "1", "bc", "22", "cab", "", "aab", "$uri", "ca", "4"}
	for _, once := range []bool{false, true} {
		whole := func(in string) string { return runSub(newTestSubFilter(t, once, pairs...), []string{in}) }
		rng := rand.New(rand.NewSource(1))
		for n := 0; n < 300; n++ {
			b := make([]byte, rng.Intn(40))
			for i := range b {
				b[i] = "abcABx"[rng.Intn(6)]
			}
			in := string(b)
			want := whole(in)
			for i := 0; i <= len(in); i++ {
				if got := runSub(newTestSubFilter(t, once, pairs...), []string{in[:i], in[i:]}); got != want {
					t.Fatalf("once=%v %q split at %d: %q, whole: %q", once, in, i, got, want)
				}
			}
			bytewise := strings.Split(in, "")
			if got := runSub(newTestSubFilter(t, once, pairs...), bytewise); got != want {
				t.Fatalf("once=%v %q byte by byte: %q, whole: %q", once, in, got, want)
			}
		}
	}
}

func TestSubTypeMatch(t *testing.T) {
	tests := []struct {
		types []string
		ctype string
		want  bool
	}{
		{nil, "text/html", true},
		{nil, "TEXT/HTML", true},
		{nil, "text/html; charset=utf-8", true},
		{nil, "text/html;charset=utf-8", true},
		{nil, "text/html; q=1", false}, // nginx tests the whole value then
		{nil, "text/plain", false},
		{nil, "", false},
		{[]string{"text/html", "text/plain"}, "text/plain", true},
		{[]string{"*"}, "", true},
		{[]string{"*"}, "image/png", true},
	}
	for _, tt := range tests {
		if got := subTypeMatch(tt.types, tt.ctype); got != tt.want {
			t.Errorf("subTypeMatch(%q, %q) = %v, want %v", tt.types, tt.ctype, got, tt.want)
		}
	}
}

// BenchmarkSubFilter filters a 1 MiB HTML body in 32 KiB writes with three
// pairs (sub_filter_once off), the shape of a rewritten proxied page.
func BenchmarkSubFilter(b *testing.B) {
	var page strings.Builder
	for page.Len() < 1<<20 {
		page.WriteString(`<div class="row"><a href="http://backend.internal:8080/app/x">link</a> some text here</div>` + "\n")
	}
	body := []byte(page.String())
	t := &testing.T{}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		f := newTestSubFilter(t, false, "http://backend.internal:8080/", "/", "class=\"row\"", "class=\"r\"", "</body>", "<script></script></body>")
		for off := 0; off < len(body); off += 32 << 10 {
			f.write(body[off:min(off+32<<10, len(body))])
		}
		f.end()
	}
}
