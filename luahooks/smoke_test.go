package luahooks

import (
	"os"
	"testing"
)

func TestSmoke(t *testing.T) {
	rt, sink := newTestRuntime(t, Options{})
	src, _ := os.ReadFile("/work/shared/corpus/a/tg123-readme-dynamic-upstream-md5.conf")
	_ = src
	out := runCode(t, rt, PhaseContent, `ngx.say("hi ", 1/3, " ", tonumber("1e2"), " ", ngx.md5("x"))
	local m = ngx.re.match("hello world", [[(?<w>\w+) (\w+)]])
	ngx.say(m[0], "|", m[1], "|", m[2], "|", m.w)
	ngx.say(require("cjson").encode({a={1,2,"x/y"}}))
	ngx.log(ngx.ERR, "boom ", 1, nil)
	error("bad")
	`, newReq("/x?a=1"))
	t.Logf("%+v %q %v\n%s", out, out.Body, out.Err, sink.text())
}
