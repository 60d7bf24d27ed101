package luahooks

import (
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestHeaderOrder replays the /luaset case of test/proxy_test.go, whose
// order nginx + lua-nginx-module sent: received lines x-b, X-A, x-b,
// accept.
func TestHeaderOrder(t *testing.T) {
	h := http.Header{"X-B": {"1", "3"}, "X-A": {"2"}, "Accept": {"*/*"}}
	req := &Request{HTTP: &http.Request{Header: h}}
	for _, s := range []struct {
		name string
		vals []string
	}{
		{"X-New", []string{"n1"}},
		{"x-b", []string{"B"}},
		{"X-Multi", []string{"m1", "m2"}},
		{"Accept", []string{"a1", "a2"}},
		{"x-a", nil},
		{"X-A", []string{"again"}},
		{"x-new", []string{"n2"}},
		{"X-Gone", []string{"g"}},
		{"X-Gone", nil},
		{"x-multi", []string{"m3", "m4", "m5"}},
	} {
		req.setHeader(s.name, s.vals, s.vals == nil)
	}
	o := req.HeaderOrder
	in := map[string]int{}
	for _, k := range []string{"X-B", "X-A", "Accept", "X-New", "X-Multi", "X-Gone"} {
		in[k] = o.InPlace(h, k)
	}
	if d := cmp.Diff(map[string]int{"X-B": 1, "X-A": 0, "Accept": 1, "X-New": 0, "X-Multi": 0, "X-Gone": 0}, in); d != "" {
		t.Errorf("values at received lines (-want +got):\n%s", d)
	}
	want := []HeaderLine{{"X-New", "X-New"}, {"X-Multi", "X-Multi"}, {"Accept", "Accept"}, {"X-A", "X-A"},
		{"X-Multi", "x-multi"}, {"X-Multi", "x-multi"}}
	if d := cmp.Diff(want, o.Appended); d != "" {
		t.Errorf("lines at the end (-want +got):\n%s", d)
	}
	c := o.Clone()
	c.Set(h, "X-New", "X-New", nil)
	if !slices.Equal(o.Appended, want) || o.InPlace(h, "X-New") != 0 {
		t.Error("a clone's change reached the original")
	}
	var none *HeaderOrder
	if none.InPlace(h, "X-B") != 1 || none.Clone() != nil {
		t.Error("a nil HeaderOrder is not the list as received")
	}
}
