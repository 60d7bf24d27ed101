package http1

import (
	"math/rand/v2"
	"net/url"
	"testing"
)

// TestPlainURI: where setPlainURI takes a target, it makes what
// url.ParseRequestURI makes of it.
func TestPlainURI(t *testing.T) {
	for _, uri := range []string{"/", "/small", "/a/b.html?x=1&y=2", "//x/y", "/a;b=c,d:e@f$g&h+i~j", "/?a?b", "/a?b#c",
		"/a?%zz", "/a?x y", "/a?x\x7f", "/%41", "/a b", "/a!", "/a?", "/a??", "*", "http://h/x", "/a#b", "/é"} {
		var u url.URL
		if !setPlainURI(&u, uri) {
			continue
		}
		want, err := url.ParseRequestURI(uri)
		if err != nil {
			t.Errorf("%q: taken, but url.ParseRequestURI fails: %v", uri, err)
			continue
		}
		if u != *want {
			t.Errorf("%q: %#v, want %#v", uri, u, *want)
		}
	}
	// and on many small targets of the bytes that matter
	const alphabet = "/?#%aZ9-_.~$&+,:;=@! \x01\x7f\xc3"
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		b := []byte{'/'}
		for range rnd.IntN(8) {
			b = append(b, alphabet[rnd.IntN(len(alphabet))])
		}
		uri := string(b)
		var u url.URL
		if !setPlainURI(&u, uri) {
			continue
		}
		if want, err := url.ParseRequestURI(uri); err != nil || u != *want {
			t.Fatalf("%q: %#v, want %#v (%v)", uri, u, want, err)
		}
	}
	for _, uri := range []string{"/a b", "/%41", "/a?", "/é", "/a!", "*", "/a?x\x01"} {
		var u url.URL
		if setPlainURI(&u, uri) {
			t.Errorf("%q taken", uri)
		}
	}
}
