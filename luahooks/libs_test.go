package luahooks

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// luaCases are expressions whose tostring() must equal want; the wants
// were taken from LuaJIT 2.1 (luajit2) and OpenResty.
func TestLuaJITCompat(t *testing.T) {
	cases := []struct{ expr, want string }{
		{`tonumber("1e2")`, "100"},
		{`tonumber("1700000000e0")`, "1700000000"},
		{`tonumber(" 12 ")`, "12"},
		{`tonumber("0x1A")`, "26"},
		{`tonumber("-0x10")`, "-16"},
		{`tonumber("0x1p4")`, "16"},
		{`tonumber(".5")`, "0.5"},
		{`tonumber("5.")`, "5"},
		{`tonumber("1e")`, "nil"},
		{`tonumber("")`, "nil"},
		{`tonumber("0x")`, "nil"},
		{`tonumber("1 2")`, "nil"},
		{`tonumber("12a")`, "nil"},
		{`tonumber("inf")`, "inf"},
		{`tonumber("\t7\n")`, "7"},
		{`tonumber("ff", 16)`, "255"},
		{`tonumber("-ff", 16)`, "-255"},
		{`tonumber("0x10", 16)`, "16"},
		{`tonumber("z", 36)`, "35"},
		{`tonumber("8", 8)`, "nil"},
		{`tonumber("1.5", 10)`, "1.5"},
		{`tonumber({})`, "nil"},
		{`tonumber("-")`, "nil"},
		{`tonumber("+")`, "nil"},
		{`1/3`, "0.33333333333333"},
		{`1e15`, "1e+15"},
		{`2^53`, "9.007199254741e+15"},
		{`-0.0`, "-0"},
		{`100/2`, "50"},
		{`string.format("%g %g %g %.3f %5.2s %d %x", 1234567, 0.1, 100000, 1/3, "abc", 3.7, 255)`, "1.23457e+06 0.1 100000 0.333    ab 3 ff"},
		{`string.format("%s %q", 1/3, "a\nb\0")`, "0.33333333333333 \"a\\\nb\\0\""},
		{`string.rep("a", 3, ",")`, "a,a,a"},
		{`bit.band(0xff, 0x0f)`, "15"},
		{`bit.bor(1, 2, 4)`, "7"},
		{`bit.bxor(5, 3)`, "6"},
		{`bit.bnot(0)`, "-1"},
		{`bit.lshift(1, 31)`, "-2147483648"},
		{`bit.rshift(-1, 28)`, "15"},
		{`bit.arshift(-256, 4)`, "-16"},
		{`bit.rol(0x12345678, 8)`, "878082066"},
		{`bit.ror(0x12345678, 8)`, "2014458966"},
		{`bit.tobit(0xffffffff + 1)`, "0"},
		{`bit.tohex(255)`, "000000ff"},
		{`bit.tohex(-1, -4)`, "FFFF"},
		{`bit.bswap(0x12345678)`, "2018915346"},
		{`require("bit") == bit`, "true"},
		{`tostring(ngx.null)`, "userdata: NULL"},
		{`type(ngx.null)`, "userdata"},
		{`ngx.null == require("cjson").null`, "true"},
	}
	rt, _ := newTestRuntime(t, Options{})
	for _, tc := range cases {
		out := runCode(t, rt, PhaseContent, "ngx.print(tostring("+tc.expr+"))", newReq("/"))
		if out.Err != nil || string(out.Body) != tc.want {
			t.Errorf("%s = %q (err %v), want %q", tc.expr, out.Body, out.Err, tc.want)
		}
	}
}

func TestNgxFunctions(t *testing.T) {
	cases := []struct{ expr, want string }{
		{`ngx.md5("hello")`, "5d41402abc4b2a76b9719d911017c592"},
		{`ngx.md5(nil)`, "d41d8cd98f00b204e9800998ecf8427e"},
		{`ngx.md5(12)`, "c20ad4d76fe97759aa27a0c99bff6710"},
		{`ngx.encode_base64(ngx.md5_bin("a"))`, "DMF1ucDxtqgxw5niaXcmYQ=="},
		{`ngx.encode_base64(ngx.sha1_bin("abc"))`, "qZk+NkcGgWq6PiVxeFDCbJzQ2J0="},
		{`ngx.encode_base64(ngx.hmac_sha1("key", "The quick brown fox jumps over the lazy dog"))`, "3nybhbi3iqa8ino29wqQcBydtNk="},
		{`ngx.crc32_short("hello")`, "907060870"},
		{`ngx.crc32_long("hello")`, "907060870"},
		{`ngx.encode_base64("ab")`, "YWI="},
		{`ngx.encode_base64("ab", true)`, "YWI"},
		{`ngx.decode_base64("YWI")`, "ab"},
		{`ngx.decode_base64("YWI=")`, "ab"},
		{`ngx.decode_base64("YQ==garbage")`, "a"},
		{`ngx.decode_base64("Y")`, "nil"},
		{`ngx.decode_base64("a*b")`, "nil"},
		{`ngx.escape_uri("a b/c?d=é~!*'()")`, "a%20b%2Fc%3Fd%3D%C3%A9~!*'()"},
		{`ngx.unescape_uri("a+b%20c%zz%4")`, "a b c%zz%4"},
		{`ngx.encode_args({a = 1, b = "x y", c = true, d = false, e = {"1", "2"}})`, "a=1&b=x%20y&c&e=1&e=2"},
		{`ngx.decode_args("a=1&b=2&a=3").a[2]`, "3"},
		{`ngx.quote_sql_str("a'b\\c\n")`, `'a\'b\\c\n'`},
		{`ngx.http_time(1700000000)`, "Tue, 14 Nov 2023 22:13:20 GMT"},
		{`ngx.cookie_time(1700000000)`, "Tue, 14-Nov-23 22:13:20 GMT"},
		{`ngx.cookie_time(2200000000)`, "Sun, 18-Sep-2039 23:06:40 GMT"},
		{`ngx.parse_http_time("Tue, 14 Nov 2023 22:13:20 GMT")`, "1700000000"},
		{`ngx.parse_http_time("nope")`, "nil"},
		{`type(ngx.time())`, "number"},
		{`ngx.time() == math.floor(ngx.now())`, "true"},
		{`#ngx.today()`, "10"},
		{`#ngx.localtime()`, "19"},
		{`ngx.worker.count()`, "1"},
		{`ngx.config.subsystem`, "http"},
		{`ngx.config.nginx_version`, "1022001"},
		{`ngx.get_phase()`, "content"},
		{`ngx.HTTP_FORBIDDEN + ngx.HTTP_OK`, "603"},
		{`ngx.WARN`, "5"},
		{`require("cjson").encode({a = {1, 2, "x/y", {}}})`, `{"a":[1,2,"x\/y",{}]}`},
		{`require("cjson").encode("\1\"")`, `"\u0001\""`},
		{`require("cjson").encode({[1] = 1, [3] = 3})`, `[1,null,3]`},
		{`select(2, pcall(require("cjson").encode, {[20] = 1}))`, "Cannot serialise table: excessively sparse array"},
		{`select(2, require("cjson.safe").encode(function() end))`, "Cannot serialise function: type not supported"},
		{`require("cjson").decode('{"a":[1,2,{"b":null}],"c":"\\u00e9"}').a[3].b == ngx.null`, "true"},
		{`require("cjson").decode('{"c":"\\u00e9\\ud83d\\ude00"}').c`, "é😀"},
		{`select(2, require("cjson.safe").decode("{"))`, "Expected object key string but found T_END at character 2"},
		{`select(2, require("cjson.safe").decode("[1,]"))`, "Expected value but found T_ARR_END at character 4"},
		{`select(2, require("cjson.safe").decode("x"))`, "Expected value but found invalid token at character 1"},
		{`require("cjson").decode("1.5e2")`, "150"},
	}
	rt, _ := newTestRuntime(t, Options{})
	for _, tc := range cases {
		out := runCode(t, rt, PhaseContent, "ngx.print(tostring("+tc.expr+"))", newReq("/"))
		if out.Err != nil || string(out.Body) != tc.want {
			t.Errorf("%s = %q (err %v), want %q", tc.expr, out.Body, out.Err, tc.want)
		}
	}
}

func TestRegex(t *testing.T) {
	cases := []struct{ src, want string }{
		{`local m = ngx.re.match("hello world", [[(?<w>\w+) (\w+)]]) ngx.print(m[0], "|", m[1], "|", m[2], "|", m.w)`, "hello world|hello|world|hello"},
		{`local m = ngx.re.match("abc", "(a)(x)?(?<n>c)?") ngx.print(m[0], tostring(m[2]), tostring(m[3]), tostring(m.n))`, "afalsefalsefalse"},
		{`local m, err = ngx.re.match("abc", "(abc") ngx.print(tostring(m), " ", err)`, `nil pcre_compile() failed: missing ) in "(abc"`},
		{`ngx.print(tostring(ngx.re.match("ABC", "abc", "i")[0]))`, "ABC"},
		{`ngx.print(tostring(ngx.re.match("xabc", "abc", "a")))`, "nil"},
		{`ngx.print(ngx.re.match("foo123", [[(?<=foo)\d+]])[0])`, "123"},
		{`ngx.print(ngx.re.match("abab", [[(ab)\1]])[0])`, "abab"},
		{`ngx.print(ngx.re.match("a\nb", "^b", "m")[0])`, "b"},
		{`ngx.print(tostring(ngx.re.match("a\nb", "a.b")))`, "nil"},
		{`ngx.print(ngx.re.match("a\nb", "a.b", "s")[0])`, "a\nb"},
		{`ngx.print(ngx.re.match("a b", "a \\s b", "x")[0])`, "a b"},
		{`ngx.print(ngx.re.find("hello", "l+"))`, "34"},
		{`ngx.print(ngx.re.find("hello", "(e)(l+)", nil, nil, 2))`, "34"},
		{`local ctx = {pos = 3} local m = ngx.re.match("aXbXc", "X", "", ctx) ngx.print(m[0], ctx.pos)`, "X5"},
		{`ngx.print(ngx.re.gsub("baaac", "a*", "-"))`, "-b--c-4"},
		{`ngx.print(ngx.re.gsub("abc", "x*", "-"))`, "-a-b-c-4"},
		{`ngx.print(ngx.re.gsub("hello world", "(o)", "[$1]"))`, "hell[o] w[o]rld2"},
		{`ngx.print(ngx.re.sub("hello", "l", "L"))`, "heLlo1"},
		{`ngx.print(ngx.re.gsub("a1b2", "\\d", function(m) return "<" .. m[0] .. ">" end))`, "a<1>b<2>2"},
		{`ngx.print(ngx.re.gsub("ab", "(a)", "${1}$$"))`, "a$b1"},
		{`local it = ngx.re.gmatch("a1b22c", [[\d*]]) while true do local m = it() if not m then break end ngx.print("<", m[0], ">") end`, "<><1><><22><><>"},
		{`ngx.print(ngx.re.match("é", "^.$", "u")[0])`, "é"},
		{`ngx.print(tostring(ngx.re.match("é", "^.$")))`, "nil"},
		{`ngx.print(ngx.re.find("héllo", "l+", "u"))`, "45"},
		{`ngx.print(tostring(ngx.re.match("é", [[^\w]])))`, "nil"},
		{`ngx.print(ngx.re.match("(?<=a+)b", "b")[0])`, "b"},
		// "u" and "x" go through the same translator as byte mode; the
		// answers are lua-nginx-module's (PCRE 8.39).
		{`ngx.print(ngx.re.match("héllo", [[\w+]], "u")[0])`, "h"},
		{`ngx.print(ngx.re.match("a\194\160b", [[\h]], "u")[0] == "\194\160")`, "true"},
		{`ngx.print(ngx.re.match("éxé", [[\bx\b]], "u")[0])`, "x"},
		{`ngx.print(ngx.re.match("éé", [[\x{e9}+]], "u")[0])`, "éé"},
		{`ngx.print(ngx.re.match("É", "é", "ui")[0])`, "É"},
		{`ngx.print(ngx.re.match("a b", "a # c\n \\ b", "x")[0])`, "a b"},
		{`ngx.print(ngx.re.match("aa", "a+ ?", "x")[0])`, "a"},
		{`ngx.print(ngx.re.match("ab c", "(?x: a b ) c")[0])`, "ab c"},
		{`ngx.print(ngx.re.match("x", "\255", "u"))`, "nilpcre_compile() failed: invalid UTF-8 string in \"\xff\" at \"\xff\""},
		{`ngx.print(ngx.re.match("x", [[\x{d800}]], "u"))`, `nilpcre_compile() failed: disallowed Unicode code point (>= 0xd800 && <= 0xdfff) in "\x{d800}" at "}"`},
		{`ngx.print(#select(2, ngx.re.match("x", "(?<a>x)(?<a>y)" .. ("z"):rep(100))))`, "127"},
		// pcre_exec's UTF-8 checks: a subject that is not UTF-8, an offset
		// inside a character ("U" skips both).
		{`ngx.print(ngx.re.match("\255a", "a", "u"))`, "nilpcre_exec() failed: -10"},
		{`ngx.print(ngx.re.find("\255a", "a", "u"))`, "nilnilpcre_exec() failed: -10"},
		{`ngx.print(ngx.re.match("\255a", "a", "U")[0])`, "a"},
		{`ngx.print(ngx.re.gsub("éa", "x*", "-", "u"))`, "nilnilpcre_exec() failed: -11"},
		{`ngx.print(ngx.re.find("éa", "a", "u", {pos = 2}))`, "nilnilpcre_exec() failed: -11"},
		{`ngx.print(ngx.re.gsub("éa", "x*", "-"))`, "-\xc3-\xa9-a-4"},
	}
	rt, _ := newTestRuntime(t, Options{})
	for _, tc := range cases {
		out := runCode(t, rt, PhaseContent, tc.src, newReq("/"))
		if out.Err != nil || string(out.Body) != tc.want {
			t.Errorf("%s\n got %q (err %v), want %q", tc.src, out.Body, out.Err, tc.want)
		}
	}
}

func TestSharedDict(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	out := runCode(t, rt, PhaseContent, `
		local d = ngx.shared.dogs
		ngx.say(d:set("a", 1), " ", d:get("a"))
		ngx.say(d:add("a", 2))
		ngx.say(d:safe_add("b", "x", 0, 7), " ", d:get("b"))
		ngx.say(d:replace("zz", 1))
		ngx.say(d:incr("a", 5), " ", d:incr("n", 1, 10), " ", d:incr("missing", 1))
		ngx.say(d:incr("b", 1))
		ngx.say(d:set("t", true), " ", tostring(d:get("t")), " ", d:ttl("t"))
		d:set("e", "v", 0.001) ngx.sleep(0.01) ngx.say(tostring(d:get("e")), " ", tostring(d:get_stale("e")))
		ngx.say(d:expire("a", 100), " ", d:ttl("a") > 99)
		ngx.say(table.concat(d:get_keys(), ","))
		d:delete("a") ngx.say(tostring(d:get("a")))
		d:flush_all() ngx.say(#d:get_keys(0))
		ngx.say(ngx.shared.tiny:safe_set("k", string.rep("x", 2000)))
		ngx.say(d:get("nope"))
		ngx.say(d:set("f", "v", 0, 3)) ngx.say(d:get("f"))
		ngx.say(pcall(d.get, d, nil))
		ngx.say(d:get(""))`, newReq("/"))
	// Output of the same code on nginx 1.22 + lua-nginx-module 0.10.23.
	want := `true 1
falseexistsfalse
true x7
falsenot foundfalse
6 11 nilnot found
nilnot a number
true true 0
nil v
true true
a,n,b,t
nil
0
falseno memoryfalse
nil
truenilfalse
v3
truenilnil key
nilempty key
`
	if out.Err != nil || string(out.Body) != want {
		t.Errorf("got\n%s(err %v)\nwant\n%s", out.Body, out.Err, want)
	}
}

// TestConcurrentRuns runs chunks from many goroutines (go test -race):
// states are pooled, shared dicts and the regex cache are shared.
func TestConcurrentRuns(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{PoolSize: 4})
	c, err := rt.CompileInline(PhaseContent, `
		local n = ngx.shared.dogs:incr("hits", 1, 0)
		ngx.ctx.x = ngx.var.arg_i
		local m = ngx.re.match(ngx.var.arg_i, [[^(\d+)$]])
		ngx.print(m[1] == ngx.ctx.x and "ok" or "bad")`, "nginx.conf", 3)
	if err != nil {
		t.Fatal(err)
	}
	const workers, per = 8, 50
	var wg sync.WaitGroup
	errs := make(chan string, workers*per)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				out := rt.Run(t.Context(), c, newReq(fmt.Sprintf("/?i=%d", w*1000+i)))
				if string(out.Body) != "ok" {
					errs <- fmt.Sprintf("%+v", out)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	out := runCode(t, rt, PhaseContent, `ngx.print(ngx.shared.dogs:get("hits"))`, newReq("/"))
	if string(out.Body) != fmt.Sprint(workers*per) {
		t.Errorf("hits = %s", out.Body)
	}
}

func TestErrorPositions(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	// Expected lines printed by LuaJIT 2.1 for the same code (chunk "=x").
	src := `local function f() error("lvl2", 2) end
ngx.say(pcall(error, "caught"))
ngx.say(pcall(function() error("inner") end))
ngx.say(pcall(function() f() end))
ngx.say(pcall(function() error("zero", 0) end))
ngx.say(pcall(function() error(42) end))`
	out := runCode(t, rt, PhaseContent, src, newReq("/"))
	want := "falsecaught\n" +
		"falsecontent_by_lua(nginx.conf:10):3: inner\n" +
		"falsecontent_by_lua(nginx.conf:10):4: lvl2\n" +
		"falsezero\n" +
		"falsecontent_by_lua(nginx.conf:10):6: 42\n"
	if out.Err != nil || string(out.Body) != want {
		t.Errorf("got\n%s(err %v)\nwant\n%s", out.Body, out.Err, want)
	}
}

// TestRuntimeErrorWording: gopher-lua's messages are rewritten into
// LuaJIT's wording: a call or an indexing names the variable or field when
// its line tells which it is, as LuaJIT does (each want is LuaJIT 2.1's
// message for the same code), else the anonymous form.
func TestRuntimeErrorWording(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	cases := []struct{ code, want string }{
		{`return ({}).a.b`, "attempt to index field 'a' (a nil value)"},
		{`return nil .. 1`, "attempt to concatenate a nil value"},
		{`return "a" .. {}`, "attempt to concatenate a table value"},
		{`return {} + 1`, "attempt to perform arithmetic on a table value"},
		{`return 1 < {}`, "attempt to compare number with table"},
		{`return ({}).f()`, "attempt to call field 'f' (a nil value)"},
		{`local t = {} t.x.y = 1`, "attempt to index field 'x' (a nil value)"},
		{`local f; f()`, "attempt to call local 'f' (a nil value)"},
		{`g()`, "attempt to call global 'g' (a nil value)"},
		{`local u; local function h() return u.x end h()`, "attempt to index upvalue 'u' (a nil value)"},
		{`local s = ngx.null; s:set(1)`, "attempt to index local 's' (a userdata value)"},
		{`local o = {} o:m()`, "attempt to call method 'm' (a nil value)"},
		{`local a = {} return a.b.c.d`, "attempt to index field 'b' (a nil value)"},
		{`x = nil; x.y = 1`, "attempt to index global 'x' (a nil value)"},
		{`local t = {} t[1].x = 2`, "attempt to index a nil value"},
		{`local t = {} t.a:b()`, "attempt to index field 'a' (a nil value)"},
		{`local a, b = {}, {} return a.x(b.y())`, "attempt to call a nil value"}, // two calls: which one?
	}
	for _, tc := range cases {
		out := runCode(t, rt, PhaseContent, `local ok, err = pcall(function() `+tc.code+` end) ngx.print(err)`, newReq("/"))
		if want := "content_by_lua(nginx.conf:10):1: " + tc.want; string(out.Body) != want {
			t.Errorf("%s: got %q, want %q", tc.code, out.Body, want)
		}
		out = runCode(t, rt, PhaseAccess, tc.code, newReq("/"))
		if out.Err == nil || !strings.HasSuffix(errHead(out.Err), "content_by_lua(nginx.conf:10):1: "+tc.want) && !strings.HasSuffix(errHead(out.Err), "access_by_lua(nginx.conf:10):1: "+tc.want) {
			t.Errorf("%s: log line %v", tc.code, out.Err)
		}
	}
}
