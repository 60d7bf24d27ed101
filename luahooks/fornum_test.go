package luahooks

import "testing"

// TestForNumbers: a numeric for loop takes numeric strings for its
// values, as LuaJIT does, and names the bad one with LuaJIT's message.
func TestForNumbers(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	for _, tc := range []struct{ src, want string }{
		{`local n = "3" local s = "" for i = "1", n, " 1 " do s = s .. i end ngx.print(s)`, "123"},
		{`local t = {step = "0x2"} local s = "" for i = 1, 6, t.step do s = s .. i end ngx.print(s)`, "135"},
		{`local s = "" for i = 3, 1, -1 do s = s .. i end for i = 1, #"ab" do s = s .. i end ngx.print(s)`, "32112"},
		{`ngx.print(pcall(function() for i = 1, "x" do end end))`, "falsecontent_by_lua(nginx.conf:10):1: 'for' limit must be a number"},
		{`ngx.print(pcall(function() for i = {}, 2 do end end))`, "falsecontent_by_lua(nginx.conf:10):1: 'for' initial value must be a number"},
		{"ngx.print(pcall(function()\n for i = 1, 2, nil do end end))", "falsecontent_by_lua(nginx.conf:10):2: 'for' step must be a number"},
	} {
		out := runCode(t, rt, PhaseContent, tc.src, newReq("/"))
		if out.Err != nil || string(out.Body) != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.src, out.Body, out.Err, tc.want)
		}
	}
}
