package luahooks

import "testing"

// The messages LuaJIT 2.1 (OpenResty's, through luajit -e / loadstring)
// gives for a missing closing bracket.
func TestSyntaxErrorUnclosedBracket(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"ngx.log(ngx.debug, \"pass\")\nerror(\"failed to init\"\nngx.log(ngx.debug, \"x\")\n",
			`x:3: ')' expected (to close '(' at line 2) near 'ngx'`},
		{"f(a b)", `x:1: ')' expected near 'b'`},
		{"local t = {1 2}", `x:1: '}' expected near '2'`},
		{"local t = {\n1\n2}", `x:3: '}' expected (to close '{' at line 1) near '2'`},
		{"local v = t[1 2]", `x:1: ']' expected near '2'`},
		{"f(a, )", `x:1: unexpected symbol near ')'`},
		{"x = 1 2", `x:1: unexpected symbol near '2'`},
		{"f('a' 'b')", `x:1: ')' expected near ''b''`},
		{"-- (\nf(a --[[ ( ]] b)", `x:2: ')' expected near 'b'`},
		{"function f(a\nb) end", `x:2: ')' expected near 'b'`},
		{"local x = (a\nb)", `x:2: ')' expected (to close '(' at line 1) near 'b'`},
		{"f(function() end x)", `x:1: ')' expected near 'x'`},
		{"f(a", `x:1: ')' expected near '<eof>'`},
		{"\nngx.say(\"hello\"\n  ", `x:3: ')' expected (to close '(' at line 2) near '<eof>'`},
		{"local t = {1", `x:1: '}' expected near '<eof>'`},
		{"f(function() end", `x:1: ')' expected near '<eof>'`},
		{"x = ", `x:1: unexpected symbol near '<eof>'`},
	} {
		_, err := compileLua(c.src, "x", false)
		if err == nil || err.Error() != c.want {
			t.Errorf("%q: got %v, want %s", c.src, err, c.want)
		}
	}
}
