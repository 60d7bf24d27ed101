package test

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The Lua differential suite: testdata/lua/*.case use the routing case
// format (see routing_test.go) with one more header line,
//
//	#headers X-Foo Content-Type     <- response headers compared as well
//	#spelling foo_bar X-MiXed       <- and how their names are spelled (routing's)
//
// Each case runs on real nginx + lua-nginx-module and on ngxsockify; status,
// Location, body and the listed headers must be equal.
//
// A request body (after " <<< ") may also hold
//
//	{{x*2m}}   <- the character x repeated 2 MiB times (k and m suffixes, or bytes)
//	{{chunk}}  <- a chunk boundary, with "Transfer-Encoding: chunked"
//
// and with a "Transfer-Encoding: chunked" header the body is sent chunked
// (one chunk unless {{chunk}} splits it; no Content-Length is added).

const luaCaseDir = "testdata/lua"

type luaCase struct {
	routingCase
	headers []string
}

type luaResult struct {
	Status   int
	Location string
	Body     string
	Headers  map[string]string
	Spelled  []string // the spellings sent of the names #spelling lists, sorted
}

func loadLuaCases(t *testing.T) []luaCase {
	t.Helper()
	dir := luaCaseDir
	if d := os.Getenv("LUA_CASE_DIR"); d != "" { // to try cases out of tree
		dir = d
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.case"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no cases in %s", dir)
	}
	var cases []luaCase
	for _, p := range paths {
		rc, err := parseRoutingCase(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		c := luaCase{routingCase: rc}
		for i := range c.requests {
			if err := expandLuaBody(&c.requests[i]); err != nil {
				t.Fatalf("%s:%d: %v", p, c.requests[i].line, err)
			}
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(l, "#headers "); ok {
				c.headers = append(c.headers, strings.Fields(rest)...)
			}
		}
		cases = append(cases, c)
	}
	return cases
}

var bodyTokenRE = regexp.MustCompile(`\{\{(?:(.)\*(\d+)([km]?)|(chunk))\}\}`)

// expandLuaBody applies the body notation ({{x*N}}, {{chunk}}, chunked
// transfer) to a request parsed by parseRoutingRequest, fixing the
// Content-Length that parseRoutingRequest added for the written body.
func expandLuaBody(r *routingRequest) error {
	head, body, ok := strings.Cut(r.raw, "\r\n\r\n")
	if !ok {
		return nil
	}
	lower := strings.ToLower(head)
	chunked := strings.Contains(lower, "\r\ntransfer-encoding: chunked")
	if !chunked && !strings.Contains(body, "{{") {
		return nil
	}
	var chunks []string
	var cur strings.Builder
	last := 0
	for _, m := range bodyTokenRE.FindAllStringSubmatchIndex(body, -1) {
		cur.WriteString(body[last:m[0]])
		last = m[1]
		if m[8] >= 0 { // {{chunk}}
			chunks = append(chunks, cur.String())
			cur.Reset()
			continue
		}
		n, err := strconv.Atoi(body[m[4]:m[5]])
		if err != nil {
			return err
		}
		switch body[m[6]:m[7]] {
		case "k":
			n <<= 10
		case "m":
			n <<= 20
		}
		cur.WriteString(strings.Repeat(body[m[2]:m[3]], n))
	}
	cur.WriteString(body[last:])
	chunks = append(chunks, cur.String())
	// parseRoutingRequest wrote "Content-Length: <written length>" just
	// before the final Connection header unless the case gave one.
	written, _, _ := strings.Cut(r.show, " <<< ")
	if strings.Contains(strings.ToLower(written), "content-length:") {
		return errors.New("write no Content-Length with {{...}} or chunked bodies")
	}
	head = strings.TrimSuffix(head, "\r\nConnection: close")
	head = strings.TrimSuffix(head, fmt.Sprintf("\r\nContent-Length: %d", len(body)))
	var b strings.Builder
	b.WriteString(head)
	if chunked {
		b.WriteString("\r\nConnection: close\r\n\r\n")
		for _, c := range chunks {
			if c != "" {
				fmt.Fprintf(&b, "%x\r\n%s\r\n", len(c), c)
			}
		}
		b.WriteString("0\r\n\r\n")
	} else {
		all := strings.Join(chunks, "")
		fmt.Fprintf(&b, "\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(all), all)
	}
	r.raw = b.String()
	return nil
}

// luaAsk sends r to s and returns the comparable result (see ask).
func luaAsk(s *Server, c luaCase, r routingRequest) luaResult {
	resp, err := rawRequest(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Ports[r.port])), r.raw, routingTimeout)
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return luaResult{Body: "<closed without response>"}
		case errors.As(err, &ne) && ne.Timeout():
			return luaResult{Body: "<timeout>"}
		default:
			return luaResult{Body: "<error: " + err.Error() + ">"}
		}
	}
	norm := func(v string) string {
		v = strings.ReplaceAll(v, s.Dir, "{{DIR}}")
		v = portPlaceholder(v, s.Port)
		return nginxVersionRE.ReplaceAllString(v, "nginx")
	}
	res := luaResult{Status: resp.Status, Location: norm(resp.Header.Get("Location")), Body: norm(resp.Body)}
	for _, h := range c.headers {
		if vals := resp.Header.Values(h); len(vals) > 0 {
			if res.Headers == nil {
				res.Headers = map[string]string{}
			}
			res.Headers[h] = strings.Join(vals, " | ")
		}
	}
	for _, name := range resp.Names {
		for _, want := range c.spelling {
			if strings.EqualFold(name, want) {
				res.Spelled = append(res.Spelled, name)
			}
		}
	}
	sort.Strings(res.Spelled)
	return res
}

func compareLua(t *testing.T, c luaCase, a, b *Server, pin bool) {
	t.Helper()
	for _, r := range c.requests {
		ra, rb := luaAsk(a, c, r), luaAsk(b, c, r)
		where := fmt.Sprintf("%s/%s.case:%d %s", luaCaseDir, c.name, r.line, r.show)
		if os.Getenv("LUA_SHOW") != "" {
			t.Logf("%s\n\t%s: %d %q %v\n%s", where, a.Kind, ra.Status, ra.Location, ra.Headers, ra.Body)
		}
		if pin && r.wantStatus != 0 && ra.Status != r.wantStatus {
			t.Errorf("%s: %s answered %d, the case expects %d (body %q)", where, a.Kind, ra.Status, r.wantStatus, ra.Body)
		}
		if diff := cmp.Diff(ra, rb); diff != "" {
			t.Errorf("%s: %s and %s differ (-%s +%s):\n%s", where, a.Kind, b.Kind, a.Kind, b.Kind, diff)
		}
	}
}

func startLua(t *testing.T, kind string, c luaCase) *Server {
	t.Helper()
	o := ServerOptions{HTTP: c.http}
	if len(c.main) > 0 {
		o.Main = strings.Replace(wrapHTTP(c.http), "events {}", strings.Join(c.main, "\n")+"\nevents {}", 1)
	}
	s := startServer(t, kind, o)
	makeRoutingFiles(t, s.Dir, c.files)
	return s
}

// TestLuaOracle runs every Lua case on two nginx instances: each pinned
// status must match and both must answer alike (no case depends on time or
// process).
func TestLuaOracle(t *testing.T) {
	requireNginx(t)
	n := 0
	for _, c := range loadLuaCases(t) {
		n += len(c.requests)
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := startLua(t, "nginx", c)
			b := startLua(t, "nginx", c)
			compareLua(t, c, a, b, true)
		})
	}
	if n < 150 {
		t.Errorf("only %d Lua request cases, want at least 150", n)
	}
}

// TestLua is the Lua differential suite: nginx + lua-nginx-module against
// ngxsockify.
func TestLua(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	for _, c := range loadLuaCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := startLua(t, "nginx", c)
			b := startLua(t, "ngxsockify", c)
			compareLua(t, c, a, b, false)
		})
	}
}

// seedConf is the tg123 README hook with websockify_pass replaced by a
// content handler that shows the chosen target (nginx here has no
// websockify module).
func seedConf(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../examples/novnc/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "location /websockify {")
	end := strings.Index(text, "# --- end of the verbatim part ---")
	if start < 0 || end < 0 {
		t.Fatal("examples/novnc/nginx.conf lost its verbatim /websockify location")
	}
	loc := strings.Replace(text[start:end], "websockify_pass $vnc_addr;",
		`content_by_lua_block { ngx.say("target ", ngx.var.vnc_addr) }`, 1)
	return "server {\n listen 127.0.0.1:{{PORT}};\n" + loc + "\n}\n"
}

func signedPath(key, ip, port string, ts int64) string {
	sum := md5.Sum([]byte(fmt.Sprintf("%s%d%s:%s%s", key, ts, ip, port, key)))
	return fmt.Sprintf("/websockify?ip=%s&port=%s&t=%d&sign=%s", ip, port, ts, hex.EncodeToString(sum[:]))
}

// TestLuaSeedHook runs the seed deployment's signature check (verbatim) on
// both servers with signatures made now.
func TestLuaSeedHook(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	conf := seedConf(t)
	a := startServer(t, "nginx", ServerOptions{HTTP: conf})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: conf})
	now := time.Now().Unix()
	const key = "CHANGE_ME_!!!!"
	good := signedPath(key, "10.1.2.3", "5901", now)
	targets := []struct {
		path string
		want int
	}{
		{good, 200},
		{signedPath(key, "127.0.0.1", "5900", now-5), 200},
		{strings.Replace(good, "port=5901", "port=5902", 1), 403},
		{signedPath("wrong", "10.1.2.3", "5901", now), 403},
		{signedPath(key, "10.1.2.3", "5901", now-120), 403},
		{signedPath(key, "10.1.2.3", "5901", now+120), 403},
		// tonumber("<unix>e0") is the same number in LuaJIT, so the same
		// signature passes (gopher-lua's own tonumber says nil: 403).
		{strings.Replace(good, fmt.Sprintf("t=%d", now), fmt.Sprintf("t=%de0", now), 1), 200},
		{strings.Replace(good, fmt.Sprintf("t=%d", now), fmt.Sprintf("t=%d.0", now), 1), 200},
		{strings.Replace(good, fmt.Sprintf("t=%d", now), fmt.Sprintf("t=%d.5", now), 1), 403},
		{"/websockify", 403},
		{"/websockify?t=abc", 403},
	}
	for _, tc := range targets {
		raw := "GET " + tc.path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
		r := routingRequest{raw: raw, show: tc.path}
		c := luaCase{}
		ra, rb := luaAsk(a, c, r), luaAsk(b, c, r)
		if ra.Status != tc.want {
			t.Errorf("%s: nginx answered %d, want %d", tc.path, ra.Status, tc.want)
		}
		if diff := cmp.Diff(ra, rb); diff != "" {
			t.Errorf("%s: nginx and ngxsockify differ (-nginx +ngxsockify):\n%s", tc.path, diff)
		}
	}
}

// TestLuaRequestBody covers ngx.req.read_body, get_body_data and
// get_post_args with real bodies (the case format has no bodies).
func TestLuaRequestBody(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	conf := `server {
 listen 127.0.0.1:{{PORT}};
 client_max_body_size 64k;
 location /body {
  content_by_lua_block {
   ngx.req.read_body()
   local data = ngx.req.get_body_data()
   ngx.say("len ", data and #data or "nil", " file ", tostring(ngx.req.get_body_file() ~= nil))
   local args, err = ngx.req.get_post_args()
   if not args then ngx.say("err ", err) return end
   local keys = {}
   for k in pairs(args) do keys[#keys + 1] = k end
   table.sort(keys)
   for _, k in ipairs(keys) do
    local v = args[k]
    if type(v) == "table" then v = table.concat(v, ",") end
    ngx.say(k, "=", tostring(v))
   end
  }
 }
 location /nobody {
  content_by_lua_block { ngx.say(tostring(ngx.req.get_body_data())) ngx.say(pcall(ngx.req.get_post_args)) }
 }
}`
	a := startServer(t, "nginx", ServerOptions{HTTP: conf})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: conf})
	bodies := []struct{ path, body string }{
		{"/body", "a=1&b=x+y&a=2&c"},
		{"/body", ""},
		{"/body", "json=" + url.QueryEscape(`{"k":[1,2]}`)},
		{"/body", strings.Repeat("k=v&", 1000)},
		{"/body", strings.Repeat("z", 100<<10)},
		{"/nobody", "a=1"},
	}
	for _, bc := range bodies {
		raw := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", bc.path, len(bc.body), bc.body)
		r := routingRequest{raw: raw, show: fmt.Sprintf("POST %s (%d bytes)", bc.path, len(bc.body))}
		ra, rb := luaAsk(a, luaCase{}, r), luaAsk(b, luaCase{}, r)
		if diff := cmp.Diff(ra, rb); diff != "" {
			t.Errorf("%s: nginx and ngxsockify differ (-nginx +ngxsockify):\n%s", r.show, diff)
		}
	}
}

var exampleURLRE = regexp.MustCompile(`^http://[^/]+/vnc_lite\.html\?path=(websockify%3F\S+)\n$`)

// TestLuaExampleNoVNC checks examples/novnc: ngxsockify accepts it as is
// (-t), its /sign endpoint and sign.sh make URLs the hook accepts, and a
// tampered URL is refused with 403.
func TestLuaExampleNoVNC(t *testing.T) {
	main := checkExample(t, "novnc", func(conf string) string {
		// real nginx (no websockify module here) accepts the rest as is
		conf = strings.Replace(conf, "websockify_pass $vnc_addr;", "return 200;", 1)
		return luaModules + strings.Replace(conf, "websockify_allow 127.0.0.1:5900-5999;", "", 1)
	})
	s := startServer(t, "ngxsockify", ServerOptions{Main: main})
	resp, err := rawRequest(s.Addr, "GET /sign?ip=127.0.0.1&port=5901 HTTP/1.1\r\nHost: "+s.Addr+"\r\nConnection: close\r\n\r\n", routingTimeout)
	if err != nil {
		t.Fatal(err)
	}
	m := exampleURLRE.FindStringSubmatch(resp.Body)
	if resp.Status != 200 || m == nil {
		t.Fatalf("/sign answered %d %q", resp.Status, resp.Body)
	}
	ws, err := url.PathUnescape(m[1]) // what noVNC does with path=
	if err != nil {
		t.Fatal(err)
	}
	out, err := runSignScript(t)
	if err != nil {
		t.Fatal(err)
	}
	m2 := exampleURLRE.FindStringSubmatch(out)
	if m2 == nil {
		t.Fatalf("sign.sh printed %q", out)
	}
	ws2, _ := url.PathUnescape(m2[1])
	for _, p := range []string{ws, ws2} {
		if !strings.HasPrefix(p, "websockify?") {
			t.Fatalf("decoded path %q", p)
		}
		// A plain GET passes the hook and reaches websockify_pass, which
		// refuses a non-WebSocket request; a bad signature stops at 403.
		good, err := rawRequest(s.Addr, "GET /"+p+" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", routingTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if good.Status == 403 {
			t.Errorf("signed path /%s refused with 403", p)
		}
		bad, err := rawRequest(s.Addr, "GET /"+strings.Replace(p, "port=5901", "port=22", 1)+" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", routingTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if bad.Status != 403 {
			t.Errorf("tampered path answered %d, want 403", bad.Status)
		}
	}
	// A URL signed for a port outside websockify_allow passes the hook and
	// is refused by the allowlist.
	resp, err = rawRequest(s.Addr, "GET /sign?ip=127.0.0.1&port=22 HTTP/1.1\r\nHost: "+s.Addr+"\r\nConnection: close\r\n\r\n", routingTimeout)
	if err != nil {
		t.Fatal(err)
	}
	m = exampleURLRE.FindStringSubmatch(resp.Body)
	if m == nil {
		t.Fatalf("/sign answered %d %q", resp.Status, resp.Body)
	}
	p22, _ := url.PathUnescape(m[1])
	r22, err := rawRequest(s.Addr, "GET /"+p22+" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", routingTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if r22.Status != 403 {
		t.Errorf("a URL signed for port 22 answered %d, want 403 (websockify_allow)", r22.Status)
	}
}

func runSignScript(t *testing.T) (string, error) {
	t.Helper()
	cmd := exec.Command("../examples/novnc/sign.sh", "127.0.0.1", "5901", "http://127.0.0.1:6080")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// luaLogRE picks the Lua part of an error-log line: from the message start
// to nginx's ", client: " suffix.
var luaLogRE = regexp.MustCompile(`(?m)\[(error|warn|notice|info)\] [^\n]*?((?:\[lua\]|lua entry thread aborted|failed to load|failed to run|attempt to set status)[^\n]*?)(, client: |$)`)

// TestLuaErrorLog compares the Lua lines of both servers' error logs: chunk
// names carry nginx.conf line numbers, ngx.log prefixes, runtime errors.
func TestLuaErrorLog(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	conf := `server {
    listen 127.0.0.1:{{PORT}};
    location /log {
        content_by_lua_block {
            ngx.log(ngx.ERR, "err ", 1, " ", nil, " ", true)
            local function helper() ngx.log(ngx.WARN, "from helper") end
            helper()
            print("printed ", 2)
            local t = {}
            function t.field() ngx.log(ngx.INFO, "in field") end
            t.field()
            function t:method() ngx.log(ngx.NOTICE, "in method") end
            t:method()
            ngx.say("ok")
        }
    }
    location /rt {
        access_by_lua_block {
            local x = 1
            error("boom")
        }
    }
    location /str {
        access_by_lua '
            local a = 1
            error("in string")
        ';
    }
    location /syntax {
        access_by_lua_block { local x = = 1 }
    }
    location /file {
        access_by_lua_file missing.lua;
    }
    location /set {
        set_by_lua $x 'return nil .. 1';
        return 200 $x;
    }
    location /redir {
        content_by_lua_block { ngx.redirect("/a\r\nb\"\200") }
    }
    location /syntaxstr {
        header_filter_by_lua_block {
            'for end';
        }
        content_by_lua_block { ngx.say("x") }
    }
    location /exitsent {
        content_by_lua_block { ngx.say("x") ngx.exit(404) }
    }
    location /hf {
        content_by_lua_block { ngx.say("x") }
        header_filter_by_lua_block { error("in filter") }
    }
    location /hfwrap {
        return 200;
        header_filter_by_lua_block {
            local co = coroutine.wrap(function()
                error("in wrap")
            end)
            co()
        }
    }
    include sub/inc.conf;
    include OUTSIDE/out.conf;
}`
	// Chunk names show included files relative to the main config's
	// directory, or in full when outside it.
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "out.conf"), []byte("location /out {\n    access_by_lua_block {\n        error(\"outside\")\n    }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf = strings.Replace(conf, "OUTSIDE", outside, 1)
	files := map[string]string{"sub/inc.conf": "location /inc {\n    access_by_lua_block {\n        error(\"included\")\n    }\n}\n"}
	a := startServer(t, "nginx", ServerOptions{HTTP: conf, Files: files})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: conf, Files: files})
	for _, p := range []string{"/log", "/rt", "/str", "/syntax", "/file", "/set", "/inc", "/out", "/redir", "/exitsent", "/hf", "/syntaxstr", "/hfwrap"} {
		raw := "GET " + p + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
		ra, rb := luaAsk(a, luaCase{}, routingRequest{raw: raw}), luaAsk(b, luaCase{}, routingRequest{raw: raw})
		if ra.Status != rb.Status {
			t.Errorf("%s: nginx %d, ngxsockify %d", p, ra.Status, rb.Status)
		}
	}
	lines := func(s *Server) []string {
		var out []string
		deadline := time.Now().Add(2 * time.Second)
		for {
			out = out[:0]
			for _, m := range luaLogRE.FindAllStringSubmatch(s.ErrorLog(), -1) {
				msg := strings.ReplaceAll(m[2], s.Dir, "{{DIR}}")
				msg = strings.ReplaceAll(msg, outside, "{{OUTSIDE}}")
				if m[3] != "" && strings.HasPrefix(m[2], "[lua]") {
					// ngx.log lines carry it on their line (nginx's
					// runtime errors after their stack traceback)
					msg += " (with the request's context)"
				}
				out = append(out, m[1]+" "+msg)
			}
			if len(out) >= 16 || time.Now().After(deadline) {
				return out
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	la, lb := lines(a), lines(b)
	if len(la) < 16 {
		t.Fatalf("nginx logged only %d Lua lines:\n%s", len(la), strings.Join(la, "\n"))
	}
	if diff := cmp.Diff(la, lb); diff != "" {
		t.Errorf("Lua error-log lines differ (-nginx +ngxsockify):\n%s", diff)
	}
}

// TestLuaCorpusScripts runs real scripts from the corpus, unchanged, on
// both servers: foreverHappyYzm's expiring-link check (access_by_lua_file)
// and bomee's HMAC request signature module (require through
// lua_package_path).
func TestLuaCorpusScripts(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join("/work/shared/corpus/c", name))
		if err != nil {
			t.Skipf("corpus: %v", err)
		}
		return string(data)
	}
	files := map[string]string{
		"lua/contrast.lua":         read("foreverhappyyzm-contrast.lua"),
		"lib/signature_verify.lua": read("bomee-signature_verify.lua"),
	}
	conf := `lua_package_path "{{DIR}}/lib/?.lua;;";
server {
    listen 127.0.0.1:{{PORT}};
    location /c/ {
        access_by_lua_file lua/contrast.lua;
        content_by_lua_block { ngx.say("contrast passed") }
    }
    location /s/ {
        access_by_lua_block { require("signature_verify").exec({ v1 = "s3cret" }, true) }
        content_by_lua_block { ngx.say("signature passed") }
    }
}`
	a := startServer(t, "nginx", ServerOptions{HTTP: conf, Files: files})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: conf, Files: files})

	future := time.Now().Unix() + 3600
	contrastSum := md5.Sum([]byte(fmt.Sprintf("secred/c/page%d", future)))
	sign := func(method, uri string, args map[string]string, body string) string {
		keys := make([]string, 0, len(args))
		for k := range args {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		s := method + uri
		for _, k := range keys {
			s += k + "=" + args[k]
		}
		if body != "" {
			sum := md5.Sum([]byte(body))
			s += hex.EncodeToString(sum[:])
		}
		m := hmac.New(sha1.New, []byte("s3cret"))
		m.Write([]byte(s))
		return base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	args := map[string]string{"sign_ts": now, "sign_v": "v1", "x": "1"}
	goodSign := url.QueryEscape(sign("GET", "/s/api", args, ""))
	body := `{"a":1}`
	postSign := url.QueryEscape(sign("POST", "/s/api", args, body))
	req := func(method, target, extra, body string) string {
		return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: localhost\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s", method, target, extra, len(body), body)
	}
	cases := []struct {
		raw  string
		want int
	}{
		// The script compares get_method() ("GET") with ngx.HTTP_GET (2):
		// it refuses everything, on nginx too.
		{req("GET", "/c/page", "", ""), 403},
		{req("GET", "/c/page?t=1&k=x", "", ""), 403},
		{req("POST", "/c/page", "", ""), 403},
		{req("GET", fmt.Sprintf("/c/page?t=%d&k=wrong", future), "", ""), 403},
		{req("GET", fmt.Sprintf("/c/page?t=%d&k=%s", future, hex.EncodeToString(contrastSum[:])), "", ""), 403},
		{req("GET", "/s/api", "", ""), 412},
		{req("GET", "/s/api?x=1", "", ""), 412},
		{req("GET", "/s/api?x=1&sign_ts=1&sign_v=v1&sign=abc", "", ""), 412},
		{req("GET", "/s/api?x=1&sign_ts="+now+"&sign_v=v9&sign=abc", "", ""), 412},
		{req("GET", "/s/api?x=1&sign_ts="+now+"&sign_v=v1&sign=abc", "", ""), 412},
		{req("GET", "/s/api?x=1&sign_ts="+now+"&sign_v=v1&sign="+goodSign, "", ""), 200},
		{req("GET", "/s/api?x=2&sign_ts="+now+"&sign_v=v1&sign="+goodSign, "", ""), 412},
		{req("POST", "/s/api?x=1&sign_ts="+now+"&sign_v=v1&sign="+postSign, "Content-Type: application/json\r\n", body), 200},
		{req("POST", "/s/api?x=1&sign_ts="+now+"&sign_v=v1&sign="+postSign, "Content-Type: application/json\r\n", `{"a":2}`), 412},
	}
	for _, tc := range cases {
		r := routingRequest{raw: tc.raw, show: strings.SplitN(tc.raw, "\r\n", 2)[0]}
		ra, rb := luaAsk(a, luaCase{}, r), luaAsk(b, luaCase{}, r)
		if ra.Status != tc.want {
			t.Errorf("%s: nginx answered %d, want %d (%q)", r.show, ra.Status, tc.want, ra.Body)
		}
		if diff := cmp.Diff(ra, rb); diff != "" {
			t.Errorf("%s: nginx and ngxsockify differ (-nginx +ngxsockify):\n%s", r.show, diff)
		}
	}
}

// TestLuaRequestBodyClientGone: a client that closes before sending the
// whole body makes read_body fail; nginx logs "client prematurely closed
// connection" at info level (not an [error]).
func TestLuaRequestBodyClientGone(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	conf := `server {
 listen 127.0.0.1:{{PORT}};
 location /body {
  content_by_lua_block { ngx.req.read_body() ngx.say("read") }
 }
}`
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: conf})
		c, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /body HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nonly part")
		time.Sleep(100 * time.Millisecond)
		c.Close()
		deadline := time.Now().Add(3 * time.Second)
		for !strings.Contains(s.ErrorLog(), "client prematurely closed connection") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		log := s.ErrorLog()
		if !strings.Contains(log, "[info]") || !strings.Contains(log, "client prematurely closed connection") {
			t.Errorf("%s: no info line for the client gone:\n%s", kind, log)
		}
		if strings.Contains(log, "[error]") {
			t.Errorf("%s: an [error] line for the client gone:\n%s", kind, log)
		}
	}
}

// TestLuaErrorTraceback compares the traceback lines nginx logs after a
// runtime error ("stack traceback:", then for an entry thread one
// "coroutine N:" per coroutine the error went up through by
// coroutine.wrap) on both servers; the frames themselves differ
// (LuaJIT's against gopher-lua's) and are not compared.
func TestLuaErrorTraceback(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	conf := `server {
    listen 127.0.0.1:{{PORT}};
    location /entry {
        content_by_lua_block { unknown.unknown = 1 }
    }
    location /wrap {
        content_by_lua_block {
            local co = coroutine.wrap(function() error("in wrap") end)
            co()
        }
    }
    location /wrap3 {
        content_by_lua_block {
            local f = function(cr) coroutine.resume(cr) end
            local l1 = coroutine.wrap(f)
            local l2 = coroutine.wrap(function() end)
            local l3 = coroutine.wrap(function() l1(l2) end)
            l3()
        }
    }
    location /caught {
        content_by_lua_block {
            pcall(coroutine.wrap(function() error("caught") end))
            error("after")
        }
    }
    location /caught2 {
        content_by_lua_block {
            pcall(coroutine.wrap(function() coroutine.wrap(function() error("caught") end)() end))
            error("after")
        }
    }
    location /caughtok {
        content_by_lua_block {
            pcall(coroutine.wrap(function() error("caught") end))
            coroutine.wrap(function() end)()
            error("after")
        }
    }
    location /filter {
        return 200;
        header_filter_by_lua_block {
            local co = coroutine.wrap(function() error("in filter") end)
            co()
        }
    }
    location /resumed {
        content_by_lua_block {
            coroutine.resume(coroutine.create(function() error("x") end))
            error("after")
        }
    }
}`
	traceRE := regexp.MustCompile(`(?m)^(stack traceback:|coroutine \d+:)$`)
	got := map[string][]string{}
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: conf})
		for _, p := range []string{"/entry", "/wrap", "/wrap3", "/caught", "/caught2", "/caughtok", "/resumed", "/filter"} {
			raw := "GET " + p + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
			if r := luaAsk(s, luaCase{}, routingRequest{raw: raw}); r.Status != 500 && p != "/filter" {
				t.Errorf("%s %s: status %d, want 500", kind, p, r.Status)
			}
			var lines []string
			deadline := time.Now().Add(2 * time.Second)
			for {
				log := s.ErrorLog()
				if i := strings.LastIndex(log, "GET "+p+" "); i >= 0 {
					lines = traceRE.FindAllString(log[:i][strings.LastIndex(log[:i], "[error]"):], -1)
					break
				}
				if time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			got[kind] = append(got[kind], p+": "+strings.Join(lines, " "))
		}
	}
	if diff := cmp.Diff(got["nginx"], got["ngxsockify"]); diff != "" {
		t.Errorf("traceback lines differ (-nginx +ngxsockify):\n%s", diff)
	}
}
