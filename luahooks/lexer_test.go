package luahooks

import (
	"strings"
	"testing"
)

// TestLuaJITLexer checks the rules luajitSource adds to gopher-lua's
// parser, with LuaJIT 2.1's answers (measured with the luajit2 command).
func TestLuaJITLexer(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	for _, tc := range []struct{ src, want string }{
		{`ngx.say("a\x41\65\u{20AC}|")`, "aAA\u20ac|\n"},
		{"ngx.say(\"a\\z   \n   b\", debug_line or '')\nngx.say(3)", "ab\n3\n"},
		{"local 变量 = 7 ngx.say(变量, ' ', #'变量')", "7 6\n"},
		{"local t = {} t.ключ = 1 ngx.say(t.ключ)", "1\n"},
		{"local t = {ключ = 1} ngx.say(t.ключ, t . ключ)", "11\n"},
		{"local 变量 = 'b' ngx.say('a'..变量, 'c' .. 变量)", "abcb\n"},
		{`ngx.say([[\d]], '\'', "--[[")  -- "\d"`, "\\d'--[[\n"},
		{"--[==[ \"\\d\" ]==] ngx.say('ok')", "ok\n"},
		{`ngx.say(0x1F, 1e2, "\0651")`, "31100A1\n"},
	} {
		out := runCode(t, rt, PhaseContent, tc.src, newReq("/"))
		if out.Err != nil || string(out.Body) != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.src, out.Body, out.Err, tc.want)
		}
	}
	for _, tc := range []struct{ src, want string }{
		{`local s = "a\d"`, `content_by_lua(nginx.conf:10):1: invalid escape sequence near '"a'`},
		{"local s = 1\nlocal s = 'ab\\xZZ'", `content_by_lua(nginx.conf:10):2: invalid escape sequence near ''ab'`},
		{`local s = "\300"`, `content_by_lua(nginx.conf:10):1: invalid escape sequence near '"'`},
		{`local s = "\u{110000}"`, `content_by_lua(nginx.conf:10):1: invalid escape sequence near '"'`},
		{"#!/bin/lua\nngx.say(1)", "unexpected symbol"},
	} {
		_, err := rt.CompileInline(PhaseContent, tc.src, "/etc/nginx/nginx.conf", 10)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.src, err, tc.want)
		}
	}
}

// TestUnmangleIdent: ngx.var gets a UTF-8 identifier's bytes back.
func TestUnmangleIdent(t *testing.T) {
	for _, id := range []string{"arg_语言", "ключ", "a_b", "__ngxsockify_u_41"} {
		want := id
		if id == "__ngxsockify_u_41" {
			want = id // not one mangleIdent makes (0x41 < 0x80)
		}
		m := id
		if strings.IndexFunc(id, func(r rune) bool { return r >= 0x80 }) >= 0 {
			m = mangleIdent(id)
		}
		if got := unmangleIdent(m); got != want {
			t.Errorf("%q -> %q -> %q", id, m, got)
		}
	}
}

// TestLuaJITLexerShebang: a file's "#" first line is skipped (LuaJIT's and
// lua-nginx-module's file loaders), keeping the line numbers.
func TestLuaJITLexerShebang(t *testing.T) {
	src, err := luajitSource("#!/bin/lua\n\nerror('x')", "f.lua", true)
	if err != nil || !strings.HasPrefix(src, "          \n\nerror") {
		t.Fatalf("got %q, %v", src, err)
	}
}

// TestRestyErrorLevel: resty.core's error(msg, 3) has no position when the
// API is called from the chunk itself, and the chunk's line under pcall
// (measured on nginx + lua-resty-core).
func TestRestyErrorLevel(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	out := runCode(t, rt, PhaseContent, "ngx.say(ngx.escape_uri('x', -1))", newReq("/"))
	if out.Err == nil || errHead(out.Err) != `lua entry thread aborted: runtime error: "type" -1 out of range` {
		t.Errorf("direct: %v", out.Err)
	}
	out = runCode(t, rt, PhaseContent, "\nngx.say(pcall(ngx.escape_uri, 'x', true))", newReq("/"))
	if want := "false" + `content_by_lua(nginx.conf:10):2: "type" is not a number` + "\n"; string(out.Body) != want {
		t.Errorf("pcall: %q, want %q", out.Body, want)
	}
}
