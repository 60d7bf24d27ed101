package vars

import (
	"fmt"
	"strings"
	"testing"
)

// varOp is one ngx.var operation: get, set (value) or unset.
type varOp struct {
	op, name, value string
}

var varOps = []varOp{
	{"get", "nope", ""}, {"get", "e", ""}, {"get", "late", ""}, {"get", "ARG_A", ""}, {"get", "arg_m", ""},
	{"get", "uri", ""}, {"get", "URI", ""}, {"get", "args", ""}, {"get", "is_args", ""}, {"get", "query_string", ""},
	{"get", "http_x_y", ""}, {"get", "HTTP_X_Y", ""}, {"get", "http_x_none", ""}, {"get", "cookie_ab", ""},
	{"get", "cookie_none", ""}, {"get", "host", ""}, {"get", "request_uri", ""}, {"get", "mv", ""}, {"get", "mm", ""},
	{"get", "1", ""}, {"get", "2", ""}, {"get", "limit_rate", ""},
	{"set", "nope", "1"}, {"set", "arg_a", "1"}, {"set", "uri", "/x"}, {"set", "host", "x"},
	{"set", "http_x_y", "x"}, {"set", "request_id", "x"}, {"set", "status", "1"}, {"set", "remote_addr", "x"},
	{"set", "e", "value"}, {"get", "e", ""}, {"set", "E", "upper"}, {"get", "e", ""},
	{"set", "late", "l"}, {"get", "late", ""},
	{"set", "args", "a=5&b&M=xxx"}, {"get", "args", ""}, {"get", "arg_a", ""}, {"get", "arg_b", ""}, {"get", "arg_m", ""},
	{"get", "query_string", ""}, {"get", "is_args", ""}, {"get", "request_uri", ""}, {"get", "uri", ""},
	{"unset", "e", ""}, {"get", "e", ""}, {"set", "e", ""}, {"get", "e", ""},
	{"unset", "args", ""}, {"get", "args", ""}, {"get", "is_args", ""}, {"get", "arg_a", ""},
	{"set", "args", ""}, {"get", "args", ""},
	{"set", "limit_rate", "10000000"}, {"get", "limit_rate", ""},
	{"set", "limit_rate", "40k"}, {"get", "limit_rate", ""}, {"set", "limit_rate", "2M"}, {"get", "limit_rate", ""},
	{"set", "limit_rate", ""}, {"get", "limit_rate", ""}, {"set", "limit_rate", "1x"}, {"get", "limit_rate", ""},
	{"set", "mv", "over"}, {"unset", "nope", ""}, {"unset", "uri", ""},
	{"set", "mm", "named"}, {"get", "mm", ""},
}

// luaVarScript renders varOps as Lua printing one line per operation.
func luaVarScript() string {
	var b strings.Builder
	b.WriteString(`local function show(v) if v == nil then return "nil" end return "[" .. v .. "]" end
local function try(f) local ok, err = pcall(f); if not ok then ngx.say("ERR ", (string.gsub(err, "^.-:%d+: ", ""))) end end
`)
	for _, o := range varOps {
		key := fmt.Sprintf("%q", o.name)
		if strings.Trim(o.name, "0123456789") == "" {
			key = o.name
		}
		switch o.op {
		case "get":
			fmt.Fprintf(&b, "ngx.say(%q, \"=\", show(ngx.var[%s]))\n", o.name, key)
		case "set":
			fmt.Fprintf(&b, "try(function() ngx.var[%s] = %q end)\n", key, o.value)
		case "unset":
			fmt.Fprintf(&b, "try(function() ngx.var[%s] = nil end)\n", key)
		}
	}
	return b.String()
}

// goVarScript runs varOps on r and prints like luaVarScript.
func goVarScript(r *Request) string {
	var b strings.Builder
	show := func(v string, ok bool) string {
		if !ok {
			return "nil"
		}
		return "[" + v + "]"
	}
	for _, o := range varOps {
		var err error
		switch o.op {
		case "get":
			v, ok := r.Get(o.name)
			fmt.Fprintf(&b, "%s=%s\n", o.name, show(v, ok))
		case "set":
			err = r.Set(o.name, o.value)
		case "unset":
			err = r.Unset(o.name)
		}
		if err != nil {
			fmt.Fprintf(&b, "ERR %s\n", err)
		}
	}
	return b.String()
}

// TestNgxVarDifferential compares ngx.var on nginx + lua-nginx-module with
// Request.Get/Set/Unset for the same operations.
func TestNgxVarDifferential(t *testing.T) {
	requireNginx(t)
	const mapConf = `map $arg_m $mv { default d; ~^(?<mm>x+)$ "cap$mm"; }`
	body := mapConf + fmt.Sprintf(`
server { listen 127.0.0.1:{{PORT}};
  location /other { set $late 1; return 200; }
  location ~ ^/l/(\w+) { set $e ""; default_type text/plain; content_by_lua_block {
%s
  } }
}`, luaVarScript())
	addr := startNginx(t, body, true)

	g := NewRegistry()
	for _, n := range []string{"late", "e", "mv"} {
		if err := g.Declare(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.DeclareCapture("mm"); err != nil {
		t.Fatal(err)
	}
	m, err := NewMap(g, "$arg_m", []MapEntry{{"default", "d"}, {"~^(?<mm>x+)$", "cap$mm"}}, MapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.DeclareMap("mv", m); err != nil {
		t.Fatal(err)
	}
	loc := MustCompileRegex(`^/l/(\w+)`, false)
	eRef, err := g.Var("e")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/l/abc?A=1&m=xx", "/l/q", "/l/z?a=&m=y"} {
		hdr := []string{"X-Y: 1", "x-y: 2", "Cookie: aB=3; ab=4"}
		status, want := rawGet(t, addr, target, hdr)
		if status != 200 {
			t.Fatalf("%s: status %d: %s", target, status, want)
		}
		r := newTestRequest(t, g, target, map[string][]string{"Host": {"localhost"}, "X-Y": {"1", "2"}, "Cookie": {"aB=3; ab=4"}})
		c, ok := loc.Match(r.URI)
		if !ok {
			t.Fatalf("location regex did not match %s", r.URI)
		}
		r.SetCaptures(c)
		eRef.Set(r, "")
		got := goVarScript(r)
		if got != want {
			t.Errorf("%s:\n%s", target, lineDiff(want, got))
		}
	}
}

// lineDiff shows the lines that differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "nginx: %s\nours:  %s\n", a, c)
		}
	}
	return b.String()
}
