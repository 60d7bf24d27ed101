package luahooks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The digests and ciphertexts are checked against Debian's FFI modules on
// nginx + LuaJIT in test/testdata/lua/resty_string.case; these cases cover
// the names and stand-ins that case cannot (OpenResty's names are not
// installed on Debian).
func TestRestyModules(t *testing.T) {
	cases := []struct{ src, want string }{
		{`ngx.print(require("resty.string").to_hex(require("resty.md5"):new():final()))`, "d41d8cd98f00b204e9800998ecf8427e"},
		{`local s = require("nginx.sha512"):new() s:update("a") ngx.print(#s:final())`, "64"},
		{`local s = require("resty.sha1"):new() s:update("abc") ngx.print(require("resty.string").to_hex(s:final()))`, "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{`ngx.print(#require("resty.random").bytes(33, true))`, "33"},
		{`local aes = require "resty.aes" local a = aes:new("k") ngx.print(a:decrypt(a:encrypt("x")))`, "x"},
		{`ngx.print(tostring(require("resty.aes").cipher(128, "gcm")))`, "nil"},
		{`ngx.print(type(require("resty.core")), require("resty.core").version)`, "table0.1.25"},
		{`local t = require("table.new")(4, 2) t.a = 1 ngx.print(type(t), t.a)`, "table1"},
		{`local t = {1, 2, a = 3} require("table.clear")(t) ngx.print(next(t) == nil)`, "true"},
		{`ngx.print((pcall(require, "ffi")))`, "true"},
		{`ngx.print(select(2, pcall(function() return require("ffi").cdef end)))`, "ffi.cdef: LuaJIT's FFI is not available"},
		// ffi's byte buffers, as resty.websocket.protocol uses them (the
		// values are LuaJIT 2.1's).
		{`local ffi = require "ffi" local b = ffi.new(ffi.typeof("char[?]"), 4) b[0] = 65 b[1] = 0x1ff b[2] = 200 b[3] = -1
		  ngx.print(ffi.string(b, 4) == "A\255\200\255", b[2], b[3], ffi.sizeof(b), ffi.string(b, 1))`, "true-56-14A"},
		{`local ffi = require "ffi" local u = ffi.new("uint8_t[?]", 2) u[0] = 200 ngx.print(u[0], ffi.sizeof("char[8]"), #ffi.string(ffi.new("char[3]")))`, "20080"},
		{`ngx.print(type(require("ffi").new("char[?]", 1)), " ", type(nil), " ", type(print), " ", type(ngx.null), " ", select(2, pcall(type)))`,
			"cdata nil function userdata bad argument #1 to '?' (value expected)"},
		{`ngx.print(select(2, pcall(require("ffi").new, "int64_t", 5)))`, `ffi: type "int64_t": LuaJIT's FFI is not available`},
		{`ngx.print(select(2, pcall(require("resty.string").to_hex, 12)))`, "attempt to get length of local 's' (a number value)"},
	}
	rt, _ := newTestRuntime(t, Options{})
	for _, tc := range cases {
		out := runCode(t, rt, PhaseContent, tc.src, newReq("/"))
		if out.Err != nil || !strings.Contains(string(out.Body), tc.want) {
			t.Errorf("%s = %q (err %v), want %q", tc.src, out.Body, out.Err, tc.want)
		}
	}
}

func TestNgxAtoi(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "42": 42, "": -1, "-1": -1, "4x": -1,
		"9223372036854775807": 9223372036854775807, "9223372036854775808": -1,
	} {
		if got := ngxAtoi(in); got != want {
			t.Errorf("ngxAtoi(%q) = %d, want %d", in, got, want)
		}
	}
}

// resty.redis finds Debian's nginx/redis.lua (package lua-nginx-redis).
func TestRestyNameFindsDebianModule(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "nginx"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx", "thing.lua"), []byte(`return { name = "debian thing" }`), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, _ := newTestRuntime(t, Options{PackagePath: dir + "/?.lua"})
	out := runCode(t, rt, PhaseContent, `ngx.print(require("resty.thing").name, " ", select(2, pcall(require, "resty.nothing")):match("module 'resty.nothing' not found") ~= nil)`, newReq("/"))
	if string(out.Body) != "debian thing true" {
		t.Errorf("got %q (err %v)", out.Body, out.Err)
	}
}
