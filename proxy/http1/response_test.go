package http1

import (
	"net/http"
	"slices"
	"testing"
)

// TestFixedIndex: the switch agrees with the fixed list.
func TestFixedIndex(t *testing.T) {
	for _, k := range append(fixed[:], "Etag", "X-Date", "content-type", "") {
		if got, want := fixedIndex(k), slices.Index(fixed[:], k); got != want {
			t.Errorf("fixedIndex(%q) = %d, want %d", k, got, want)
		}
	}
}

// TestBrowserDisables: keepalive_disable msie6 ends keep-alive for POSTs
// from MSIE 4 to 6 (not 6 with SV1), safari for Safari on Mac OS X.
func TestBrowserDisables(t *testing.T) {
	const (
		msie6  = "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)"
		sv1    = "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)"
		safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
	)
	for _, c := range []struct {
		msie, saf  bool
		method, ua string
		want       bool
	}{
		{true, false, "POST", msie6, true},
		{true, false, "GET", msie6, false},
		{true, false, "POST", sv1, false},
		{true, false, "POST", "Opera " + msie6, false},
		{false, false, "POST", msie6, false},
		{true, false, "GET", safari, false},
		{false, true, "GET", safari, true},
		{true, true, "GET", safari, true},
		{false, true, "GET", msie6, false},
	} {
		r := &http.Request{Method: c.method, Header: http.Header{"User-Agent": {c.ua}}}
		p := &Params{KeepaliveDisableMSIE6: c.msie, KeepaliveDisableSafari: c.saf}
		if got := browserDisables(p, r); got != c.want {
			t.Errorf("msie6 %v safari %v %s %q: %v, want %v", c.msie, c.saf, c.method, c.ua, got, c.want)
		}
	}
}

func TestMSIE6(t *testing.T) {
	for ua, want := range map[string]bool{
		"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)":                true,
		"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)":           false,
		"Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)":                    true,
		"Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)":                false,
		"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; en) Opera 8.50": false, // Opera is not MSIE
		"Mozilla/5.0": false,
		"MSIE 6.":     false, // nginx wants a byte after the version
	} {
		if got := MSIE6(ua); got != want {
			t.Errorf("MSIE6(%q) = %v, want %v", ua, got, want)
		}
	}
}
