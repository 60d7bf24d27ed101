package luahooks

import (
	"testing"
)

// The fuzz tests assert only that nothing panics and that results stay
// consistent; seeds come from the corpus and the snippet tests.

func FuzzCompileRegex(f *testing.F) {
	for _, s := range []string{`(?<w>\w+) (\w+)`, `(abc`, `[a`, `a**`, `\x{e9}`, `\Q.*\E`, `(?P<k>\w+)=(?P=k)`,
		`\k<n>(?<n>a)`, `[]a]`, `(?x) a # c`, `(*UTF8)x`, `\xff`, `(?'q'x)\k'q'`, `\`} {
		f.Add(s, "jo")
		f.Add(s, "iux")
	}
	f.Fuzz(func(t *testing.T, pattern, flags string) {
		if len(flags) > 8 {
			flags = flags[:8]
		}
		rx, err := compileRegex(pattern, flags)
		if err != nil {
			return
		}
		for _, subj := range []string{"", "abc", "héllo wörld", "a\nb\x00\xff"} {
			sub := newSubject(subj, rx.utf8)
			m, err := rx.find(sub, 0)
			if err != nil || m == nil {
				continue
			}
			_ = sub.text(&m.Groups()[0])
		}
	})
}

func FuzzCjsonDecode(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}]}`, `[`, `"\ud83d\ude00"`, `1e400`, `{"a" 1}`, `[1,]`, `"\u12"`, `-`, `[[[[[]]]]]`} {
		f.Add(s)
	}
	rt, _ := newTestRuntime(f, Options{})
	c, err := rt.CompileInline(PhaseContent, `
		local cjson = require "cjson.safe"
		local v = cjson.decode(ngx.var.arg_j)
		if v ~= nil then
			local s = cjson.encode(v)
			if s and cjson.decode(s) == nil and s ~= "null" then error("re-decode failed: " .. s) end
		end`, "nginx.conf", 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, j string) {
		req := newReq("/")
		req.Vars = fixedVars{"arg_j": j}
		if out := rt.Run(t.Context(), c, req); out.Err != nil {
			t.Fatalf("%q: %v", j, out.Err)
		}
	})
}

func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"1e2", " 0x1A ", "-0x10", "0x1p4", ".5", "5.", "inf", "nan", "0b101", "1e400", "--1", "0x.8p1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := parseLuaNumber(s)
		if !ok {
			return
		}
		// %.14g rounds, so the number need not come back; its printed form
		// must (formatting is idempotent through the parser).
		out := formatNumber(v)
		if v2, ok2 := parseLuaNumber(out); !ok2 || (v == v && formatNumber(v2) != out) {
			t.Fatalf("%q -> %v -> %q -> %v %v", s, v, out, v2, ok2)
		}
	})
}

// fixedVars is a read-only VarStore.
type fixedVars map[string]string

func (v fixedVars) Get(name string) (string, bool) { s, ok := v[name]; return s, ok }
func (v fixedVars) Set(string, string) error       { return nil }
func (v fixedVars) Unset(string) error             { return nil }

func FuzzNgxStrings(f *testing.F) {
	for _, s := range []string{"a=1&b&c=&=x&%zz", "YWI=", "a%20b+c", "\xff\x00", "k=v;x", "%", "a==", "=", "&&&"} {
		f.Add(s)
	}
	rt, _ := newTestRuntime(f, Options{})
	c, err := rt.CompileInline(PhaseContent, `
		local s = ngx.var.arg_s
		local t = ngx.decode_args(s, 0)
		local again = ngx.decode_args(ngx.encode_args(t), 0)
		for k, v in pairs(t) do
			if type(v) == "string" and again[k] ~= v then error("args round trip: " .. k) end
		end
		assert(ngx.unescape_uri(ngx.escape_uri(s)) == s, "escape round trip")
		assert(ngx.decode_base64(ngx.encode_base64(s)) == s, "base64 round trip")
		ngx.decode_base64(s)
		ngx.quote_sql_str(s)
		ngx.md5(s)
		ngx.re.gsub(s, "[^a-z]", "")
		require("ngx.re").split(s, "[=&]")
		tonumber(s)
		tonumber(s, 16)
		string.format("%q", s)`, "nginx.conf", 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		req := newReq("/")
		req.Vars = fixedVars{"arg_s": s}
		if out := rt.Run(t.Context(), c, req); out.Err != nil {
			t.Fatalf("%q: %v", s, out.Err)
		}
	})
}
