package nginxconf

import (
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// dump renders a tree compactly: one directive per line, indented, args
// quoted with %q, and the start-end lines.
func dump(dirs []*Directive, indent string) string {
	var b strings.Builder
	for _, d := range dirs {
		b.WriteString(indent + d.Name)
		for _, a := range d.Args {
			b.WriteString(" " + quoteArg(a))
		}
		b.WriteString(" @" + strconv.Itoa(d.Line) + "-" + strconv.Itoa(d.EndLine))
		if d.IsBlock && !strings.HasSuffix(d.Name, "_by_lua_block") {
			b.WriteString(" {\n" + dump(d.Block, indent+"  ") + indent + "}")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func quoteArg(s string) string {
	q := strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\t", `\t`, "\r", `\r`, `"`, `\"`).Replace(s)
	return `"` + q + `"`
}

// parseErr parses text as /t/nginx.conf and returns the error text ("" for none).
func parseErr(t *testing.T, text string) (string, *Parsed) {
	t.Helper()
	p, err := ParseString("/t/nginx.conf", text, ParseOptions{})
	if err == nil {
		return "", p
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error of type %T: %v", err, err)
	}
	return err.Error(), p
}

func TestParseTree(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"simple", "user a;\nevents {}\n", "user \"a\" @1-1\nevents @2-2 {\n}\n"},
		{"escapes in quotes", `pid "a\"b\'c\\d\te\nf\qg";`, `pid "a\"b'c\\d\te\nf\\qg" @1-1` + "\n"},
		{"escapes unquoted", `pid a\tb\"c\\d\qe;`, `pid "a\tb\"c\\d\\qe" @1-1` + "\n"},
		{"backslash space is one word", `pid a\ b;`, `pid "a\\ b" @1-1` + "\n"},
		{"backtick is ordinary", "pid a`b;", "pid \"a`b\" @1-1\n"},
		{"hash inside quotes", `user "a#b" 'c#d';`, `user "a#b" "c#d" @1-1` + "\n"},
		{"hash inside word", `pid a#b;`, `pid "a#b" @1-1` + "\n"},
		{"brace inside word", `pid a}b;`, `pid "a}b" @1-1` + "\n"},
		{"variable brace", `pid ${a}b;`, `pid "${a}b" @1-1` + "\n"},
		{"multi-line directive", "pid\n  a\n  ;", `pid "a" @1-3` + "\n"},
		{"comment between words", "pid a # x ; y\n ;", `pid "a" @1-2` + "\n"},
		{"quote then paren", "http { server { if ($a = \"b\") { return 403; } } }",
			"http @1-1 {\n  server @1-1 {\n    if \"$a\" \"=\" \"b\" @1-1 {\n      return \"403\" @1-1\n    }\n  }\n}\n"},
		{"if parens glued", "http { server { location / { if ($x) { } } } }",
			"http @1-1 {\n  server @1-1 {\n    location \"/\" @1-1 {\n      if \"$x\" @1-1 {\n      }\n    }\n  }\n}\n"},
		{"lua block verbatim", "http { init_by_lua_block {\n a = #t -- }\n s = \"\\\" }\" .. '{' .. [[ } ]] .. [==[ ]] } ]==]\n --[[ } ]]\n}\n}",
			"http @1-1 {\n  init_by_lua_block \"\\n a = #t -- }\\n s = \\\"\\\\\\\" }\\\" .. '{' .. [[ } ]] .. [==[ ]] } ]==]\\n --[[ } ]]\\n\" @1-5\n}\n"},
		{"lua nested braces", "http { init_by_lua_block { t = { a = { } } } }",
			"http @1-1 {\n  init_by_lua_block \" t = { a = { } } \" @1-1\n}\n"},
		{"map body", "http { map $a $b { default 0; ~x 1; } }",
			"http @1-1 {\n  map \"$a\" \"$b\" @1-1 {\n    default \"0\" @1-1\n    ~x \"1\" @1-1\n  }\n}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg, p := parseErr(t, tt.in)
			if msg != "" {
				t.Fatalf("unexpected error: %s", msg)
			}
			if diff := cmp.Diff(tt.want, dump(p.Directives, "")); diff != "" {
				t.Errorf("tree (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"quote then word", `pid "a"b;`, `unexpected "b" in /t/nginx.conf:1`},
		{"unexpected close", "pid a;\n}", `unexpected "}" in /t/nginx.conf:2`},
		{"close after words", "pid a }", `unexpected "}" in /t/nginx.conf:1`},
		{"eof in directive", "pid a", `unexpected end of file, expecting ";" or "}" in /t/nginx.conf:1`},
		{"eof in directive newline", "pid a\n\n", `unexpected end of file, expecting ";" or "}" in /t/nginx.conf:3`},
		{"eof in block", "http {\n", `unexpected end of file, expecting "}" in /t/nginx.conf:2`},
		{"lone semicolon", "pid a;;", `unexpected ";" in /t/nginx.conf:1`},
		{"unknown", "foo bar;", `unknown directive "foo" in /t/nginx.conf:1`},
		{"not allowed", "http {\n root /x;\n location / { }\n}", `"location" directive is not allowed here in /t/nginx.conf:3`},
		{"arity", "pid;", `invalid number of arguments in "pid" directive in /t/nginx.conf:1`},
		{"arity end line", "pid\n a\n b\n;", `invalid number of arguments in "pid" directive in /t/nginx.conf:4`},
		{"flag", "http { absolute_redirect maybe; }", `invalid value "maybe" in "absolute_redirect" directive, it must be "on" or "off" in /t/nginx.conf:1`},
		{"not terminated", "pid a {", `directive "pid" is not terminated by ";" in /t/nginx.conf:1`},
		{"no opening", "http;", `directive "http" has no opening "{" in /t/nginx.conf:1`},
		{"duplicate root", "http { server { location / { root /a;\n root /b; } } }", `"root" directive is duplicate in /t/nginx.conf:2`},
		{"root then alias", "http { server { location / { root /a;\n alias /b; } } }", `"alias" directive is duplicate, "root" directive was specified earlier in /t/nginx.conf:2`},
		{"two access_by_lua", "http { server { location / { access_by_lua_block { a() }\n access_by_lua_block {\n b() } } } }", `is duplicate in /t/nginx.conf:3`},
		{"access_by_lua then string", "http { server { location / { access_by_lua_block { a() }\n access_by_lua 'b()'; } } }", `"access_by_lua" directive is duplicate in /t/nginx.conf:2`},
		{"lua block arity", "http { init_by_lua_block x { } }", `invalid number of arguments in "init_by_lua_block" directive in /t/nginx.conf:1`},
		{"lua eof", "http { init_by_lua_block {\n a = 1\n", `unexpected end of file, expecting terminating characters for lua code block in /t/nginx.conf:1`},
		{"lua long bracket", "http { init_by_lua_block {\n a = [==[ } ]] \n}}", `Lua code block missing the closing long bracket "]==]", the inlined Lua code may be too long in /t/nginx.conf:2`},
		{"lua string newline", "http { init_by_lua_block { a = \"}\n\" } }", `unexpected end of file, expecting ";" or "}" in /t/nginx.conf:2`},
		{"if without paren", "http { server { if $a { } } }", `invalid condition "$a" in /t/nginx.conf:1`},
		{"too long word", "pid \"" + strings.Repeat("a", 5000) + "\";", `too long parameter, probably missing terminating """ character in /t/nginx.conf:1`},
		{"too long comment", "#" + strings.Repeat(" ", 5000) + "\npid a;", `too long parameter "#         ..." started in /t/nginx.conf:1`},
		{"refused", "http { server { ssl_conf_command a b; } }", `"ssl_conf_command" directive is not supported by ngxsockify (OpenSSL configuration commands) in /t/nginx.conf:1`},
		{"missing include", "include nope.conf;", `open() "/t/nope.conf" failed (2: No such file or directory) in /t/nginx.conf:1`},
		{"NUL ends a printed word", "fo\x00o bar;", `unknown directive "fo" in /t/nginx.conf:1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, _ := parseErr(t, tt.in)
			if got != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}

// syntaxDir holds the differential syntax cases shared with the black-box
// suite in ../test (see ../test/syntax_test.go for the format).
const syntaxDir = "../test/testdata/syntax"

// TestSyntaxCasesParse runs the parse-layer cases of the differential
// syntax suite through Parse and compares with the outcome recorded from
// real nginx in each case's "# expect:" line. Compile-layer cases must
// parse without error (their error is the compiler's to find).
func TestSyntaxCasesParse(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(syntaxDir)
	if err != nil {
		t.Skipf("no syntax cases: %v", err)
	}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".conf")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			copyCase(t, filepath.Join(syntaxDir, e.Name()), dir, e.IsDir())
			main := filepath.Join(dir, "nginx.conf")
			text, err := os.ReadFile(main)
			if err != nil {
				t.Fatal(err)
			}
			expect, layer, ours := caseHeader(string(text))
			_, perr := Parse(main, ParseOptions{Prefix: dir + "/"})
			got := "ok"
			if perr != nil {
				got = strings.ReplaceAll(perr.Error(), dir+"/", "")
				got = strings.ReplaceAll(got, ":18080", ":{{PORT}}")
			}
			switch {
			case layer == "compile":
				expect = "ok"
			case ours != "":
				expect = ours
			}
			if got != expect {
				t.Errorf("\n got: %s\nwant: %s", got, expect)
			}
		})
	}
}

// caseHeader reads the "# expect:", "# layer:" and "# ngxsockify:" lines
// of a case.
func caseHeader(text string) (expect, layer, ours string) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "# expect: "); ok {
			expect = v
		}
		if v, ok := strings.CutPrefix(line, "# layer: "); ok {
			layer = v
		}
		if v, ok := strings.CutPrefix(line, "# ngxsockify: "); ok {
			ours = v
		}
	}
	return expect, layer, ours
}

// copyCase copies a case (one file, or a directory) into dir as
// dir/nginx.conf (+ its other files), expanding {{DIR}} and {{PORT}}.
func copyCase(t *testing.T, src, dir string, isDir bool) {
	t.Helper()
	expand := func(b []byte) []byte {
		s := strings.ReplaceAll(string(b), "{{DIR}}", dir)
		return []byte(strings.ReplaceAll(s, "{{PORT}}", "18080"))
	}
	if !isDir {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "nginx.conf"), string(expand(data)))
		return
	}
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, expand(data), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestParseGlobals(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"worker_processes 2; daemon off;", ""},
		{"user x", `unexpected end of parameter, expecting ";" in command line`},
		{"http {}", `block directives are not supported in -g option in command line`},
		{"foo x;", `unknown directive "foo" in command line`},
		{"root /x;", `"root" directive is not allowed here in command line`},
	}
	for _, tt := range tests {
		p, err := ParseGlobals(tt.in)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("ParseGlobals(%q) error %q, want %q", tt.in, got, tt.want)
		}
		if err == nil && len(p.Files) != 0 {
			t.Errorf("ParseGlobals(%q) lists files %v", tt.in, p.Files)
		}
	}
}

func TestParseCollectAll(t *testing.T) {
	t.Parallel()
	text := "events {}\nhttp {\n  frob 1;\n  server {\n    listen 80;\n    location / {\n      root /a;\n      root /b;\n      internal x;\n      if (x { }\n" +
		"      access_by_lua_block { a() }\n      access_by_lua_block { b() }\n      access_by_lua_block { c() }\n      root /c;\n" +
		"    }\n  }\n  nope {\n    inner;\n  }\n}\nworker_processes 1;\n"
	_, err := ParseString("/t/nginx.conf", text, ParseOptions{CollectAll: true})
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %T %v, want Errors", err, err)
	}
	want := []string{
		`unknown directive "frob" in /t/nginx.conf:3`,
		`"root" directive is duplicate in /t/nginx.conf:8`,
		`invalid number of arguments in "internal" directive in /t/nginx.conf:9`,
		`invalid condition "x" in /t/nginx.conf:10`,
		`is duplicate in /t/nginx.conf:12`,
		`is duplicate in /t/nginx.conf:13`,
		`"root" directive is duplicate in /t/nginx.conf:14`,
		`unknown directive "nope" in /t/nginx.conf:17`,
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	// Without CollectAll the first error stops the parse.
	_, err = ParseString("/t/nginx.conf", text, ParseOptions{})
	var one *Error
	if !errors.As(err, &one) || one.Error() != want[0] {
		t.Errorf("first error = %v, want %s", err, want[0])
	}
}

func TestParseIncludeSplicesAndFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755))
	writeFile(t, filepath.Join(dir, "conf.d", "b.conf"), "location /b { }\n")
	writeFile(t, filepath.Join(dir, "conf.d", "a.conf"), "location /a {\n  include snip.conf;\n}\n")
	writeFile(t, filepath.Join(dir, "conf.d", ".c.conf"), "location /c { }\n")
	writeFile(t, filepath.Join(dir, "snip.conf"), "return 204;\n")
	writeFile(t, filepath.Join(dir, "self.conf"), "include self.conf;\n")
	main := filepath.Join(dir, "nginx.conf")
	writeFile(t, main, "events {}\nhttp {\n  server {\n    include conf.d/*.conf;\n  }\n}\n")
	p, err := Parse(main, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := p.Directives[1].Block[0]
	var got []string
	for _, d := range srv.Block {
		got = append(got, d.Name+" "+strings.Join(d.Args, " ")+" "+strings.TrimPrefix(d.File, dir+"/")+":"+strconv.Itoa(d.Line))
	}
	want := []string{"location /a conf.d/a.conf:1", "location /b conf.d/b.conf:1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("server block (-want +got):\n%s", diff)
	}
	ret := srv.Block[0].Block[0]
	if ret.Name != "return" || ret.File != dir+"/snip.conf" || ret.Line != 1 {
		t.Errorf("spliced include = %s in %s:%d", ret.Name, ret.File, ret.Line)
	}
	var files []string
	for _, f := range p.Files {
		files = append(files, strings.TrimPrefix(f.Path, dir+"/"))
	}
	if diff := cmp.Diff([]string{"nginx.conf", "conf.d/a.conf", "snip.conf", "conf.d/b.conf"}, files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}

	// A cycle is an error, not a hang.
	writeFile(t, main, "events {}\ninclude self.conf;\n")
	_, err = Parse(main, ParseOptions{})
	if err == nil || !strings.Contains(err.Error(), "include cycle") {
		t.Errorf("cycle: error %v", err)
	}
}

// CorpusDir holds the real-world configs of the development corpus (see
// its SOURCES.md): shared/ sits beside the repository, in development and
// in CI alike.
const CorpusDir = "../../shared/corpus"

// corpusKinds says in which context each corpus config belongs: "main"
// files are complete nginx.conf files; "http", "server" and "location"
// files are fragments included at that level. Files not listed are "http"
// fragments; .lua files are not configs.
var corpusKinds = map[string]string{
	"c/auth0-nginx-jwt-proxy.conf":                     "main",
	"d/h5bp-nginx.conf":                                "main",
	"d/lua-resty-auto-ssl-readme-nginx.conf":           "main",
	"d/nextcloud-docker-fpm-nginx.conf":                "main",
	"d/nginx-proxy-manager-nginx.conf":                 "main",
	"d/orange-gateway-nginx.conf":                      "main",
	"d/perusio-drupal-main-nginx.conf":                 "main",
	"d/sentry-self-hosted-nginx.conf":                  "main",
	"a/jlesage-baseimage-gui-vnc-include.conf":         "server",
	"a/tg123-readme-dynamic-upstream-md5.conf":         "server",
	"b/jlesage-baseimage-gui-auth-include.conf":        "server",
	"c/lua-nginx-module-readme-access-subrequest.conf": "server",
	"b/linuxserver-swag-proxy-include.conf":            "location",
}

// CorpusConfigs lists the corpus configs (relative names like
// "a/x.conf"), sorted; none when the corpus is absent.
func CorpusConfigs() []string {
	files, _ := filepath.Glob(filepath.Join(CorpusDir, "*", "*.conf"))
	var out []string
	for _, f := range files {
		rel, _ := filepath.Rel(CorpusDir, f)
		out = append(out, rel)
	}
	sort.Strings(out)
	return out
}

var includeLine = regexp.MustCompile(`(?m)^(\s*include\s+)(\S+?)(\s*;)`)

// CorpusMain writes a loadable main config for the corpus file rel into a
// temporary directory and returns its path. A fragment is copied as is and
// included from a wrapper at the level it belongs to (so messages about it
// name the fragment and its own line numbers). Its include directives
// point into the directory (absolute paths are re-rooted there), and every
// plain (non-glob) included file that does not exist is created empty, so
// the config reads without the rest of its original machine.
func CorpusMain(tb testing.TB, rel string) string {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(CorpusDir, rel))
	if err != nil {
		tb.Skipf("corpus not available: %v", err)
	}
	dir := tb.TempDir()
	text := includeLine.ReplaceAllStringFunc(string(data), func(m string) string {
		sub := includeLine.FindStringSubmatch(m)
		arg := strings.Trim(sub[2], `"'`)
		if strings.HasPrefix(arg, "/") {
			arg = dir + arg
		}
		if !strings.ContainsAny(arg, "*?[") {
			path := arg
			if !strings.HasPrefix(path, "/") {
				path = filepath.Join(dir, path)
			}
			if _, err := os.Stat(path); err != nil {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					tb.Fatal(err)
				}
				if err := os.WriteFile(path, nil, 0o644); err != nil {
					tb.Fatal(err)
				}
			}
		}
		return sub[1] + arg + sub[3]
	})
	kind := corpusKinds[rel]
	if kind == "" {
		kind = "http"
	}
	main := filepath.Join(dir, "nginx.conf")
	if kind == "main" {
		writeFile(tb, main, text)
		return main
	}
	frag := filepath.Join(dir, filepath.Base(rel))
	writeFile(tb, frag, text)
	var wrapper string
	switch kind {
	case "http":
		wrapper = "events {}\nhttp {\n    include " + frag + ";\n}\n"
	case "server":
		wrapper = "events {}\nhttp {\n    server {\n        listen 127.0.0.1:8080;\n        include " + frag + ";\n    }\n}\n"
	case "location":
		wrapper = "events {}\nhttp {\n    server {\n        listen 127.0.0.1:8080;\n        location / {\n            include " + frag + ";\n        }\n    }\n}\n"
	}
	writeFile(tb, main, wrapper)
	return main
}

func writeFile(tb testing.TB, path, text string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// corpusErrors are the corpus files ngxsockify refuses on purpose.
// (none since ssl_certificate_by_lua_block runs: lua-resty-auto-ssl's
// README config loads).
var corpusErrors = map[string]string{}

func TestCorpusParses(t *testing.T) {
	t.Parallel()
	files := CorpusConfigs()
	if len(files) == 0 {
		t.Skip("corpus not available")
	}
	for _, rel := range files {
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			main := CorpusMain(t, rel)
			// IgnoreStream: a stream{} block (nginx-proxy-manager's)
			// would otherwise end the parse before the rest is checked.
			p, err := Parse(main, ParseOptions{IgnoreStream: true})
			want := strings.ReplaceAll(corpusErrors[rel], "{{DIR}}", filepath.Dir(main))
			if want == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if len(p.Directives) == 0 {
					t.Fatal("no directives")
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("Parse error %v, want %s...", err, want)
			}
		})
	}
}

func TestCorpusWarningsDebug(t *testing.T) {
	if os.Getenv("CORPUS_DEBUG") == "" {
		t.Skip("set CORPUS_DEBUG=1 to print warnings")
	}
	for _, rel := range CorpusConfigs() {
		main := CorpusMain(t, rel)
		p, err := Parse(main, ParseOptions{})
		t.Logf("== %s: err=%v", rel, err)
		if p != nil {
			for _, w := range p.Warnings {
				t.Logf("   %s", strings.ReplaceAll(w.String(), filepath.Dir(main), ""))
			}
		}
	}
}

// seedCorpus adds the corpus configs (and Lua files wrapped in a block) to f.
func seedCorpus(f *testing.F, lua bool) {
	files, _ := filepath.Glob(filepath.Join(CorpusDir, "*", "*"))
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil || len(data) > 64<<10 {
			continue
		}
		switch {
		case strings.HasSuffix(path, ".conf"):
			f.Add(string(data))
		case lua && strings.HasSuffix(path, ".lua"):
			f.Add("http { init_by_lua_block {\n" + string(data) + "\n} }\n")
		}
	}
}

// parseBounded parses text and fails the fuzz run if that takes too long.
func parseBounded(t *testing.T, text string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		p, err := ParseString("/fuzz/nginx.conf", text, ParseOptions{CollectAll: true})
		if err == nil && p == nil {
			t.Error("nil result without error")
		}
		// Collecting errors must not change the first one.
		_, first := ParseString("/fuzz/nginx.conf", text, ParseOptions{})
		var all Errors
		switch {
		case (first == nil) != (err == nil):
			t.Errorf("CollectAll error %v, first error %v", err, first)
		case errors.As(err, &all):
			if all[0].Error() != first.Error() {
				t.Errorf("CollectAll starts with %v, first error %v", all[0], first)
			}
		case err != nil && err.Error() != first.Error():
			t.Errorf("CollectAll error %v, first error %v", err, first)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("Parse did not finish within 5s on %q", text)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"events {}\nhttp { server { listen 80; location / { return 200 \"a\\\"b\"; } } }",
		"http { map $a $b { default 0; include x; } }",
		`pid "a"b;`, "pid a\\ b;", "http { if ($a ~ \"x\") { } }", "}", "http {",
		"pid '${x}';",
	} {
		f.Add(s)
	}
	seedCorpus(f, false)
	f.Fuzz(func(t *testing.T, text string) {
		if strings.Contains(text, "include") {
			t.Skip("reads files outside the input")
		}
		parseBounded(t, text)
	})
}

// parseLayerMessage reports nginx messages that the parse layer must
// produce itself (the rest come from directive handlers: the compiler's).
func parseLayerMessage(msg string) bool {
	if strings.HasPrefix(msg, "open() ") && strings.Contains(msg, `.log" failed`) {
		return false // a log file opened by its directive: compile layer
	}
	for _, p := range []string{"unexpected ", "unknown directive ", "invalid number of arguments in ",
		"too long ", "Lua code block ", "directive \"", "invalid condition ", "open() "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	if strings.HasSuffix(strings.SplitN(msg, " in ", 2)[0], "\" in condition") || strings.Contains(msg, " in condition in ") {
		return false // the if handler: compile layer
	}
	return strings.Contains(msg, " directive is not allowed here") ||
		strings.Contains(msg, "is duplicate") ||
		strings.Contains(msg, `it must be "on" or "off"`)
}

// errLine extracts the line number from "... in file:N".
func errLine(msg string) int {
	i := strings.LastIndexByte(msg, ':')
	if i < 0 {
		return 0
	}
	n, _ := strconv.Atoi(msg[i+1:])
	return n
}

// TestRandomDifferential mutates the syntax cases at random and compares
// Parse with nginx -t on each mutant. It runs NGX_DIFF_N mutants (default
// 0: skipped), seeded by NGX_DIFF_SEED.
func TestRandomDifferential(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("NGX_DIFF_N"))
	if n == 0 {
		t.Skip("set NGX_DIFF_N to run")
	}
	nginx := nginxOracle(t)
	seed, _ := strconv.ParseInt(os.Getenv("NGX_DIFF_SEED"), 10, 64)
	rng := rand.New(rand.NewSource(seed))
	files, _ := filepath.Glob(filepath.Join(syntaxDir, "*.conf"))
	var seeds []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err == nil && !strings.Contains(string(data), "# layer: deviation") {
			seeds = append(seeds, string(data))
		}
	}
	alphabet := []string{"{", "}", ";", "\"", "'", "\\", "#", "$", " ", "\n", "(", ")", "[[", "]]", "--", "x", "${", "root /a;", "location / {", "access_by_lua_block {", "if (", "}\n", "\t", "\r", "\x00", "include x.conf;",
		strings.Repeat("y", 2000), "# " + strings.Repeat("z", 2500) + "\n", "\"" + strings.Repeat("q ", 1200)}
	bad := 0
	for i := 0; i < n && bad < 10; i++ {
		// Mutate only after the header: with the Lua directives before
		// load_module nginx does not know them yet, a mistake no
		// OpenResty-style config (no load_module at all) can make.
		whole := seeds[rng.Intn(len(seeds))]
		cut := strings.Index(whole, "events {}\n") + len("events {}\n")
		head, text := whole[:cut], whole[cut:]
		for m := rng.Intn(3) + 1; m > 0; m-- {
			pos := rng.Intn(len(text) + 1)
			switch rng.Intn(3) {
			case 0: // insert
				text = text[:pos] + alphabet[rng.Intn(len(alphabet))] + text[pos:]
			case 1: // delete
				end := min(len(text), pos+rng.Intn(4)+1)
				text = text[:pos] + text[end:]
			default: // replace
				end := min(len(text), pos+1)
				text = text[:pos] + alphabet[rng.Intn(len(alphabet))] + text[end:]
			}
		}
		dir := t.TempDir()
		text = strings.ReplaceAll(strings.ReplaceAll(head+text, "{{PORT}}", "18080"), "{{DIR}}", dir)
		want := nginxCheck(t, nginx, dir, text)
		full := parseCheck(dir, text)
		got, _, _ := strings.Cut(full, "\n") // nginxCheck sees the first line only
		ok := true
		switch {
		case got == want:
		case got == "ok":
			ok = !parseLayerMessage(want)
		case want == "ok":
			ok = false
		default:
			// nginx may stop earlier at an error of a directive handler.
			ok = !parseLayerMessage(want) && errLine(want) <= errLine(full)
		}
		if !ok {
			bad++
			t.Errorf("mutant %d:\n%s\n got: %s\nwant: %s", i, text, got, want)
		}
	}
}

func TestSetByLuaBlock(t *testing.T) {
	t.Parallel()
	p, err := ParseString("/t/nginx.conf", "http { server { location / {\n set_by_lua_block $x {\n  return \"}\"\n }\n} } }", ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := p.Directives[0].Block[0].Block[0].Block[0]
	if diff := cmp.Diff([]string{"$x", "\n  return \"}\"\n "}, d.Args); diff != "" || d.Line != 2 || d.EndLine != 4 {
		t.Errorf("set_by_lua_block args (-want +got):\n%s lines %d-%d", diff, d.Line, d.EndLine)
	}
}

// TestCorpusMatchesNginx runs every corpus config (wrapped by CorpusMain,
// with the Lua modules loaded) through nginx -t and Parse: a parse-layer
// error must be nginx's first error, word for word. Configs that need what
// this nginx build lacks (the websockify module, http2 on, stream{},
// third-party modules) are skipped.
func TestCorpusMatchesNginx(t *testing.T) {
	nginx := nginxOracle(t)
	files := CorpusConfigs()
	if len(files) == 0 {
		t.Skip("corpus not available")
	}
	for _, rel := range files {
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			main := CorpusMain(t, rel)
			dir := filepath.Dir(main)
			data, err := os.ReadFile(main)
			if err != nil {
				t.Fatal(err)
			}
			text := "load_module /usr/lib/nginx/modules/ndk_http_module.so;\n" +
				"load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;\n" + string(data)
			want := nginxCheck(t, nginx, dir, text)
			for _, lacking := range []string{`"websockify_`, `"http2"`, `"stream"`, `"upload_progress"`, `"more_`} {
				if strings.HasPrefix(want, "unknown directive "+lacking) {
					t.Skipf("this nginx lacks it: %s", want)
				}
			}
			got := parseCheck(dir, text)
			switch {
			case got == want:
			case got == "ok" && !parseLayerMessage(want):
				// nginx failed in a directive handler: the compiler's job.
			case strings.Contains(got, "is not supported by ngxsockify"):
				// Refused on purpose.
			default:
				t.Errorf("\n got: %s\nwant: %s", got, want)
			}
		})
	}
}
