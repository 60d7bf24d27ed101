package luahooks

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// luajitDiffInputs are expressions evaluated by both LuaJIT 2.1 (the
// luajit2 command) and the sandbox; their tostring() must agree.
func luajitDiffInputs() []string {
	var exprs []string
	strs := []string{"1e2", "1700000000e0", " 12 ", "0x1A", "0X1a", "-0x10", "0x1p4", "0x.8", ".5", "5.", "1e", "", "  ",
		"0x", "1 2", "12a", "+5", "-5", "--5", "\t7\n", "1e400", "-1e400", "inf", "-inf", "nan", "1.5e-3", "1E+2",
		"0b101", "1_000", "٣", "0x1g", "  0x10  ", "1e+", ".", "-.5", "+.5e1", "00012", "1.", "0.1e-1"}
	for _, s := range strs {
		q := fmt.Sprintf("%q", s)
		exprs = append(exprs, "tonumber("+q+")")
		for _, base := range []int{2, 8, 10, 16, 36} {
			exprs = append(exprs, fmt.Sprintf("tonumber(%s, %d)", q, base))
		}
	}
	nums := []string{"0", "-0.0", "1/3", "-1/3", "2/3", "1e15", "1e14", "1e100", "2^53", "2^63", "0.1", "100/2", "123456.789",
		"1e-5", "1.5e-7", "3.14159265358979", "-2^31", "2^31", "1e16+1", "12345678901234", "123456789012345", "99999999999999.9"}
	for _, n := range nums {
		exprs = append(exprs, n, "string.format('%g', "+n+")", "string.format('%.3f', "+n+")", "string.format('%5.1e', "+n+")",
			"string.format('%d', "+n+" >= 2^63 and 0 or "+n+")", "string.format('%s', "+n+")", "table.concat({"+n+"})")
	}
	for _, f := range []string{"%5s|%-5s|%.2s", "%x|%X|%o", "%03d|%+d|% d", "%c%c", "%q"} {
		exprs = append(exprs, fmt.Sprintf("string.format(%q, 'ab', 'cd', 'efg')", strings.SplitN(f, "|", 2)[0]))
	}
	exprs = append(exprs, "string.format('%x|%X|%o', 255, 255, 8)", "string.format('%03d|%+d|% d', 7, 7, 7)",
		"string.format('%c%c', 72, 105)", "string.format('%q', 'a\\nb\\0c\"')", "string.rep('ab', 3, '-')",
		"bit.tohex(-1)", "bit.tohex(255, -2)", "bit.band(-1, 2^32 + 7)", "bit.lshift(3, 33)", "bit.arshift(-1, 40)",
		"os.date('!%Y-%m-%d %H:%M:%S %a %b %j %p %y %w', 1700000000)", "os.date('!%c', 1700000000)",
		"os.date('!*t', 1700000000).yday", "os.date('!*t', 1700000000).wday")
	return exprs
}

func TestAgainstLuaJIT(t *testing.T) {
	luajit, err := exec.LookPath("luajit")
	if err != nil {
		t.Skip("luajit (package luajit2) not installed")
	}
	exprs := luajitDiffInputs()
	var prog strings.Builder
	for _, e := range exprs {
		fmt.Fprintf(&prog, "do local ok, v = pcall(function() return (%s) end) v = ok and tostring(v) or ('error: ' .. tostring(v):gsub('^.-:%%d+: ', '')) io.write((v:gsub('\\n', '\\\\n')), '\\n') end\n", e)
	}
	out, err := exec.Command(luajit, "-e", prog.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("luajit: %v\n%s", err, out)
	}
	want := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(want) != len(exprs) {
		t.Fatalf("luajit printed %d lines for %d expressions", len(want), len(exprs))
	}
	rt, _ := newTestRuntime(t, Options{})
	src := strings.ReplaceAll(prog.String(), "io.write(", "ngx.print(")
	res := runCode(t, rt, PhaseContent, src, newReq("/"))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	got := strings.Split(strings.TrimSuffix(string(res.Body), "\n"), "\n")
	if len(got) != len(exprs) {
		t.Fatalf("sandbox printed %d lines for %d expressions:\n%s", len(got), len(exprs), res.Body)
	}
	bad := 0
	for i, e := range exprs {
		if got[i] != want[i] {
			bad++
			t.Errorf("%s: luajit %q, sandbox %q", e, want[i], got[i])
		}
	}
	t.Logf("%d expressions, %d differ", len(exprs), bad)
}
