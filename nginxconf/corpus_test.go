package nginxconf

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// CorpusDir holds the real-world configs of the development corpus
// (see its SOURCES.md).
const CorpusDir = "/work/shared/corpus"

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
var corpusErrors = map[string]string{
	"d/lua-resty-auto-ssl-readme-nginx.conf": `"ssl_certificate_by_lua_block" directive is not supported by ngxsockify (TLS handshakes are not scripted) in {{DIR}}/nginx.conf:`,
}

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
			p, err := Parse(main, ParseOptions{})
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
