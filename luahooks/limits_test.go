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
