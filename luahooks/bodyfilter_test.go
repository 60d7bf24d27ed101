package luahooks

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestRunBodyFilter(t *testing.T) {
	rt, logs := newTestRuntime(t, Options{})
	cases := []struct {
		name, src string
		data      string
		eof       bool
		want      string
		wantEOF   bool
		wantErr   string
	}{
		{name: "unchanged", src: `local x = ngx.arg[1]`, data: "abc", want: "abc"},
		{name: "upper", src: `ngx.arg[1] = ngx.arg[1]:upper()`, data: "abc", eof: true, want: "ABC", wantEOF: true},
		{name: "drop", src: `ngx.arg[1] = nil`, data: "abc", want: ""},
		{name: "table", src: `ngx.arg[1] = {"a", 1, {"b"}}`, data: "x", want: "a1b"},
		{name: "number", src: `ngx.arg[1] = 2.5`, data: "x", want: "2.5"},
		{name: "cut", src: `ngx.arg[2] = true`, data: "abc", want: "abc", wantEOF: true},
		{name: "eof read", src: `ngx.arg[1] = tostring(ngx.arg[2]) .. tostring(ngx.arg[3])`, data: "", eof: true, want: "truenil", wantEOF: true},
		{name: "phase", src: `ngx.arg[1] = ngx.get_phase()`, data: "x", want: "body_filter"},
		{name: "bad index", src: `ngx.arg[3] = "x"`, data: "x", wantErr: "failed to run body_filter_by_lua*: body_filter_by_lua(nginx.conf:1):1: bad index: 3"},
		{name: "bad type", src: `ngx.arg[1] = true`, data: "x", wantErr: "bad chunk data type: boolean"},
		{name: "error", src: `error("boom")`, data: "x", wantErr: "boom"},
		{name: "ngx.ERROR", src: `return ngx.ERROR`, data: "x", wantErr: "returned an error"},
		{name: "say", src: `ngx.say("x")`, data: "x", wantErr: "API disabled in the context of body_filter_by_lua*"},
		{name: "exit", src: `ngx.exit(200)`, data: "x", wantErr: "API disabled in the context of body_filter_by_lua*"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch, err := rt.CompileInline(PhaseBodyFilter, c.src, "nginx.conf", 1)
			if err != nil {
				t.Fatal(err)
			}
			req := newReq("/")
			out, eof, err := rt.RunBodyFilter(context.Background(), ch, req, []byte(c.data), c.eof)
			if c.wantErr != "" {
				if err == nil || !errors.Is(err, ErrBodyFilter) || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one with %q", err, c.wantErr)
				}
				return
			}
			if err != nil || string(out) != c.want || eof != c.wantEOF {
				t.Errorf("got %q, %v, %v; want %q, %v (log %s)", out, eof, err, c.want, c.wantEOF, logs.text())
			}
		})
	}
}
