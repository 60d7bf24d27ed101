package vars

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// newTestRequest builds a request as the server would see it.
func newTestRequest(t *testing.T, g *Registry, target string, hdr map[string][]string) *Request {
	t.Helper()
	hr := httptest.NewRequest("GET", target, nil)
	hr.RemoteAddr = "127.0.0.1:5555"
	for k, vs := range hdr {
		if strings.EqualFold(k, "host") {
			hr.Host = vs[0]
			continue
		}
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	ctx := context.WithValue(hr.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080})
	return NewRequest(g, hr.WithContext(ctx))
}

func TestTemplateEval(t *testing.T) {
	g := NewRegistry()
	if err := g.Declare("foo"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, tmpl, target string
		hdr                map[string][]string
		want               string
	}{
		{"literal", "plain text", "/", nil, "plain text"},
		{"uri and args", "[$uri][$args][$is_args]", "/a//b/./c/../d?x=1", nil, "[/a/b/d][x=1][?]"},
		{"no args", "[$args][$is_args][$query_string]", "/x?", nil, "[][][]"},
		{"arg case-insensitive first", "$arg_a|$ARG_b|$arg_c", "/?A=1&a=2&b=%20&cc=3", nil, "1|%20|"},
		{"arg needs equals", "[$arg_a]", "/?a&a=", nil, "[]"},
		{"braces", "${uri}x$uri-", "/p", nil, "/px/p-"},
		{"host lowercased without port", "$host", "/", map[string][]string{"Host": {"WWW.Foo.COM.:8080"}}, "www.foo.com"},
		{"http_host raw", "$http_host", "/", map[string][]string{"Host": {"WWW.Foo.COM.:8080"}}, "WWW.Foo.COM.:8080"},
		{"header dash", "$http_x_real_ip", "/", map[string][]string{"X-Real-IP": {"1.2.3.4"}}, "1.2.3.4"},
		{"header first", "$http_x_a", "/", map[string][]string{"X-A": {"a1", "a2"}}, "a1"},
		{"xff joined", "$http_x_forwarded_for", "/", map[string][]string{"X-Forwarded-For": {"1.1.1.1", "2.2.2.2"}}, "1.1.1.1, 2.2.2.2"},
		{"cookie joined", "$http_cookie", "/", map[string][]string{"Cookie": {"a=1 ; b=2", "a=3"}}, "a=1 ; b=2; a=3"},
		{"cookie raw", "[$cookie_a][$cookie_B][$cookie_c]", "/", map[string][]string{"Cookie": {"a=1 ; b=2", "c=%41"}}, "[1 ][2][%41]"},
		{"remote", "$remote_addr:$remote_port $server_addr:$server_port", "/", nil, "127.0.0.1:5555 127.0.0.1:8080"},
		{"unset set var", "[$foo]", "/", nil, "[]"},
		{"missing capture", "[$1]", "/", nil, "[]"},
		{"version", "$nginx_version", "/", nil, "1.22.1"},
		{"request", "$request", "/a?b", nil, "GET /a?b HTTP/1.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := g.Compile(tc.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			r := newTestRequest(t, g, tc.target, tc.hdr)
			if got := tp.Eval(r); got != tc.want {
				t.Errorf("Eval(%q) = %q, want %q", tc.tmpl, got, tc.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	g := NewRegistry()
	tests := map[string]string{
		"$nope":   `unknown "nope" variable`,
		"$0":      `unknown "0" variable`,
		"${x":     `the closing bracket in "x" variable is missing`,
		"${x y}":  `the closing bracket in "x" variable is missing`,
		"a$":      `invalid variable name`,
		"a${}":    `invalid variable name`,
		"a$-":     `invalid variable name`,
		"$NoPe_1": `unknown "nope_1" variable`,
	}
	for in, want := range tests {
		_, err := g.Compile(in)
		if err == nil || err.Error() != want {
			t.Errorf("Compile(%q) error = %v, want %q", in, err, want)
		}
	}
	for _, ok := range []string{"$http_anything", "$arg_x", "$cookie_y", "$sent_http_content_type", "$upstream_http_x", "$1$9x"} {
		if _, err := g.Compile(ok); err != nil {
			t.Errorf("Compile(%q): %v", ok, err)
		}
	}
}

func TestConst(t *testing.T) {
	g := NewRegistry()
	for in, want := range map[string]bool{"": true, "abc": true, "a$uri": false, "$1": false} {
		if _, got := g.MustCompile(in).Const(); got != want {
			t.Errorf("Const(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestNgxVar(t *testing.T) {
	g := NewRegistry()
	for _, n := range []string{"e", "declared_unset"} {
		if err := g.Declare(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Declare("uri"); err == nil || err.Error() != `the duplicate "uri" variable` {
		t.Errorf("Declare(uri) = %v", err)
	}
	if err := g.Declare("args"); err != nil {
		t.Errorf("Declare(args) = %v", err)
	}
	r := newTestRequest(t, g, "/l?A=1&m=xx", nil)
	get := func(n string) string {
		v, ok := r.Get(n)
		if !ok {
			return "nil"
		}
		return "[" + v + "]"
	}
	var log []string
	try := func(err error) {
		if err != nil {
			log = append(log, err.Error())
		}
	}
	log = append(log, "undef="+get("nope"), "declared_unset="+get("declared_unset"), "arg_a="+get("ARG_A"), "uri="+get("URI"))
	try(r.Set("e", ""))
	log = append(log, "e="+get("e"))
	try(r.Set("nope", "1"))
	try(r.Set("arg_a", "1"))
	try(r.Set("uri", "/x"))
	try(r.Set("host", "x"))
	try(r.Set("http_foo", "x"))
	try(r.Set("1", "x"))
	try(r.Set("args", "a=5&b"))
	log = append(log, "args="+get("args")+" arg_a="+get("arg_a")+" qs="+get("query_string")+" is_args="+get("is_args"))
	try(r.Unset("e"))
	log = append(log, "e="+get("e"))
	try(r.Unset("args"))
	log = append(log, "args="+get("args")+" is_args="+get("is_args"))
	want := []string{
		"undef=nil", "declared_unset=[]", "arg_a=[1]", "uri=[/l]",
		"e=[]",
		`variable "nope" not found for writing; maybe it is a built-in variable that is not changeable or you forgot to use "set $nope '';" in the config file to define it first`,
		`variable "arg_a" not found for writing; maybe it is a built-in variable that is not changeable or you forgot to use "set $arg_a '';" in the config file to define it first`,
		`variable "uri" not changeable`,
		`variable "host" not changeable`,
		`variable "http_foo" not found for writing; maybe it is a built-in variable that is not changeable or you forgot to use "set $http_foo '';" in the config file to define it first`,
		`bad variable name`,
		"args=[a=5&b] arg_a=[5] qs=[a=5&b] is_args=[?]",
		"e=nil",
		"args=nil is_args=[]",
	}
	if diff := cmp.Diff(want, log); diff != "" {
		t.Errorf("ngx.var log (-want +got):\n%s", diff)
	}
}

// TestCompileErrorsNginx checks the recorded template errors on nginx -t.
func TestCompileErrorsNginx(t *testing.T) {
	requireNginx(t)
	for _, in := range []string{"$nope", "$0", "${x", "a$", "a${}", "a$-"} {
		got := nginxCheck(t, fmt.Sprintf("server { listen 127.0.0.1:1; location / { return 200 %q; } }", in))
		_, err := NewRegistry().Compile(in)
		if err == nil || err.Error() != got {
			t.Errorf("template %q: nginx %q, ours %v", in, got, err)
		}
	}
}

func TestNormalizeURI(t *testing.T) {
	tests := map[string]string{
		"/":              "/",
		"/a//b/./c/../d": "/a/b/d",
		"/%41%2F..%2Fx":  "/x",
		"/../x":          "error",
		"/a/..":          "/",
		"/a/b/..":        "/a/",
		"/%zz":           "error",
		"/%00":           "error",
		"/%4":            "error",
		"/a%20b+c":       "/a b+c",
		"/a/...":         "/a/...",
		"a":              "error",
	}
	for in, want := range tests {
		got, err := NormalizeURI(in)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("NormalizeURI(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMapSemantics(t *testing.T) {
	g := NewRegistry()
	m, err := NewMap(g, "$arg_x", []MapEntry{
		{"Foo", "exact"}, {"~^F(?<n>o+)$", "re-$n-$1"}, {"default", "d"},
	}, MapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.DeclareMap("y", m); err != nil {
		t.Fatal(err)
	}
	tp := g.MustCompile("$y")
	for q, want := range map[string]string{"x=foo": "exact", "x=Fooo": "re-ooo-ooo", "x=z": "d", "": "d"} {
		if got := tp.Eval(newTestRequest(t, g, "/?"+q, nil)); got != want {
			t.Errorf("?%s: %q, want %q", q, got, want)
		}
	}
	if _, err := NewMap(g, "$arg_x", []MapEntry{{"a", "1"}, {"A", "2"}}, MapOptions{}); err == nil || err.Error() != `conflicting parameter "a"` {
		t.Errorf("duplicate key: %v", err)
	}
	if err := g.DeclareMap("uri", m); err == nil {
		t.Error("DeclareMap over a built-in succeeded")
	}
	// cached per request unless volatile
	r := newTestRequest(t, g, "/?x=foo", nil)
	first := tp.Eval(r)
	r.Set("args", "x=z")
	if got := tp.Eval(r); got != first {
		t.Errorf("non-volatile map re-evaluated: %q then %q", first, got)
	}
	vm, _ := NewMap(g, "$arg_x", []MapEntry{{"default", "v-$arg_x"}}, MapOptions{Volatile: true})
	g.DeclareMap("vol", vm)
	vt := g.MustCompile("$vol")
	r = newTestRequest(t, g, "/?x=1", nil)
	a := vt.Eval(r)
	r.Set("args", "x=2")
	if b := vt.Eval(r); a != "v-1" || b != "v-2" {
		t.Errorf("volatile map: %q then %q", a, b)
	}
}

func BenchmarkTemplateEval(b *testing.B) {
	g := NewRegistry()
	g.Declare("target")
	cases := map[string]string{
		"const":    "127.0.0.1:5901",
		"one var":  "$arg_port",
		"upstream": "$target:$arg_port",
		"log":      `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`,
	}
	hr := httptest.NewRequest("GET", "/websockify?token=abc&port=5901", nil)
	hr.RemoteAddr = "127.0.0.1:4444"
	hr.Header.Set("User-Agent", "bench")
	for name, text := range cases {
		tp := g.MustCompile(text)
		r := NewRequest(g, hr)
		VarRef{g.defs["target"]}.Set(r, "vnc.local")
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tp.Eval(r)
			}
		})
	}
}

func BenchmarkRequest(b *testing.B) {
	g := NewRegistry()
	for _, n := range []string{"a", "b", "c", "target"} {
		g.Declare(n)
	}
	hr := httptest.NewRequest("GET", "/websockify?token=abc&port=5901", nil)
	hr.Header.Set("X-Real-Ip", "10.0.0.1")
	b.Run("NewRequest", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			NewRequest(g, hr)
		}
	})
	r := NewRequest(g, hr)
	for _, name := range []string{"remote_addr", "arg_token", "http_x_real_ip", "target"} {
		b.Run("Get/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.Get(name)
			}
		})
	}
}

// TestConcurrentRequests shares one registry between goroutines (run with
// -race): prefix variables first named at request time are cached.
func TestConcurrentRequests(t *testing.T) {
	g := NewRegistry()
	g.Declare("x")
	tp := g.MustCompile("$x|$arg_a|$http_x_y")
	done := make(chan string, 8)
	for i := 0; i < 8; i++ {
		go func() {
			hr := httptest.NewRequest("GET", fmt.Sprintf("/?a=%d", i), nil)
			hr.Header.Set("X-Y", "h")
			r := NewRequest(g, hr)
			VarRef{g.defs["x"]}.Set(r, fmt.Sprint(i))
			for k := 0; k < 100; k++ {
				r.Get(fmt.Sprintf("http_h%d", k%10))
				r.Get("cookie_c")
			}
			done <- tp.Eval(r)
		}()
	}
	seen := map[string]bool{}
	for i := 0; i < 8; i++ {
		seen[<-done] = true
	}
	for i := 0; i < 8; i++ {
		if want := fmt.Sprintf("%d|%d|h", i, i); !seen[want] {
			t.Errorf("missing %q in %v", want, seen)
		}
	}
}

// TestMapErrorsNginx checks NewMap's errors against nginx -t.
func TestMapErrorsNginx(t *testing.T) {
	requireNginx(t)
	cases := []struct {
		opts    MapOptions
		entries []MapEntry
		index   int // entry the error belongs to
	}{
		{MapOptions{}, []MapEntry{{"default", "1"}, {"default", "2"}}, 1},
		{MapOptions{Hostnames: true}, []MapEntry{{"a*b.com", "1"}}, 0},
		{MapOptions{}, []MapEntry{{"a", "1"}, {"A", "2"}}, 1},
		{MapOptions{}, []MapEntry{{"~(a", "1"}}, 0},
		{MapOptions{Hostnames: true}, []MapEntry{{"*.a.com", "1"}, {".a.com", "2"}}, 1},
		{MapOptions{Hostnames: true}, []MapEntry{{".a.com", "1"}, {"*.A.com", "2"}}, 1},
		{MapOptions{Hostnames: true}, []MapEntry{{"www.a.*", "1"}, {"WWW.a.*", "2"}}, 1},
		{MapOptions{}, []MapEntry{{"~(?<host>x)", "1"}}, 0},
		{MapOptions{Hostnames: true}, []MapEntry{{"www.*.com", "1"}}, 0},
		{MapOptions{Hostnames: true}, []MapEntry{{"A.com.", "1"}, {"a.com", "2"}}, -1},
		{MapOptions{}, []MapEntry{{`\default`, "1"}, {"default", "2"}}, -1},
	}
	for _, tc := range cases {
		var conf strings.Builder
		conf.WriteString("map $arg_x $y {\n")
		if tc.opts.Hostnames {
			conf.WriteString("hostnames;\n")
		}
		for _, e := range tc.entries {
			fmt.Fprintf(&conf, "%q %q;\n", e.Key, e.Value)
		}
		conf.WriteString("}\nserver { listen 127.0.0.1:1; return 200 $y; }")
		want := nginxCheck(t, conf.String())
		_, err := NewMap(NewRegistry(), "$arg_x", tc.entries, tc.opts)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("%v: nginx %q, ours %q", tc.entries, want, got)
		}
		var me *MapEntryError
		if tc.index >= 0 && (!errors.As(err, &me) || me.Index != tc.index) {
			t.Errorf("%v: error %v, want it on entry %d", tc.entries, err, tc.index)
		}
	}
}
