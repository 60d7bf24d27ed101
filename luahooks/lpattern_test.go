package luahooks

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// patShowLua defines show(ok, ...): one line per call with the count and
// the type-tagged values (strings quoted with %q, newlines escaped), and
// errors without the position prefix. Strings are escaped by hand:
// string.format("%q") is not what is under test.
const patShowLua = `local function show(ok, ...)
  local out = {}
  if not ok then
    local e = tostring((...)):gsub("^.-:%d+: ", "")
    out[1] = "error: " .. e
  else
    local n = select("#", ...)
    out[1] = tostring(n)
    for i = 1, n do
      local v = select(i, ...)
      if type(v) == "string" then out[#out+1] = '"' .. v:gsub("[%c\"\\\128-\255]", function(c) return "\\" .. c:byte() end) .. '"'  else out[#out+1] = type(v) .. ":" .. tostring(v) end
    end
  end
  local line = table.concat(out, " "):gsub("\n", "\\n"):gsub("\r", "\\r")
  OUT(line .. "\n")
end
local function id(...) return ... end
local function gm(s, p)
  local r, n = {}, 0
  for a, b, c in string.gmatch(s, p) do
    n = n + 1
    r[#r+1] = "[" .. tostring(a) .. "," .. tostring(b) .. "," .. tostring(c) .. "]"
    if n > 100 then break end
  end
  return table.concat(r)
end
`

var patSubjects = []string{
	"", "a", "hello world", "  trim me  ", "key=value; k2 = v2", "THE (quick) fox", "f(a(b)c)d",
	"aaa", "abcabc", "x = 12.5e3, y=-7", "GET /path?q=1&r=%20x HTTP/1.1", "\t\r\n ", "a.b-c+d*e?f[g]h^i$j%k",
	"Bearer abc.def.ghi", "\x00a\x00b", "\xc3\xa9t\xc3\xa9", "192.168.1.10:5900", "[[nested]] ]]", "a,b,,c,",
}

var patPatterns = []string{
	"", "a", ".", "%a+", "%A+", "%d+", "%D", "%s*", "%S+", "%w+", "%W", "%p", "%P+", "%l+", "%u+", "%x+", "%X", "%c", "%C+",
	"%g+", "%G", "%z", "%Z+", "^a", "a$", "^$", "^", "$", "^%s*(.-)%s*$", "(%w+)=(%w+)", "(%w+)%s*=%s*(%w+)",
	"()", "()a()", "(a*(.)%w(%s*))", "%b()", "%b[]", "%bab", "%f[%a]%a+", "%f[%A]", "%f[%w]%w+%f[%W]", "%f[%z]", "%f[^%z]",
	"[a-c]+", "[^a-c]+", "[%a_][%w_]*", "[%d.]+", "[]]", "[^]]+", "[a-]", "[-a]+", "[%-%+]", "[.%]]", "[a-%%]", "[%]", "[^%s]+",
	"a-b", "a*", "a+", "a?", "a-", ".-", ".*", ".+b", ".-b", "(a)%1", "(%a)%1", "(.)(.)%2%1", "(.-)%1", "()%1",
	"%.", "%%", "%-", "%?", "%$", "%^", "%(", "%)", "%[", "%]", "x", "o w", "(o)(r)", "((l)(l))", "(h)(e)(l)(l)(o)",
	"^(%d+)%.(%d+)%.(%d+)%.(%d+):(%d+)$", "([^,]*),?", "([^;]+);?", "%s*([^=]+)=([^;]*)", "=%s*", "(%S+)%s+(%S+)",
	"%", "[a", "[", "[^", "(", ")", "a)", "(()", "%1", "(a)%2", "(a%1)", "%b", "%ba", "%f", "%fa", "%f[a", "%0",
	"[%w-]+", "[a%-z]+", "[%a-z]", "^%a", "\x00", "[\x00-\x1f]", "\xc3.", "[\x80-\xff]+", "a$b", "$a", "^^", "a^",
}

// patQuote quotes s as a Lua string literal with decimal escapes (Lua
// 5.1 has no \x escapes).
func patQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 32 || c >= 127:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// patCallExprs returns the Lua expressions compared with LuaJIT.
func patCallExprs() []string {
	var exprs []string
	for _, s := range patSubjects {
		qs := patQuote(s)
		for _, p := range patPatterns {
			qp := patQuote(p)
			exprs = append(exprs,
				"string.find("+qs+", "+qp+")",
				"string.match("+qs+", "+qp+")",
				"gm("+qs+", "+qp+")",
				"string.gsub("+qs+", "+qp+", \"<%0>\")")
		}
	}
	exprs = append(exprs,
		// init handling
		`string.find("abcabc", "b", 3)`, `string.find("abcabc", "b", -2)`, `string.find("abc", "b", -10)`,
		`string.find("abc", "b", 10)`, `string.find("abc", "", 10)`, `string.find("abc", "", 4)`, `string.find("abc", "", 0)`,
		`string.match("abc", "", 10)`, `string.match("abc", "()", 4)`, `string.match("abc", "()", 5)`, `string.find("abc", "b", 1.9)`,
		`string.find("abc", "b", 2.9)`, `string.find("abc", "b", "2")`, `string.find("abc", "b", "x")`, `string.find("abc", "b", nil)`,
		`string.match("abcabc", "^b", 2)`, `string.match("abcabc", "^a", 2)`, `string.find("a+b", "+", 1, true)`,
		`string.find("a+b", "+b", 1, 1)`, `string.find("a.b", ".", 2, true)`, `string.find("a.b", ".", 3, false)`,
		`string.find("a)b", "a)")`, `string.find("a]b", "]")`, `string.find(12345, 34)`, `string.match(12.5, "%d+")`,
		`string.find("abc")`, `string.find("abc", nil)`, `string.find(nil, "a")`, `string.find({}, "a")`, `string.match("abc", {})`,
		`string.find("abc", "", -1)`, `string.find("", "")`, `string.find("", "", 2)`, `string.find("abc", "c", 3, true)`,
		// gsub replacements
		`string.gsub("hello world", "(%w+)", "<%1>")`, `string.gsub("hello world", "%w+", "%0 %0", 1)`,
		`string.gsub("abc", "%w", "%%")`, `string.gsub("abc", "%w", "%x")`, `string.gsub("abc", "b", "%")`,
		`string.gsub("abc", "a", "%2")`, `string.gsub("abc", "(a)", "%2")`, `string.gsub("abc", "a", "%1")`,
		`string.gsub("abc", "()b()", "%1-%2")`, `string.gsub("abc", "(a)(b)", "%2%1")`, `string.gsub("abc", "%w", "x", -1)`,
		`string.gsub("abc", "%w", "x", 0)`, `string.gsub("abc", "%w", "x", 1.5)`, `string.gsub("abc", "%w", "x", 2.7)`,
		`string.gsub("abc", "%w", "x", "2")`, `string.gsub("abc", "%w", "x", 2^31)`, `string.gsub("abc", "%w", "x", 2^32 + 1)`,
		`string.gsub("abc", "%w", "x", math.huge)`, `string.gsub("abc", "%w", "x", -2^31 - 5)`, `string.gsub("abc", "%w", "x", 0/0)`,
		`string.find("abc", "c", 2^32 + 3)`, `string.find("abc", "c", -2^32 + 2)`, `string.find("abc", "c", -2^31)`, `string.gsub("abc", "%w", "x", " 0x2 ")`, `string.gsub("abc", "%w", "x", {})`, `string.gsub("abc", "", "-")`,
		`string.gsub("abc", "x*", "-")`, `string.gsub("abc", "^", ">")`, `string.gsub("abc", "$", "<")`, `string.gsub("abc", "^a*", "X")`,
		`string.gsub("hello", "l", {l = "L"})`, `string.gsub("hello", "l+", {ll = 7})`, `string.gsub("hello", "(l)(l)", {l = "L"})`,
		`string.gsub("hello", "l", {l = true})`, `string.gsub("hello", "l", {l = false})`, `string.gsub("hello", "l", {l = {}})`,
		`string.gsub("hello", "()l", {[3] = "three"})`, `string.gsub("abc", "a", 1)`, `string.gsub("abc", "a", 1.5)`,
		`string.gsub("abc", "a", true)`, `string.gsub("abc", "a")`, `string.gsub("abc", "a", nil)`,
		`string.gsub("hello", "l+", function(x) return nil end)`, `string.gsub("hello", "l+", function(x) return 3 end)`,
		`string.gsub("hello", "l+", function(x) return false end)`, `string.gsub("hello", "l+", function(x) return true end)`,
		`string.gsub("hello", "(h)(e)", function(a, b) return b .. a end)`, `string.gsub("hello", "()", function(p) return p end)`,
		`string.gsub("k=v, a=b", "(%w+)=(%w+)", function(k, v) return v .. "=" .. k end)`,
		`string.gsub("hello", "l", function() return {} end)`, `string.gsub("abc", "%w", "%1%1")`,
		`string.gsub("a b c", "%s", "", 1)`, `string.gsub("", "", "x")`, `string.gsub("abc", ".-", "x")`,
		`string.gsub("abc", "(", "x")`, `string.gsub(123, 2, 9)`, `string.gsub("x^2", "%^", "**")`,
		`string.gsub("abc", "%f[%w]", "|")`, `string.gsub("THE (quick) fox", "%f[%a]%a+", string.lower)`,
		`string.gsub(string.rep("a", 10), "a", "b", 3)`, `string.gsub("hello world", "o", "0", 1)`,
		`string.gsub("abc", "b", setmetatable({}, {__index = function(t, k) return k:upper() end}))`,
		// gmatch
		`gm("abc", "%a*")`, `gm("^a^a", "^a")`, `gm("key=val, k2=v2", "(%w+)=(%w+)")`, `gm("a,b,,c", "([^,]*)")`,
		`gm("hello", "()l")`, `gm("", "")`, `gm("abc", "")`, `gm("abc", "(")`, `select("#", string.gmatch("a", "a"))`,
		`string.gmatch("abc")`, `gm("one two  three", "%S+")`, `gm("a1b2c3", "%a(%d)")`,
		// complexity and capture limits
		`string.find(string.rep("a", 300), string.rep("a?", 199))`, `string.find(string.rep("a", 300), string.rep("a?", 200))`,
		`string.find(string.rep("a", 300), string.rep("(a)", 32))`, `string.find(string.rep("a", 300), string.rep("(a)", 33))`,
		`string.match(string.rep("a", 40), string.rep("(a)", 32))`, `string.find(string.rep("a", 300), string.rep("a*", 199))`,
		`string.find(string.rep("a", 300), string.rep("a*", 200))`, `string.find(string.rep("a", 300), string.rep("a-", 200))`,
		`string.find(string.rep("a", 300), string.rep("a", 300))`, `string.find(string.rep("a", 300), "(" .. string.rep("a", 250) .. ")")`,
		`string.match(string.rep("(", 100), string.rep("%(", 100))`, `string.match("x", string.rep("(", 199) .. "x" .. string.rep(")", 199))`,
		`string.match("x", string.rep("(", 32) .. "x" .. string.rep(")", 32))`,
		`string.match(string.rep(" ", 500) .. "x" .. string.rep(" ", 500), "^%s*(.-)%s*$")`,
		`("  a b  "):match("^%s*(.-)%s*$")`, `("x"):rep(3):gsub("x", "%%1")`, `("abc"):find("b")`,
	)
	return exprs
}

// patProgram builds a Lua program calling show() for every expression.
func patProgram(exprs []string, out string) string {
	var b strings.Builder
	b.WriteString("local OUT = " + out + "\n")
	b.WriteString(patShowLua)
	for _, e := range exprs {
		// Not a tail call: LuaJIT then names the function in argument errors.
		fmt.Fprintf(&b, "show(pcall(function() return id(%s) end))\n", e)
	}
	return b.String()
}

// patRandomExprs builds n random pattern calls (fixed seed) from pieces
// that exercise the matcher's corners on short subjects.
func patRandomExprs(n int) []string {
	rng := rand.New(rand.NewPCG(1, 2))
	atoms := []string{"a", "b", ".", "%a", "%s", "%d", "%w", "%S", "[ab]", "[^a]", "[a-c%d]", "%%", "%b()", "%f[%w]", "%f[%W]",
		"(", ")", "()", "%1", "%2", "^", "$", " ", "x", "[%s%p]", "%.", "-"}
	quants := []string{"", "", "", "*", "+", "-", "?"}
	subjects := []string{"", "a", "ab ba", "aab(b)a", "  a  ", "abab", "x1 y22 z333", "(a(b)c)", "a.b.c", "--x--", "baaab", "a b\tc"}
	var exprs []string
	for len(exprs) < n {
		var p strings.Builder
		for k := rng.IntN(5) + 1; k > 0; k-- {
			p.WriteString(atoms[rng.IntN(len(atoms))])
			p.WriteString(quants[rng.IntN(len(quants))])
		}
		qs, qp := patQuote(subjects[rng.IntN(len(subjects))]), patQuote(p.String())
		switch rng.IntN(4) {
		case 0:
			exprs = append(exprs, fmt.Sprintf("string.find(%s, %s, %d)", qs, qp, rng.IntN(5)-1))
		case 1:
			exprs = append(exprs, fmt.Sprintf("string.match(%s, %s)", qs, qp))
		case 2:
			exprs = append(exprs, fmt.Sprintf("gm(%s, %s)", qs, qp))
		default:
			exprs = append(exprs, fmt.Sprintf("string.gsub(%s, %s, %q, %d)", qs, qp, []string{"<%0>", "%1|%2", "-", "%%"}[rng.IntN(4)], rng.IntN(4)))
		}
	}
	return exprs
}

func TestPatternsAgainstLuaJIT(t *testing.T) {
	luajit, err := exec.LookPath("luajit")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("luajit (package luajit2) is needed in CI")
		}
		t.Skip("luajit (package luajit2) not installed")
	}
	exprs := append(patCallExprs(), patRandomExprs(3000)...)
	f, err := os.CreateTemp(t.TempDir(), "pat*.lua")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(patProgram(exprs, "io.write"))
	f.Close()
	out, err := exec.Command(luajit, f.Name()).CombinedOutput()
	if err != nil {
		t.Fatalf("luajit: %v\n%s", err, out)
	}
	want := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(want) != len(exprs) {
		t.Fatalf("luajit printed %d lines for %d expressions", len(want), len(exprs))
	}
	rt, _ := newTestRuntime(t, Options{Timeout: 20 * time.Second})
	res := runCode(t, rt, PhaseContent, patProgram(exprs, "ngx.print"), newReq("/"))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	got := strings.Split(strings.TrimSuffix(string(res.Body), "\n"), "\n")
	if len(got) != len(exprs) {
		t.Fatalf("sandbox printed %d lines for %d expressions", len(got), len(exprs))
	}
	bad := 0
	for i, e := range exprs {
		if got[i] != want[i] {
			bad++
			if bad <= 50 {
				t.Errorf("%s:\n luajit  %s\n sandbox %s", e, want[i], got[i])
			}
		}
	}
	errs := 0
	for _, w := range want {
		if strings.HasPrefix(w, "error: ") {
			errs++
		}
	}
	t.Logf("%d expressions (%d raising errors in luajit), %d differ", len(exprs), errs, bad)
}

// TestPatternErrors pins LuaJIT's messages without needing luajit.
func TestPatternErrors(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	cases := []struct{ expr, want string }{
		{`string.find("abc", "%")`, "malformed pattern (ends with '%')"},
		{`string.find("abc", "[a")`, "malformed pattern (missing ']')"},
		{`string.find("abc", "[]")`, "malformed pattern (missing ']')"},
		{`string.find("abc", "%f")`, "missing '[' after '%f' in pattern"},
		{`string.find("abc", "%ba")`, "unbalanced pattern"},
		{`string.find("abc", "(a")`, "unfinished capture"},
		{`string.match("abc", "a)")`, "invalid pattern capture"},
		{`string.find("abc", "%1")`, "invalid capture index"},
		{`string.gsub("abc", "a", "%2")`, "invalid capture index"},
		{`string.find(("a"):rep(300), ("a?"):rep(200))`, "pattern too complex"},
		{`string.find(("a"):rep(300), ("(a)"):rep(33))`, "too many captures"},
		{`string.gsub("abc", "a", {a = true})`, "invalid replacement value (a boolean)"},
		{`string.gsub("abc", "a", true)`, "bad argument #3 to 'gsub' (string/function/table expected)"},
		{`string.match("abc")`, "bad argument #2 to 'match' (string expected, got no value)"},
	}
	var exprs []string
	for _, c := range cases {
		exprs = append(exprs, c.expr)
	}
	res := runCode(t, rt, PhaseContent, patProgram(exprs, "ngx.print"), newReq("/"))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	got := strings.Split(strings.TrimSuffix(string(res.Body), "\n"), "\n")
	if len(got) != len(cases) {
		t.Fatalf("got %d lines for %d cases:\n%s", len(got), len(cases), res.Body)
	}
	for i, c := range cases {
		if got[i] != "error: "+c.want {
			t.Errorf("%s: got %q, want %q", c.expr, got[i], "error: "+c.want)
		}
	}
}

// TestPatternErrorPosition: like LuaJIT, a pattern error names the
// calling line of Lua code.
func TestPatternErrorPosition(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	res := runCode(t, rt, PhaseAccess, "local s = 'abc'\nlocal t = s:find('%')", newReq("/"))
	want := "access_by_lua(nginx.conf:10):2: malformed pattern (ends with '%')"
	if res.Err == nil || !strings.HasSuffix(errHead(res.Err), want) || res.Status != 500 {
		t.Errorf("got %v (status %d), want an error ending in %q", res.Err, res.Status, want)
	}
}

// TestPatternSlowTrimStoppedByTimeLimit: the quadratic trim on 20,000
// spaces (> 30 s in gopher-lua's matcher) must end at the run's limit with
// the timeout outcome, also under pcall.
func TestPatternSlowTrimStoppedByTimeLimit(t *testing.T) {
	const limit = 300 * time.Millisecond
	rt, _ := newTestRuntime(t, Options{Timeout: limit})
	for _, src := range []string{
		`local v = "a" .. string.rep(" ", 20000) .. "b" local t = v:match("^%s*(.-)%s*$") ngx.say("done")`,
		`local v = "a" .. string.rep(" ", 20000) .. "b" local ok = pcall(string.gsub, v, "^%s*(.-)%s*$", "%1") ngx.say("done")`,
		`local v = "a" .. string.rep(" ", 20000) .. "b" for a in v:gmatch("(.-)%s*$") do end ngx.say("done")`,
	} {
		t0 := time.Now()
		res := runCode(t, rt, PhaseContent, src, newReq("/"))
		took := time.Since(t0)
		t.Logf("%v: status %d after %v", res.Err, res.Status, took.Round(time.Millisecond))
		if !errors.Is(res.Err, ErrTimeout) || res.Status != 500 {
			t.Errorf("%s: got %v status %d, want the timeout (500)", src, res.Err, res.Status)
		}
		if took > limit+500*time.Millisecond {
			t.Errorf("%s: took %v, limit %v", src, took, limit)
		}
	}
	// The state is usable afterwards and a short trim still works.
	res := runCode(t, rt, PhaseContent, `ngx.say((("  ab  "):match("^%s*(.-)%s*$")))`, newReq("/"))
	if res.Err != nil || string(res.Body) != "ab\n" {
		t.Errorf("after the timeout: %v %q", res.Err, res.Body)
	}
}

// patBenchCases are common patterns from hooks.
var patBenchCases = []struct{ name, fn, s, p string }{
	{"trim", "match", "   Bearer abc.def.ghi   ", "^%s*(.-)%s*$"},
	{"kv", "match", "session=0123456789abcdef; path=/", "session=([%w]+)"},
	{"find-plain", "find", "GET /websockify?token=abc HTTP/1.1", "token="},
	{"find-class", "find", "GET /websockify?token=abc HTTP/1.1", "%d"},
	{"ip-port", "match", "192.168.1.10:5900", "^(%d+%.%d+%.%d+%.%d+):(%d+)$"},
	{"gsub-escape", "gsub", "a.b-c+d*e?f[g]h^i$j%k(l)", "[%^%$%(%)%%%.%[%]%*%+%-%?]"},
	{"gmatch-words", "gmatch", "one two three four five six seven eight", "%S+"},
}

func benchPatterns(b *testing.B, L *lua.LState) {
	// Each case is called from Lua, as hooks do.
	if err := L.DoString(`bench = {
  match = function(s, p) return string.match(s, p) end,
  find = function(s, p) return string.find(s, p) end,
  gsub = function(s, p) return string.gsub(s, p, "%%%0") end,
  gmatch = function(s, p) local n = 0 for w in string.gmatch(s, p) do n = n + 1 end return n end,
}`); err != nil {
		b.Fatal(err)
	}
	for _, c := range patBenchCases {
		b.Run(c.name, func(b *testing.B) {
			fn := L.GetField(L.GetGlobal("bench"), c.fn)
			s, p := lua.LString(c.s), lua.LString(c.p)
			for b.Loop() {
				L.Push(fn)
				L.Push(s)
				L.Push(p)
				L.Call(2, 1)
				if L.Get(-1) == lua.LNil {
					b.Fatal("no match")
				}
				L.Pop(1)
			}
		})
	}
}

// BenchmarkPatterns compares this matcher ("ours") with gopher-lua's.
func BenchmarkPatterns(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		L := lua.NewState()
		defer L.Close()
		openPatterns(L, L.GetGlobal("string").(*lua.LTable))
		benchPatterns(b, L)
	})
	b.Run("gopher-lua", func(b *testing.B) {
		L := lua.NewState()
		defer L.Close()
		benchPatterns(b, L)
	})
}

// FuzzPatterns runs arbitrary patterns and subjects through all four
// functions: they may raise only the pattern errors LuaJIT raises, never a
// Go runtime error, and must finish.
func FuzzPatterns(f *testing.F) {
	for _, p := range patPatterns {
		f.Add("a(b)c [x] 12 ab", p, "<%1>")
	}
	f.Add("((((", "%b()%1", "%0")
	known := []string{"malformed pattern", "missing '[' after '%f' in pattern", "unbalanced pattern", "unfinished capture",
		"invalid pattern capture", "invalid capture index", "pattern too complex", "too many captures"}
	L := lua.NewState()
	defer L.Close()
	openPatterns(L, L.GetGlobal("string").(*lua.LTable))
	if err := L.DoString(`function run(s, p, r)
  string.find(s, p) string.find(s, p, 2) string.match(s, p, -3)
  for a in string.gmatch(s, p) do end
  string.gsub(s, p, r) string.gsub(s, p, {}) string.gsub(s, p, function(...) return select("#", ...) end)
end`); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s, p, r string) {
		if len(s) > 64 || len(p) > 32 {
			return // keep each input cheap: patterns can be exponential
		}
		err := L.CallByParam(lua.P{Fn: L.GetGlobal("run"), Protect: true}, lua.LString(s), lua.LString(p), lua.LString(r))
		if err == nil {
			return
		}
		for _, k := range known {
			if strings.Contains(err.Error(), k) {
				return
			}
		}
		t.Fatalf("find/match/gmatch/gsub(%q, %q, %q): %v", s, p, r, err)
	})
}
