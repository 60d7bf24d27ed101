package luahooks

import (
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// Multiple assignment evaluates every expression before it assigns
// (gopher-lua 1.1.2 does not: see multiassign.go).
func TestMultiAssignEvaluatesFirst(t *testing.T) {
	cases := []struct{ src, want string }{
		{`local a, b = 1, 2; a, b = b, a; return a .. " " .. b`, "2 1"},
		{`local a, b = 1, 1; for i = 1, 5 do a, b = b, a + b end; return a .. " " .. b`, "8 13"},
		{`local a, b = 0, 0; a, b = a + 1, a + b; return a .. " " .. b`, "1 0"},
		{`local t, i = {}, 1; i, t[i] = i + 1, 20; return i .. " " .. tostring(t[1]) .. " " .. tostring(t[2])`, "2 20 nil"},
		{`local function f() return 3, 4, 5 end; local a, b, c = 1, 2, 0; a, b, c = f(); return a .. b .. c`, "345"},
		{`local a, b, c = 1, 2, 3; a, b, c = c; return tostring(a) .. tostring(b) .. tostring(c)`, "3nilnil"},
		{`x, y = 1, 2; x, y = y, x; return x .. y`, "21"},
		{`local a, b = 1, 2; local f = function() a, b = b, a end; f(); return a .. b`, "21"},
		{`local a, b = 1, 2; local co = coroutine.wrap(function() while true do coroutine.yield(a); a, b = b, a + b end end)
		  local s = ""; for i = 1, 6 do s = s .. co() .. " " end; return s`, "1 2 3 5 8 13 "},
	}
	for _, c := range cases {
		proto, err := compileLua(c.src, "x", false)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		L := lua.NewState()
		L.Push(L.NewFunctionFromProto(proto))
		if err := L.PCall(0, 1, nil); err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		if got := L.Get(-1).String(); got != c.want {
			t.Errorf("%s: got %q, want %q", c.src, got, c.want)
		}
		L.Close()
	}
}
