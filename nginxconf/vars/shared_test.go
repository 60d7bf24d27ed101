package vars

import (
	"net/http"
	"testing"
)

// nginx keeps the value of a map only when the configuration names it (an
// indexed variable): one read by name alone (SSI echo, ngx.var) is
// computed at every read.
func TestMapKeptOnlyWhenNamed(t *testing.T) {
	g := NewRegistry()
	named, err := NewMap(g, "$uri", []MapEntry{{"default", "m:$uri"}}, MapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byName, _ := NewMap(g, "$uri", []MapEntry{{"default", "n:$uri"}}, MapOptions{})
	if err := g.DeclareMap("m", named); err != nil {
		t.Fatal(err)
	}
	if err := g.DeclareMap("n", byName); err != nil {
		t.Fatal(err)
	}
	g.MustCompile("$m") // a reference in the configuration
	r := newTestRequest(t, g, "/a", nil)
	m1, _ := r.Get("m")
	n1, _ := r.Get("n")
	r.URI = "/b"
	m2, _ := r.Get("m")
	n2, _ := r.Get("n")
	if m1 != "m:/a" || m2 != "m:/a" {
		t.Errorf("named map: %q then %q, want m:/a twice", m1, m2)
	}
	if n1 != "n:/a" || n2 != "n:/b" {
		t.Errorf("map read by name only: %q then %q, want n:/a then n:/b", n1, n2)
	}
}

// $sent_http_* named in the configuration keep their first value, found
// or not; read by name alone they are computed at every read.
func TestSentHTTPKept(t *testing.T) {
	g := NewRegistry()
	tp := g.MustCompile("[$sent_http_x_a]")
	log := g.MustCompile("$sent_http_x_a $sent_http_x_c")
	r := newTestRequest(t, g, "/", nil)
	r.RespHeader = http.Header{}
	if got := tp.Eval(r); got != "[]" {
		t.Fatalf("before the header: %q", got)
	}
	r.RespHeader.Set("X-A", "1")
	r.RespHeader.Set("X-B", "2")
	if got := tp.Eval(r); got != "[]" {
		t.Errorf("not found read first stays: %q", got)
	}
	if v, ok := r.Get("sent_http_x_b"); v != "2" || !ok {
		t.Errorf("by name: %q %v", v, ok)
	}
	r.RespHeader.Set("X-B", "3")
	if v, _ := r.Get("sent_http_x_b"); v != "3" {
		t.Errorf("by name, read again: %q", v)
	}
	// a log line reads the kept value, and keeps none of its own
	r.RespHeader.Set("X-C", "c")
	if got := string(log.AppendLog(nil, r, LogEscapeDefault)); got != "- c" {
		t.Errorf("log: %q", got)
	}
	r2 := newTestRequest(t, g, "/", nil)
	r2.RespHeader = http.Header{"X-C": {"c"}}
	log.AppendLog(nil, r2, LogEscapeDefault)
	if r2.vals != nil {
		t.Error("a log line made the slots")
	}
}

// A subrequest sharing its parent's values (SSI include, auth_request)
// sees the parent's `set` and kept map values, and the parent sees its
// own; OwnValues (a Lua capture) starts afresh.
func TestShareValues(t *testing.T) {
	g := NewRegistry()
	if err := g.Declare("x"); err != nil {
		t.Fatal(err)
	}
	m, _ := NewMap(g, "$uri", []MapEntry{{"default", "m:$uri"}}, MapOptions{})
	vm, _ := NewMap(g, "$uri", []MapEntry{{"default", "v:$uri"}}, MapOptions{Volatile: true})
	g.DeclareMap("m", m)
	g.DeclareMap("vm", vm)
	x, _ := g.Var("x")
	tp := g.MustCompile("$x|$m|$vm")
	main := newTestRequest(t, g, "/main", nil)
	x.Set(main, "main")
	sub := newTestRequest(t, g, "/sub", nil)
	sub.Main = main
	sub.ShareValues(main)
	if got := tp.Eval(sub); got != "main|m:/sub|v:/sub" {
		t.Errorf("subrequest: %q", got)
	}
	x.Set(sub, "sub")
	if got := tp.Eval(main); got != "sub|m:/sub|v:/main" {
		t.Errorf("main after the subrequest: %q", got)
	}
	own := newTestRequest(t, g, "/own", nil)
	own.ShareValues(main)
	own.OwnValues()
	if got := tp.Eval(own); got != "|m:/own|v:/own" {
		t.Errorf("own values: %q", got)
	}
}
