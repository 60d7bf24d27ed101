package proxy

import (
	"net/http/httptest"
	"strings"
	"testing"

	"ngxsockify/nginxconf/vars"
)

// newTestSSIFilter returns a filter for one response of GET uri whose
// commands, if show, are written out as {name k=v ...} instead of run.
func newTestSSIFilter(uri string, show bool) *ssiFilter {
	rq := &request{st: &state{}, r: httptest.NewRequest("GET", uri, nil)}
	rq.v = vars.NewRequest(vars.NewRegistry(), rq.r)
	f := &ssiFilter{rq: rq, errmsg: ssiDefaultErrmsg, valueLen: 256}
	f.run = f.command
	if show {
		f.run = func(c *ssiCommand) []byte {
			s := "{" + c.name
			for _, p := range c.params {
				s += " " + p[0] + "=" + p[1]
			}
			return []byte(s + "}")
		}
	}
	return f
}

// runSSI filters body written in the given pieces.
func runSSI(f *ssiFilter, pieces []string) string {
	var out strings.Builder
	for _, p := range pieces {
		out.Write(f.write([]byte(p)))
	}
	out.Write(f.end())
	return out.String()
}

var ssiParseTests = []struct {
	name, in, want string
}{
	{"text", "plain <b>text</b> <!- <!-x", "plain <b>text</b> <!- <!-x"},
	{"comment", "a<!-- c -->b", "a<!-- c -->b"},
	{"command", `a<!--#echo var="x" -->b`, "a{echo var=x}b"},
	{"spaces and quotes", "<!--#  include\tvirtual = '/a?b' set=\"v\"-->", "{include virtual=/a?b set=v}"},
	{"escaped quote", `<!--#set var="a" value="x\"y\z" -->`, `{set var=a value=x"y\z}`},
	{"dashes in a value", `<!--#set var="a" value="-->" -->.`, "{set var=a value=-->}."},
	{"parameter names lower", `<!--#echo VAR="x" -->`, "{echo var=x}"},
	{"no command", "1<!--# -->2<!-- x -->3", "1" + ssiDefaultErrmsg + "3"},
	{"bad byte after a value", `<!--#echo var="x"y -->z`, ssiDefaultErrmsg + "z"},
	{"no value", `<!--#echo var x="1" -->z`, ssiDefaultErrmsg + "z"},
	{"no value at the end", `<!--#echo var -->z-->y`, ssiDefaultErrmsg + "z-->y"},
	{"unquoted value", `<!--#echo var=x -->z`, ssiDefaultErrmsg + "z"},
	{"too long command", "<!--#" + strings.Repeat("a", 40) + " -->z", ssiDefaultErrmsg + "z"},
	{"two commands", `<!--#a--><!--#b x="1"-->`, "{a}{b x=1}"},
	{"short held at the end", "x<!-", "x"}, // nginx drops what might begin a command
	{"unfinished command at the end", `x<!--#echo var="a`, "x"},
}

// TestSSIParse checks the parser's output, and that every split of the
// input into two or three writes gives the same output.
func TestSSIParse(t *testing.T) {
	for _, tt := range ssiParseTests {
		check := func(pieces []string) {
			t.Helper()
			if got := runSSI(newTestSSIFilter("/", true), pieces); got != tt.want {
				t.Errorf("%s: %q: got %q, want %q", tt.name, pieces, got, tt.want)
			}
		}
		check([]string{tt.in})
		for i := 0; i <= len(tt.in); i++ {
			check([]string{tt.in[:i], tt.in[i:]})
			for j := i; j <= len(tt.in); j++ {
				check([]string{tt.in[:i], tt.in[i:j], tt.in[j:]})
			}
		}
	}
}

// TestSSICommands runs set, echo and config (no subrequests), byte by
// byte and whole.
func TestSSICommands(t *testing.T) {
	tests := []struct{ name, uri, in, want string }{
		{"set and echo", "/p/x.html?a=1",
			`<!--#set var="v" value="$uri|${arg_a}|\$x|$nope|" --><!--#echo var="v" -->`, "/p/x.html|1|$x||"},
		{"echo none and default", "/", `<!--#echo var="n" -->,<!--#echo var="n" default="d" -->`, "(none),d"},
		{"entity then sticky url", "/", `<!--#set var="v" value="<a&b c>" --><!--#echo var="v" -->,` +
			`<!--#echo var="v" encoding="url" -->,<!--#echo var="v" -->,<!--#echo var="v" encoding="none" -->`,
			"&lt;a&amp;b c&gt;,%3Ca&b%20c%3E,%3Ca&b%20c%3E,<a&b c>"},
		{"unknown command", "/", `1<!--#flastmod file="x" -->2`, "1" + ssiDefaultErrmsg + "2"},
		{"mandatory parameter", "/", `1<!--#echo -->2`, "1" + ssiDefaultErrmsg + "2"},
		{"unknown parameter", "/", `1<!--#echo var="a" x="y" -->2`, "1" + ssiDefaultErrmsg + "2"},
		{"errmsg", "/", `<!--#config errmsg="E" --><!--#nope -->`, "E"},
		{"if taken", "/?a=1", `<!--#if expr="$arg_a" -->A<!--#echo var="arg_a" --><!--#elif expr="$arg_b = x" -->B<!--#else -->C<!--#endif -->.`, "A1."},
		{"elif taken", "/?b=x", `<!--#if expr="$arg_a" -->A<!--#elif expr="$arg_b = x" -->B<!--#else -->C<!--#endif -->.`, "B."},
		{"else taken", "/?b=y", `<!--#if expr="$arg_a" -->A<!--#elif expr="$arg_b = x" -->B<!--#else -->C<!--#endif -->.`, "C."},
		{"regex and not", "/?b=abc", `<!--#if expr="$arg_b = /^a.c/" -->1<!--#endif --><!--#if expr="$arg_b != abc" -->2<!--#else -->3<!--#endif -->`, "13"},
		{"skipped commands do not run", "/", `<!--#if expr="$arg_a" --><!--#set var="v" value="x" --><!--#nope --><!--#endif --><!--#echo var="v" -->`, "(none)"},
		{"a $ without a name", "/", `<!--#if expr="$arg_b = /c$/" -->1<!--#endif -->2`, ssiDefaultErrmsg + "1" + ssiDefaultErrmsg + "2"},
		{"regex captures", "/?v=aCAP1bCAP2", `<!--#if expr="$arg_v = /(CAP\d).*(?P<n>CAP\d)/" --><!--#echo var="1" -->,<!--#echo var="n" --><!--#endif -->`, "CAP1,CAP2"},
		{"a block is not output", "/", `1<!--#block name="b" -->B<!--#echo var="uri" --><!--#endblock -->2`, "12"},
		{"else without if", "/", `1<!--#else -->2`, "1" + ssiDefaultErrmsg + "2"},
		{"bad encoding", "/", `<!--#echo var="uri" encoding="b64" -->,<!--#echo var="nope" encoding="b64" -->`, "/,(none)"},
	}
	for _, tt := range tests {
		whole := runSSI(newTestSSIFilter(tt.uri, false), []string{tt.in})
		if whole != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, whole, tt.want)
		}
		var bytewise []string
		for _, c := range tt.in {
			bytewise = append(bytewise, string(c))
		}
		if got := runSSI(newTestSSIFilter(tt.uri, false), bytewise); got != tt.want {
			t.Errorf("%s byte by byte: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

// The includes posted while a piece is read run once it was read, in
// order, after what the request's filters posted before them (an
// addition's before-body subrequest), and their output goes in place.
func TestSSIPendingInPlace(t *testing.T) {
	f := newTestSSIFilter("/", false)
	var order []string
	f.rq.posted = append(f.rq.posted, func() { order = append(order, "posted") })
	f.out = []byte("ab|cd|")
	for i, at := range []int{2, 5, 6} {
		name := string(rune('X' + i))
		f.pending = append(f.pending, ssiPending{at: at, run: func() []byte {
			order = append(order, name)
			return []byte(name)
		}})
	}
	f.runPending()
	if got := string(f.out); got != "abX|cdY|Z" {
		t.Errorf("output %q", got)
	}
	if got := strings.Join(order, ","); got != "posted,X,Y,Z" {
		t.Errorf("order %s", got)
	}
	if len(f.pending) != 0 || len(f.rq.posted) != 0 {
		t.Error("left pending")
	}
}
