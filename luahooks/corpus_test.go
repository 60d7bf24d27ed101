package luahooks

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const corpusDir = "../../shared/corpus" // shared/ sits beside the repository, in CI too

// corpusBroken are files SOURCES.md notes as broken upstream, with the
// error LuaJIT 2.1 reports for them (luajit -e "loadfile(...)").
var corpusBroken = map[string]string{
	"skylothar-jwt-guard.lua": ":15: unexpected symbol near '='",
}

// inlineHook is Lua code found in a config file.
type inlineHook struct {
	directive string
	line      int
	code      string
}

var luaDirective = regexp.MustCompile(`\b([a-z_]+_by_lua(?:_block)?)\b`)

// extractHooks finds *_by_lua_block { ... } bodies (braces matched outside
// Lua strings and comments, as lua-nginx-module's block lexer does) and
// *_by_lua '...' / "..." arguments (nginx quote rules) in config text.
func extractHooks(t *testing.T, text string) []inlineHook {
	t.Helper()
	var hooks []inlineHook
	for i := 0; i < len(text); {
		// Skip nginx comments outside hooks.
		if text[i] == '#' {
			for i < len(text) && text[i] != '\n' {
				i++
			}
			continue
		}
		loc := luaDirective.FindStringSubmatchIndex(text[i:])
		if loc == nil {
			break
		}
		if c := strings.LastIndexByte(text[:i+loc[0]], '\n'); strings.Contains(text[c+1:i+loc[0]], "#") {
			i += loc[1]
			continue
		}
		name := text[i+loc[2] : i+loc[3]]
		j := i + loc[1]
		line := strings.Count(text[:i+loc[0]], "\n") + 1
		for j < len(text) && (text[j] == ' ' || text[j] == '\t' || text[j] == '\n' || text[j] == '\r') {
			j++
		}
		if strings.HasSuffix(name, "_block") {
			if j >= len(text) || text[j] != '{' {
				i = j
				continue
			}
			end := luaBlockEnd(text, j+1)
			if end < 0 {
				t.Fatalf("unterminated %s at line %d", name, line)
			}
			hooks = append(hooks, inlineHook{name, line, text[j+1 : end]})
			i = end + 1
			continue
		}
		if name == "set_by_lua" { // set_by_lua $var 'code' ...
			for j < len(text) && text[j] != ' ' && text[j] != '\t' && text[j] != '\n' {
				j++
			}
			for j < len(text) && (text[j] == ' ' || text[j] == '\t' || text[j] == '\n') {
				j++
			}
		}
		if j < len(text) && (text[j] == '\'' || text[j] == '"') {
			q := text[j]
			var b strings.Builder
			k := j + 1
			for ; k < len(text) && text[k] != q; k++ {
				if text[k] == '\\' && k+1 < len(text) && (text[k+1] == q || text[k+1] == '\\') {
					k++
				}
				b.WriteByte(text[k])
			}
			hooks = append(hooks, inlineHook{name, line, b.String()})
			i = k + 1
			continue
		}
		i = j
	}
	return hooks
}

// luaBlockEnd returns the index of the '}' closing a block that starts at
// i, skipping Lua strings, long strings and comments.
func luaBlockEnd(s string, i int) int {
	depth := 1
	longClose := func(k int) (string, int) { // at '[', returns closer and start of content
		m := k + 1
		for m < len(s) && s[m] == '=' {
			m++
		}
		if m < len(s) && s[m] == '[' {
			return "]" + strings.Repeat("=", m-k-1) + "]", m + 1
		}
		return "", -1
	}
	for i < len(s) {
		c := s[i]
		switch {
		case c == '-' && strings.HasPrefix(s[i:], "--"):
			if i+2 < len(s) && s[i+2] == '[' {
				if closer, start := longClose(i + 2); start >= 0 {
					e := strings.Index(s[start:], closer)
					if e < 0 {
						return -1
					}
					i = start + e + len(closer)
					continue
				}
			}
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '[':
			if closer, start := longClose(i); start >= 0 {
				e := strings.Index(s[start:], closer)
				if e < 0 {
					return -1
				}
				i = start + e + len(closer)
				continue
			}
			i++
		case c == '"' || c == '\'':
			i++
			for i < len(s) && s[i] != c {
				if s[i] == '\\' {
					i++
				}
				i++
			}
			i++
		case c == '{':
			depth++
			i++
		case c == '}':
			depth--
			if depth == 0 {
				return i
			}
			i++
		default:
			i++
		}
	}
	return -1
}

// TestCorpusCompiles loads every .lua file and every inline hook of the
// corpus; the files noted as broken upstream must fail like LuaJIT.
func TestCorpusCompiles(t *testing.T) {
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("corpus not available: %v", err)
	}
	rt, _ := newTestRuntime(t, Options{})
	var files []string
	err := filepath.WalkDir(corpusDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".lua") || strings.HasSuffix(p, ".conf")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	nLua, nHooks := 0, 0
	for _, p := range files {
		base := filepath.Base(p)
		if strings.HasSuffix(p, ".lua") {
			nLua++
			c, err := rt.CompileFile(PhaseAccess, p)
			if want, broken := corpusBroken[base]; broken {
				if err == nil || !strings.Contains(err.Error(), p+want) {
					t.Errorf("%s: error %v, want one containing %q", base, err, p+want)
				}
				if out := rt.Run(t.Context(), c, newReq("/")); out.Status != 500 || out.Err == nil {
					t.Errorf("%s: running a broken file gave %+v", base, out)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", base, err)
			}
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range extractHooks(t, string(data)) {
			nHooks++
			phase := map[string]Phase{"set_by_lua": PhaseSet, "rewrite_by_lua": PhaseRewrite, "access_by_lua": PhaseAccess,
				"content_by_lua": PhaseContent, "header_filter_by_lua": PhaseHeaderFilter, "body_filter_by_lua": PhaseBodyFilter,
				"log_by_lua": PhaseLog, "init_by_lua": PhaseInit, "init_worker_by_lua": PhaseInitWorker,
				"ssl_certificate_by_lua": PhaseAccess, "balancer_by_lua": PhaseAccess}[strings.TrimSuffix(h.directive, "_block")]
			if _, err := rt.CompileInline(phase, h.code, p, h.line); err != nil {
				t.Errorf("%s:%d %s: %v", base, h.line, h.directive, err)
			}
		}
	}
	if nLua < 10 || nHooks < 10 {
		t.Errorf("found only %d Lua files and %d inline hooks", nLua, nHooks)
	}
	t.Logf("%d Lua files, %d inline hooks", nLua, nHooks)
}

func TestCompileFileErrors(t *testing.T) {
	dir := t.TempDir()
	rt, _ := newTestRuntime(t, Options{Prefix: dir})
	c, err := rt.CompileFile(PhaseAccess, "lua/missing.lua")
	want := `failed to load external Lua file "` + dir + `/lua/missing.lua": cannot open ` + dir + `/lua/missing.lua: No such file or directory`
	if err == nil || err.Error() != want || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %v, want %q wrapping fs.ErrNotExist", err, want)
	}
	if out := rt.Run(t.Context(), c, newReq("/")); out.Action != ErrorPage || out.Status != 404 {
		t.Errorf("missing file: %+v", out)
	}
	// Created after load: nginx reads the file at the first request.
	if err := os.MkdirAll(filepath.Join(dir, "lua"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lua/missing.lua"), []byte(`ngx.say("now here")`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := rt.Run(t.Context(), c, newReq("/")); string(out.Body) != "now here\n" {
		t.Errorf("file created later: %+v", out)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.lua"), []byte("local x = = 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = rt.CompileFile(PhaseAccess, "bad.lua")
	want = `failed to load external Lua file "` + dir + `/bad.lua": ` + dir + `/bad.lua:1: unexpected symbol near '='`
	if err == nil || err.Error() != want {
		t.Errorf("syntax error %v, want %q", err, want)
	}
	if out := rt.Run(t.Context(), c, newReq("/")); out.Status != 500 || out.Err == nil {
		t.Errorf("bad file: %+v", out)
	}
}

func TestCodeCacheOff(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "h.lua")
	if err := os.WriteFile(p, []byte(`ngx.print("v1")`), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, err := New(Options{CodeCache: false})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	c, err := rt.CompileFile(PhaseContent, p)
	if err != nil {
		t.Fatal(err)
	}
	if out := rt.Run(t.Context(), c, newReq("/")); string(out.Body) != "v1" {
		t.Fatalf("got %q", out.Body)
	}
	if err := os.WriteFile(p, []byte(`ngx.print("v2")`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := rt.Run(t.Context(), c, newReq("/")); string(out.Body) != "v2" {
		t.Errorf("lua_code_cache off: got %q after the file changed", out.Body)
	}
}

// TestChunkNames: names as lua-nginx-module 0.10.23 prints them (measured
// with -c /tmp/lo/d/conf/nginx.conf and includes inside and outside its
// directory).
func TestChunkNames(t *testing.T) {
	long := "/srv/very/long/path/to/some/deeply/nested/configuration/directory/site.conf"
	cases := []struct {
		prefix, file string
		line         int
		want         string
	}{
		{"/tmp/lo/d/conf", "/tmp/lo/d/conf/nginx.conf", 4, "access_by_lua(nginx.conf:4)"},
		{"/tmp/lo/d/conf/", "/tmp/lo/d/conf/sub/x.conf", 2, "access_by_lua(sub/x.conf:2)"},
		{"/tmp/lo/d/conf/", "/tmp/lo/inc/my-site.conf", 2, "access_by_lua(/tmp/lo/inc/my-site.conf:2)"},
		{"", "/etc/nginx/nginx.conf", 25, "access_by_lua(nginx.conf:25)"},
		{"/etc/nginx/", long, 7, "access_by_lua(..." + long[len(long)-39:] + ":7)"},
		{"/x/", "/tmp/TestLuaErrorLog2825836940/001/out.conf", 2, "access_by_lua(.../TestLuaErrorLog2825836940/001/out.conf:2)"},
	}
	for _, tc := range cases {
		if got := inlineChunkName(PhaseAccess, tc.prefix, tc.file, tc.line); got != tc.want {
			t.Errorf("%s in %q: %q, want %q", tc.file, tc.prefix, got, tc.want)
		}
	}
	if got, want := shortSrc("/"+strings.Repeat("b", 70)+"END.lua"), "..."+strings.Repeat("b", 49)+"END.lua"; got != want {
		t.Errorf("shortSrc: %q, want %q (LuaJIT)", got, want)
	}
}
