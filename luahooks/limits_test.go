package luahooks

import (
	"strings"
	"testing"
)

// TestLimitLogLines: nginx's debug lines when get_uri_args, get_post_args,
// get_headers and ngx.resp.get_headers stop at their maximum.
func TestLimitLogLines(t *testing.T) {
	rt, sink := newTestRuntime(t, Options{})
	req := newReq("/?a=1&b=2&c=3")
	req.HTTP.Header.Set("X-A", "1")
	req.HTTP.Header.Set("X-B", "2")
	out := runCode(t, rt, PhaseContent, `
		local _, e1 = ngx.req.get_uri_args(2)
		local _, e2 = ngx.req.get_headers(1)
		ngx.header["X-C"] = "c"
		local _, e3 = ngx.resp.get_headers(1)
		ngx.say(e1, " ", e2, " ", e3)`, req)
	if string(out.Body) != "truncated truncated truncated\n" {
		t.Fatalf("body %q, err %v", out.Body, out.Err)
	}
	for _, want := range []string{"lua hit query args limit 2", "lua exceeding request header limit 3 > 1",
		"lua exceeding response header limit 2 > 1"} {
		if !strings.Contains(sink.text(), want) {
			t.Errorf("log lacks %q:\n%s", want, sink.text())
		}
	}
}

// TestTemplateErrors: ngx.re.sub's replacement template errors are the
// lines ngx_http_lua_script_compile logs.
func TestTemplateErrors(t *testing.T) {
	for tmpl, want := range map[string]string{
		"[$0] [$hello]":  `attempt to use named capturing variable "hello" (named captures not supported yet)`,
		"[${hello}]":     `attempt to use named capturing variable "hello" (named captures not supported yet)`,
		"[${134]":        `the closing bracket in "134" variable is missing`,
		"[${134":         `the closing bracket in "134" variable is missing`,
		"[$1] [${":       `lua script: invalid capturing variable name found in "[$1] [${"`,
		"[$1] [$":        `lua script: invalid capturing variable name found in "[$1] [$"`,
		"a $ b":          `lua script: invalid capturing variable name found in "a $ b"`,
		"$1$$${2}x$10$a": `attempt to use named capturing variable "a" (named captures not supported yet)`,
	} {
		_, err := parseTemplate(tmpl)
		if err == nil || err.Error() != want {
			t.Errorf("%q: %v, want %s", tmpl, err, want)
		}
	}
	parts, err := parseTemplate("$1$$${2}x$10")
	if err != nil || len(parts) != 5 || parts[4].group != 10 || parts[0].group != 1 || parts[1].lit != "$" || parts[2].group != 2 || parts[3].lit != "x" {
		t.Errorf("parts %+v, %v", parts, err)
	}
}
