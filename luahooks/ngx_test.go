package luahooks

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type snippetCase struct {
	name   string
	phase  Phase
	src    string
	target string // request target, default "/t"
	want   Outcome
	// errSub is a substring Err must contain (Err nil when empty).
	errSub string
}

func runSnippets(t *testing.T, cases []snippetCase) {
	t.Helper()
	rt, _ := newTestRuntime(t, Options{Env: map[string]string{"SECRET": "s3"}})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target := tc.target
			if target == "" {
				target = "/t"
			}
			req := newReq(target, "foo", "empty")
			req.HTTP.Header.Set("User-Agent", "test-agent")
			req.HTTP.Header.Add("X-Multi", "a")
			req.HTTP.Header.Add("X-Multi", "b")
			out := runCode(t, rt, tc.phase, tc.src, req)
			if tc.errSub == "" && out.Err != nil {
				t.Fatalf("unexpected error: %v", out.Err)
			}
			if tc.errSub != "" {
				if out.Err == nil || !strings.Contains(out.Err.Error(), tc.errSub) {
					t.Fatalf("error %v, want it to contain %q", out.Err, tc.errSub)
				}
				out.Err = nil
			}
			if diff := cmp.Diff(tc.want, out); diff != "" {
				t.Errorf("outcome (-want +got):\n%s\nbody: %q", diff, out.Body)
			}
		})
	}
}

func body(s string) Outcome { return Outcome{Action: Respond, Status: 200, Body: []byte(s)} }

func TestExit(t *testing.T) {
	runSnippets(t, []snippetCase{
		{name: "fall off end", phase: PhaseAccess, src: `local x = 1`, want: Outcome{Action: Continue}},
		{name: "ok", phase: PhaseAccess, src: `ngx.exit(ngx.OK) error("not reached")`, want: Outcome{Action: Continue}},
		{name: "declined", phase: PhaseAccess, src: `ngx.exit(ngx.DECLINED)`, want: Outcome{Action: Continue}},
		{name: "403", phase: PhaseAccess, src: `ngx.exit(ngx.HTTP_FORBIDDEN) error("not reached")`, want: Outcome{Action: ErrorPage, Status: 403}},
		{name: "pcall exit", phase: PhaseAccess, src: `pcall(ngx.exit, 403) ngx.say("after")`, want: Outcome{Action: ErrorPage, Status: 403}},
		{name: "pcall exit in function", phase: PhaseAccess, src: `
			local ok, err = pcall(function() ngx.exit(401) end)
			ngx.say("swallowed ", tostring(ok))`, want: Outcome{Action: ErrorPage, Status: 401}},
		{name: "nested pcall and loop", phase: PhaseAccess, src: `
			while true do pcall(pcall, ngx.exit, 404) end`, want: Outcome{Action: ErrorPage, Status: 404}},
		{name: "xpcall exit", phase: PhaseAccess, src: `xpcall(function() ngx.exit(402) end, function(e) return e end) ngx.say("x")`, want: Outcome{Action: ErrorPage, Status: 402}},
		{name: "coroutine exit", phase: PhaseAccess, src: `local co = coroutine.create(function() ngx.exit(410) end) coroutine.resume(co) ngx.say("x")`, want: Outcome{Action: ErrorPage, Status: 410}},
		{name: "200 header only", phase: PhaseAccess, src: `ngx.exit(200)`, want: Outcome{Action: Respond, Status: 200}},
		{name: "200 with status", phase: PhaseAccess, src: `ngx.status = 201 ngx.exit(200)`, want: Outcome{Action: Respond, Status: 201}},
		{name: "204", phase: PhaseAccess, src: `ngx.exit(204)`, want: Outcome{Action: Respond, Status: 204}},
		{name: "444", phase: PhaseAccess, src: `ngx.exit(444)`, want: Outcome{Action: Close, Status: 444}},
		{name: "499", phase: PhaseAccess, src: `ngx.exit(499)`, want: Outcome{Action: Close, Status: 499}},
		{name: "error const", phase: PhaseAccess, src: `ngx.exit(ngx.ERROR)`, want: Outcome{Action: Close, Status: -1}},
		{name: "again", phase: PhaseAccess, src: `ngx.exit(ngx.AGAIN)`, want: Outcome{Action: ErrorPage, Status: 500}, errSub: "does not accept NGX_AGAIN or NGX_DONE"},
		{name: "string arg", phase: PhaseAccess, src: `ngx.exit("403")`, want: Outcome{Action: ErrorPage, Status: 500}, errSub: "bad argument #1 to 'exit'"},
		{name: "status then ok", phase: PhaseAccess, src: `ngx.status = 403 ngx.exit(ngx.OK)`, want: Outcome{Action: Continue, Status: 403}},
		{name: "say then exit", phase: PhaseAccess, src: `ngx.say("hi") ngx.exit(403)`, want: body("hi\n")},
		{name: "say in access", phase: PhaseAccess, src: `ngx.say("a", 1, true, nil, ngx.null, {"x", {"y"}}) ngx.print(1/3)`, want: body("a1truenilnullxy\n0.33333333333333")},
		{name: "status with say", phase: PhaseAccess, src: `ngx.status = 401 ngx.say("no")`, want: Outcome{Action: Respond, Status: 401, Body: []byte("no\n")}},
		{name: "content empty", phase: PhaseContent, src: ``, want: Outcome{Action: Respond, Status: 200}},
		{name: "content exit ok", phase: PhaseContent, src: `ngx.print("x") ngx.exit(ngx.OK) ngx.print("y")`, want: body("x")},
		{name: "eof", phase: PhaseContent, src: `ngx.say("a") ngx.eof() local ok, err = ngx.say("b") ngx.log(ngx.ERR, err)`, want: body("a\n")},
		{name: "redirect", phase: PhaseAccess, src: `ngx.redirect("/login", 307) error("no")`, want: Outcome{Action: Redirect, Status: 307}},
		{name: "redirect default", phase: PhaseAccess, src: `return ngx.redirect("http://x/")`, want: Outcome{Action: Redirect, Status: 302}},
		{name: "redirect bad", phase: PhaseAccess, src: `ngx.redirect("/x", 200)`, want: Outcome{Action: ErrorPage, Status: 500}, errSub: "only ngx.HTTP_MOVED_TEMPORARILY"},
		{name: "runtime error", phase: PhaseAccess, src: "local a = 1\nerror('boom')", want: Outcome{Action: ErrorPage, Status: 500},
			errSub: "lua entry thread aborted: runtime error: access_by_lua(nginx.conf:10):2: boom"},
		{name: "say in set", phase: PhaseSet, src: `ngx.say("x")`, want: Outcome{Action: ErrorPage, Status: 500}, errSub: "API disabled in the context of set_by_lua*"},
		{name: "set value", phase: PhaseSet, src: `return (ngx.arg[1] or "") .. "!"`, want: Outcome{Action: Continue, Value: "!"}},
		{name: "set error", phase: PhaseSet, src: `return ngx.arg[1] .. "!"`, want: Outcome{Action: ErrorPage, Status: 500}, errSub: "failed to run set_by_lua*: set_by_lua(nginx.conf:10):1:"},
	})
}

func TestTimeout(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{Timeout: 50 * time.Millisecond})
	for _, src := range []string{`while true do end`, `while true do pcall(function() while true do end end) end`, `ngx.sleep(0.08) while true do end`} {
		start := time.Now()
		out := runCode(t, rt, PhaseAccess, src, newReq("/"))
		if out.Action != ErrorPage || out.Status != 500 || !errors.Is(out.Err, ErrTimeout) {
			t.Errorf("%s: %+v", src, out)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: took %v", src, d)
		}
	}
	// The state is reusable afterwards.
	out := runCode(t, rt, PhaseContent, `ngx.say("ok")`, newReq("/"))
	if string(out.Body) != "ok\n" {
		t.Errorf("after timeout: %+v", out)
	}
	// Sleeping is waiting: it does not count against the limit (as in
	// OpenResty, which has no limit at all).
	out = runCode(t, rt, PhaseContent, `ngx.sleep(0.06) ngx.sleep(0.06) ngx.say("slept")`, newReq("/"))
	if string(out.Body) != "slept\n" || out.Err != nil {
		t.Errorf("sleeping past the limit: %+v", out)
	}
}

func TestCtxAcrossPhases(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	req := newReq("/")
	runCode(t, rt, PhaseRewrite, `ngx.ctx.user = "bob"; ngx.ctx.n = 1`, req)
	runCode(t, rt, PhaseAccess, `ngx.ctx.n = ngx.ctx.n + 1`, req)
	out := runCode(t, rt, PhaseContent, `ngx.say(ngx.ctx.user, ngx.ctx.n)`, req)
	if string(out.Body) != "bob2\n" {
		t.Errorf("got %q", out.Body)
	}
	out = runCode(t, rt, PhaseContent, `ngx.say(tostring(ngx.ctx.user))`, newReq("/"))
	if string(out.Body) != "nil\n" {
		t.Errorf("fresh request sees %q", out.Body)
	}
}

func TestVarAndReq(t *testing.T) {
	runSnippets(t, []snippetCase{
		{name: "var read", phase: PhaseContent, target: "/p?a=1&B=x%20y", src: `ngx.say(ngx.var.arg_a, ngx.var.arg_b, ngx.var.uri, ngx.var.args, tostring(ngx.var.nope), "[", ngx.var.empty, "]")`,
			want: body("1x%20y/pa=1&B=x%20ynil[]\n")},
		{name: "var write", phase: PhaseContent, src: `ngx.var.foo = 12 ngx.say(ngx.var.foo) ngx.var.foo = nil ngx.say(tostring(ngx.var.foo))`, want: body("12\nnil\n")},
		{name: "var unknown", phase: PhaseAccess, src: `ngx.var.nope = "x"`, want: Outcome{Action: ErrorPage, Status: 500}, errSub: `variable "nope" not found for writing`},
		{name: "var uri", phase: PhaseAccess, src: `ngx.var.uri = "/x"`, want: Outcome{Action: ErrorPage, Status: 500}, errSub: `variable "uri" not changeable`},
		{name: "uri args", phase: PhaseContent, target: "/t?a=1&a=2&b&c=&=x&d=%41+b&e=%zz",
			src: `local a = ngx.req.get_uri_args()
			ngx.say(a.a[1], a.a[2], " ", tostring(a.b), " [", a.c, "] ", a.d, " ", a.e, " ", tostring(a[""]))`,
			want: body("12 true [] A b %zz nil\n")},
		{name: "uri args max", phase: PhaseContent, target: "/t?a=1&b=2&c=3",
			src: `local a, err = ngx.req.get_uri_args(2) ngx.say(a.a, a.b, tostring(a.c), err)`, want: body("12niltruncated\n")},
		{name: "set uri args", phase: PhaseContent, target: "/t?a=1",
			src: `ngx.req.set_uri_args({b = "x y", c = true}) ngx.say(ngx.var.args) ngx.say(ngx.req.get_uri_args().b)`, want: body("b=x%20y&c\nx y\n")},
		{name: "headers", phase: PhaseContent,
			src:  `local h = ngx.req.get_headers() ngx.say(h["user-agent"], h.user_agent, h["User-Agent"], " ", h.x_multi[1], h.x_multi[2], " ", h.host)`,
			want: body("test-agenttest-agenttest-agent ab example.com\n")},
		{name: "set header", phase: PhaseContent,
			src:  `ngx.req.set_header("X-New", "v") ngx.req.clear_header("User-Agent") local h = ngx.req.get_headers() ngx.say(h.x_new, tostring(h.user_agent), ngx.var.http_x_new)`,
			want: body("vnilv\n")},
		{name: "method", phase: PhaseContent, src: `ngx.say(ngx.req.get_method(), ngx.HTTP_GET, ngx.req.http_version())`, want: body("GET21.1\n")},
		{name: "getenv", phase: PhaseContent, src: `ngx.say(os.getenv("SECRET"), tostring(os.getenv("HOME")), type(io), type(os.execute), type(dofile))`, want: body("s3niltablefunctionnil\n")},
	})
}

func TestHeaderAndStatus(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	req := newReq("/")
	out := runCode(t, rt, PhaseAccess, `
		ngx.header.content_type = "text/plain"
		ngx.header["X-Foo"] = {"a", "b"}
		ngx.header.x_bar = 1
		ngx.header["Set-Cookie"] = {"a=1", "b=2"}
		ngx.header.x_gone = "x"; ngx.header.X_GONE = nil
		local f = ngx.header.x_foo
		ngx.say(ngx.header["Content-Type"], " ", f[1], f[2], " ", ngx.header.x_bar, " ", tostring(ngx.header.x_gone))`, req)
	if string(out.Body) != "text/plain ab 1 nil\n" {
		t.Errorf("body %q (%v)", out.Body, out.Err)
	}
	want := http.Header{"Content-Type": {"text/plain"}, "X-Foo": {"a", "b"}, "x-bar": {"1"}, "Set-Cookie": {"a=1", "b=2"}} // names as spelled, as nginx sends them
	if diff := cmp.Diff(want, req.RespHeader); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
}

// TestHeaderNotes: NoteHeader hears of each ngx.header write in order, a
// clear (nil, "") as one; a table that starts with "" renews the name; a
// cleared Server stays in RespHeader without values (nginx's own is not
// sent either); ngx.redirect notes its Location.
func TestHeaderNotes(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	req := newReq("/")
	var notes []string
	req.NoteHeader = func(name string, set bool) {
		if !set {
			name = "-" + name
		}
		notes = append(notes, name)
	}
	runCode(t, rt, PhaseContent, `
		ngx.header.x_b = "b"
		ngx.header["X-A"] = "a"
		ngx.header["X-A"] = ""
		ngx.header.x_b = {"", "b2"}
		ngx.header.Server = nil
		ngx.redirect("http://example.com/")`, req)
	want := []string{"X-B", "X-A", "-X-A", "-X-B", "X-B", "-Server", "Location"}
	if diff := cmp.Diff(want, notes); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
	if vs, ok := req.RespHeader["Server"]; !ok || len(vs) != 0 {
		t.Errorf("Server %q (present %v), want present without values", vs, ok)
	}
	if vs := req.RespHeader["x-b"]; len(vs) != 1 || vs[0] != "b2" {
		t.Errorf("x-b %q, want [b2]", vs)
	}
}

func TestBody(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	mk := func(b string) *Request {
		r := httptest.NewRequest("POST", "/", strings.NewReader(b))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return &Request{HTTP: r, Vars: newFakeVars(r), ClientBodyBufferSize: 64, ClientMaxBodySize: 1000}
	}
	out := runCode(t, rt, PhaseContent, `ngx.req.read_body() local a = ngx.req.get_post_args() ngx.say(ngx.req.get_body_data(), " ", a.x, a.y, " ", tostring(ngx.req.get_body_file()))`, mk("x=1&y=a+b"))
	if string(out.Body) != "x=1&y=a+b 1a b nil\n" {
		t.Errorf("got %q %v", out.Body, out.Err)
	}
	out = runCode(t, rt, PhaseContent, `ngx.req.read_body() ngx.say(tostring(ngx.req.get_body_data()))`, mk(strings.Repeat("z", 100)))
	if string(out.Body) != "nil\n" {
		t.Errorf("large body: got %q", out.Body)
	}
	big := mk(strings.Repeat("z", 2000))
	big.HTTP.ContentLength = -1 // chunked
	out = runCode(t, rt, PhaseContent, `ngx.req.read_body() ngx.say("no")`, big)
	if out.Action != ErrorPage || out.Status != 413 {
		t.Errorf("too large: %+v", out)
	}
	out = runCode(t, rt, PhaseContent, `ngx.say(tostring(ngx.req.get_body_data())) ngx.req.get_post_args()`, mk("a=1"))
	if out.Err == nil || !strings.Contains(out.Err.Error(), "no request body found") {
		t.Errorf("unread body: %+v", out)
	}
	req := mk("keep")
	runCode(t, rt, PhaseAccess, `ngx.req.read_body()`, req)
	buf := new(strings.Builder)
	if _, err := ioCopy(buf, req.HTTP.Body); err != nil || buf.String() != "keep" {
		t.Errorf("body not kept for upstream: %q %v", buf.String(), err)
	}
	_ = context.Background
}

func TestSetByLuaArgs(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	req := newReq("/")
	req.Args = []string{"x", "", "z"}
	out := runCode(t, rt, PhaseSet, `return tostring(ngx.arg[1]) .. tostring(ngx.arg[2]) .. tostring(ngx.arg[3]) .. select("#", ...) .. tostring((select(3, ...)))`, req)
	if out.Err != nil || out.Value != "xnilz3z" {
		t.Errorf("got %+v", out)
	}
}

// TestInitReplay: init_by_lua globals reach every pooled state, while its
// shared-dict writes and logs happen once.
func TestInitReplay(t *testing.T) {
	rt, sink := newTestRuntime(t, Options{PoolSize: 2})
	c, err := rt.CompileInline(PhaseInit, `
		ngx.shared.dogs:incr("boots", 1, 0)
		ngx.log(ngx.NOTICE, "booting")
		function greet(n) return "hi " .. n end`, "nginx.conf", 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.RunInit(c); err != nil {
		t.Fatal(err)
	}
	// Hold several states at once so the pool must create new ones.
	const n = 6
	var wg sync.WaitGroup
	outs := make([]Outcome, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			outs[i] = runCode(t, rt, PhaseContent, `ngx.sleep(0.02) ngx.print(greet("x"), " ", ngx.shared.dogs:get("boots"))`, newReq("/"))
		}(i)
	}
	wg.Wait()
	for i, out := range outs {
		if string(out.Body) != "hi x 1" {
			t.Errorf("run %d: %q %v", i, out.Body, out.Err)
		}
	}
	if got := strings.Count(sink.text(), "booting"); got != 1 {
		t.Errorf("init logged %d times:\n%s", got, sink.text())
	}
	bad, _ := rt.CompileInline(PhaseInit, "error('initboom')", "/etc/nginx/nginx.conf", 7)
	if err := rt.RunInit(bad); err == nil || err.Error() != "init_by_lua error: init_by_lua(nginx.conf:7):1: initboom" {
		t.Errorf("init error %v", err)
	}
}

// TestRequestContext: a request whose context ends (client gone) stops a
// sleeping hook, and a run is not started for an ended request.
func TestRequestContext(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{Timeout: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	c, err := rt.CompileInline(PhaseAccess, `ngx.sleep(3) ngx.exit(403)`, "nginx.conf", 1)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	out := rt.Run(ctx, c, newReq("/"))
	if out.Action != Close || !errors.Is(out.Err, context.Canceled) {
		t.Errorf("outcome %+v", out)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("sleep went on for %v after the request ended", d)
	}
	if out := rt.Run(ctx, c, newReq("/")); out.Action != Close {
		t.Errorf("run on an ended request: %+v", out)
	}
}

// TestLocationCapture drives ngx.location.capture(_multi) with a fake
// server.
func TestLocationCapture(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	var seen []Subrequest
	capture := func(ctx context.Context, srs []Subrequest) ([]SubResponse, error) {
		var out []SubResponse
		for _, sr := range srs {
			seen = append(seen, sr)
			if sr.Path == "/fail" {
				return nil, errors.New("boom")
			}
			h := http.Header{"X-One": {"1"}, "Set-Cookie": {"a=1", "b=2"}}
			out = append(out, SubResponse{Status: 200 + len(seen), Header: h, Body: []byte("body of " + sr.Path + "?" + sr.Args)})
		}
		return out, nil
	}
	r := httptest.NewRequest("POST", "/t", strings.NewReader("parent-body"))
	req := &Request{HTTP: r, Vars: newFakeVars(r), Capture: capture}
	out := runCode(t, rt, PhaseAccess, `
		ngx.req.read_body()
		local res = ngx.location.capture("/auth?x=1", { args = { y = "2 3" } })
		ngx.say(res.status, " ", res.body, " ", res.header["X-One"], " ", #res.header["Set-Cookie"], " ", tostring(res.truncated))
		local a, b = ngx.location.capture_multi({ { "/a", { method = ngx.HTTP_PUT } }, { "/b", { body = "explicit", args = "k=v" } } })
		ngx.say(a.status, " ", b.status, " ", b.body)
		ngx.say(pcall(ngx.location.capture, "/fail"))`, req)
	want := "201 body of /auth?x=1&y=2%203 1 2 false\n202 203 body of /b?k=v\nfalseboom\n"
	if out.Err != nil || string(out.Body) != want {
		t.Fatalf("got %q (err %v), want %q", out.Body, out.Err, want)
	}
	if seen[0].Method != "GET" || seen[0].Body != nil {
		t.Errorf("GET subrequest %+v", seen[0])
	}
	if seen[1].Method != "PUT" || string(seen[1].Body) != "parent-body" {
		t.Errorf("PUT subrequest should forward the read body: %+v", seen[1])
	}
	if string(seen[2].Body) != "explicit" {
		t.Errorf("explicit body: %+v", seen[2])
	}
	out = runCode(t, rt, PhaseAccess, `ngx.location.capture("/x")`, newReq("/"))
	if out.Status != 500 || out.Err == nil || !strings.Contains(out.Err.Error(), "not supported") {
		t.Errorf("without Capture: %+v", out)
	}
}

func TestUnsupported(t *testing.T) {
	runSnippets(t, []snippetCase{
		// os.exit would end the whole server (nginx: one worker process).
		{name: "os.exit", phase: PhaseAccess, src: `os.exit(1)`, want: Outcome{Action: ErrorPage, Status: 500}, errSub: "os.exit() is not supported"},
		// require "ffi" succeeds (libraries probe for it); its first use fails.
		{name: "use ffi", phase: PhaseAccess, src: `require("ffi").cdef("int x;")`, want: Outcome{Action: ErrorPage, Status: 500}, errSub: "LuaJIT's FFI is not available"},
	})
}

// TestNeedRequestBody: Runtime.ReadBody (lua_need_request_body on) makes
// the body available without ngx.req.read_body.
func TestNeedRequestBody(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	r := httptest.NewRequest("POST", "/", strings.NewReader("a=1&b=2"))
	req := &Request{HTTP: r, Vars: newFakeVars(r), ClientMaxBodySize: 10}
	if status, err := rt.ReadBody(req); status != 0 || err != nil {
		t.Fatalf("ReadBody: %d %v", status, err)
	}
	out := runCode(t, rt, PhaseAccess, `ngx.say(ngx.req.get_body_data(), " ", ngx.req.get_post_args().b)`, req)
	if string(out.Body) != "a=1&b=2 2\n" {
		t.Errorf("got %q %v", out.Body, out.Err)
	}
	big := &Request{HTTP: chunkedRequest(strings.Repeat("x", 11)), ClientMaxBodySize: 10}
	if status, err := rt.ReadBody(big); status != 413 || err == nil {
		t.Errorf("too large: %d %v", status, err)
	}
}

// TestMemoryLimit: a hook that allocates without bound is stopped with
// LuaJIT's "not enough memory" once the heap passes the limit, well before
// its time limit, also inside pcall; the heap is given back and other runs
// go on.
func TestMemoryLimit(t *testing.T) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	limit := ms.HeapAlloc + 128<<20
	rt, _ := newTestRuntime(t, Options{Timeout: 20 * time.Second, MemoryLimit: limit})
	for _, src := range []string{
		`local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 65536) .. i end`,
		`big = {} while true do pcall(function() big[#big + 1] = string.rep("y", 65536) .. #big end) end`,
	} {
		start := time.Now()
		out := runCode(t, rt, PhaseAccess, src, newReq("/"))
		if out.Action != ErrorPage || out.Status != 500 || !errors.Is(out.Err, ErrMemory) ||
			out.Err.Error() != "lua entry thread aborted: runtime error: not enough memory" {
			t.Errorf("%s: %+v", src, out)
		}
		if d := time.Since(start); d > 15*time.Second { // the time limit is 20 s
			t.Errorf("%s: stopped after %v", src, d)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > limit {
		t.Errorf("heap %d MiB after the runs, over the %d MiB limit: the states kept what they allocated",
			ms.HeapAlloc>>20, limit>>20)
	}
	out := runCode(t, rt, PhaseContent, `ngx.say("ok")`, newReq("/"))
	if string(out.Body) != "ok\n" {
		t.Errorf("after the limit: %+v", out)
	}
}

// TestStatusHTTP09: ngx.status reads 9 for an HTTP/0.9 request nothing set
// a status for, as lua-nginx-module's getter does (015-status.t TEST 14).
func TestStatusHTTP09(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	req := newReq("/")
	req.HTTP.Proto, req.HTTP.ProtoMajor, req.HTTP.ProtoMinor = "HTTP/0.9", 0, 9
	out := runCode(t, rt, PhaseContent, `local a = ngx.status ngx.status = 201 ngx.say(a, " ", ngx.status)`, req)
	if string(out.Body) != "9 201\n" {
		t.Errorf("body %q (%v)", out.Body, out.Err)
	}
}

// TestRegexJITLog: a "j" regex logs lua-nginx-module's debug line on every
// compile, a "jo" one once per Runtime; other flags log nothing.
func TestRegexJITLog(t *testing.T) {
	rt, sink := newTestRuntime(t, Options{})
	src := `ngx.re.match("a1", "[0-9]", "jo") ngx.re.sub("a1", "[0-9]", "x", "j") ngx.re.find("a1", "[a-z]", "o")`
	for i := 0; i < 2; i++ {
		if out := runCode(t, rt, PhaseContent, src, newReq("/")); out.Err != nil {
			t.Fatal(out.Err)
		}
	}
	if got := strings.Count(sink.text(), "pcre JIT compiling result: 1"); got != 3 {
		t.Errorf("%d JIT lines, want 3 (jo once, j twice):\n%s", got, sink.text())
	}
}

// TestHTTP10BufferingLog: under lua_http10_buffering, output an HTTP/1.0
// request holds back and the no-op ngx.flush log lua-nginx-module's debug
// lines (056-flush.t TESTs 5, 6, 11, 12); HTTP/1.1 logs neither.
func TestHTTP10BufferingLog(t *testing.T) {
	rt, sink := newTestRuntime(t, Options{})
	src := `ngx.say("a") local ok, err = ngx.flush() ngx.print(tostring(ok), " ", tostring(err))`
	req := newReq("/")
	req.HTTP.Proto, req.HTTP.ProtoMajor, req.HTTP.ProtoMinor = "HTTP/1.0", 1, 0
	if out := runCode(t, rt, PhaseContent, src, req); out.Err != nil || string(out.Body) != "a\nnil buffering" {
		t.Fatalf("HTTP/1.0: %q (%v)", out.Body, out.Err)
	}
	for _, want := range []string{"lua buffering output bufs for the HTTP 1.0 request", "lua http 1.0 buffering makes ngx.flush() a no-op"} {
		if !strings.Contains(sink.text(), want) {
			t.Errorf("no %q in:\n%s", want, sink.text())
		}
	}
	rt, sink = newTestRuntime(t, Options{})
	if out := runCode(t, rt, PhaseContent, src, newReq("/")); out.Err != nil {
		t.Fatal(out.Err)
	}
	if strings.Contains(sink.text(), "HTTP 1.0") || strings.Contains(sink.text(), "http 1.0") {
		t.Errorf("HTTP/1.1 logged buffering:\n%s", sink.text())
	}
}

// TestExitWorker: exit_worker_by_lua runs on a state with init's globals,
// get_phase answers "exit_worker", the request, output, timer and
// cosocket APIs raise lua-nginx-module's context errors, and an error is
// logged as "exit_worker_by_lua error: ..." with its traceback
// (089-phase.t TEST 11).
func TestExitWorker(t *testing.T) {
	rt, sink := newTestRuntime(t, Options{})
	init, err := rt.CompileInline(PhaseInit, `G = "g"`, "/etc/nginx/nginx.conf", 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.RunInit(init); err != nil {
		t.Fatal(err)
	}
	src := `ngx.log(ngx.ERR, ngx.get_phase(), " ", G)
		ngx.log(ngx.ERR, "timer: ", pcall(ngx.timer.at, 0, function() end))
		ngx.log(ngx.ERR, "tcp: ", pcall(ngx.socket.tcp))
		ngx.log(ngx.ERR, "say: ", pcall(ngx.say, "x"))
		ngx.log(ngx.ERR, "req: ", pcall(ngx.req.get_headers))
		error("boom")`
	c, err := rt.CompileInline(PhaseExitWorker, src, "/etc/nginx/nginx.conf", 7)
	if err != nil {
		t.Fatal(err)
	}
	rt.RunExitWorker(c, "exit_worker_by_lua")
	for _, want := range []string{
		"exit_worker_by_lua(nginx.conf:7):1: exit_worker g",
		"timer: falseAPI disabled in the context of exit_worker_by_lua*",
		"tcp: falseAPI disabled in the context of exit_worker_by_lua*",
		"say: falseAPI disabled in the context of exit_worker_by_lua*",
		"req: falseAPI disabled in the current context",
		"exit_worker_by_lua error: exit_worker_by_lua(nginx.conf:7):6: boom\nstack traceback:\n\t[C]: in function 'error'",
	} {
		if !strings.Contains(sink.text(), want) {
			t.Errorf("no %q in:\n%s", want, sink.text())
		}
	}
}

func TestBasePackagePaths(t *testing.T) {
	str := func(s string) *string { return &s }
	path, cpath := basePackagePaths(nil, nil)
	if want := "/usr/share/lua/5.1/?.lua;;" + luajitPath; path != want {
		t.Errorf("path %q, want %q", path, want)
	}
	if cpath != luajitCPath {
		t.Errorf("cpath %q", cpath)
	}
	// LUA_PATH and LUA_CPATH as Debian's nginx showed them (env LUA_PATH).
	path, cpath = basePackagePaths(str("/foo/bar/baz"), str("/baz/bar/foo"))
	if path != "/usr/share/lua/5.1/?.lua;;/foo/bar/baz" || cpath != "/baz/bar/foo" {
		t.Errorf("env: %q %q", path, cpath)
	}
	path, _ = basePackagePaths(str("/foo/?.lua;;"), nil)
	if want := "/usr/share/lua/5.1/?.lua;;/foo/?.lua;" + luajitPath + ";"; path != want {
		t.Errorf("env with ;;: %q, want %q", path, want)
	}
	if got := resolvePackagePath("/x/?.lua;;", "B", "/p"); got != "/x/?.lua;B;" {
		t.Errorf("lua_package_path: %q", got)
	}
	if got := resolvePackagePath("$prefix/a;;${prefix}b;;", "B", "/p"); got != "/p//a;B;/p/b;B;" {
		t.Errorf("lua_package_path with prefix: %q", got)
	}
}
