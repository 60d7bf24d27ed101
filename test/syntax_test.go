package test

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The differential syntax suite: every case under testdata/syntax is run
// through `nginx -t -c` (the oracle) and `ngxsockify -t -c`, and both must
// agree on the outcome and, on failure, on the message and its file:line.
//
// A case is a file NAME.conf, or a directory NAME/ holding nginx.conf and
// the files it includes. The main file starts with comment lines:
//
//	# what the case is about
//	# expect: ok | <message> in <file relative to the case>:<line>
//	# layer: compile          (optional: the error is found after parsing)
//	# ngxsockify: <outcome>   (optional, with "# layer: deviation": where
//	                          ngxsockify differs on purpose, what it says)
//
// "# expect:" is what real nginx 1.22.1 (Debian, with lua-nginx-module)
// said when the case was written; the test checks that the nginx on this
// machine still says so, which keeps the record honest. {{DIR}} is the
// case's temporary directory and {{PORT}} a free loopback port.
const syntaxCases = "testdata/syntax"

// synUpdate rewrites each case's "# expect:" line with what nginx says now
// (go test ./test -run TestSyntaxDifferential -syntax.update).
var synUpdate = flag.Bool("syntax.update", false, "record nginx's outcome in the syntax cases' # expect: lines")

// synRecord replaces the "# expect:" line of case c's main file.
func synRecord(t *testing.T, c synCase, outcome string) {
	t.Helper()
	main := c.src
	if c.isDir {
		main = filepath.Join(c.src, "nginx.conf")
	}
	data, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "# expect: "+c.expect+"\n", "# expect: "+outcome+"\n", 1)
	if err := os.WriteFile(main, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// synEmerg finds the first error line of a -t run: nginx's
// "nginx: [emerg] msg" or "2026/.. [emerg] 123#123: msg", and ngxsockify's
// "ngxsockify: [emerg] msg".
var synEmerg = regexp.MustCompile(`\[(?:emerg|crit|alert|error)\] (?:\d+#\d+: )?(.*)`)

// synOutcome reduces a -t run to "ok", "crash" (killed by a signal), or
// its first error, with the case directory made relative and the port
// put back as {{PORT}}.
func synOutcome(out string, exit int, dir string, port int) string {
	switch exit {
	case 0:
		return "ok"
	case -1:
		return "crash"
	}
	m := synEmerg.FindStringSubmatch(out)
	if m == nil {
		return "failed without an [emerg] line: " + strings.TrimSpace(out)
	}
	msg := strings.TrimSpace(m[1])
	msg = strings.ReplaceAll(msg, dir+"/", "")
	msg = strings.ReplaceAll(msg, ":"+strconv.Itoa(port), ":{{PORT}}")
	return strings.ReplaceAll(msg, dir, "{{DIR}}")
}

type synCase struct {
	name   string
	src    string
	isDir  bool
	desc   string
	expect string
	layer  string
	ours   string // "# ngxsockify:", for deliberate deviations
}

func synLoadCases(t *testing.T) []synCase {
	t.Helper()
	entries, err := os.ReadDir(syntaxCases)
	if err != nil {
		t.Fatalf("syntax cases: %v", err)
	}
	var cases []synCase
	for _, e := range entries {
		c := synCase{name: strings.TrimSuffix(e.Name(), ".conf"), src: filepath.Join(syntaxCases, e.Name()), isDir: e.IsDir()}
		main := c.src
		if c.isDir {
			main = filepath.Join(c.src, "nginx.conf")
		}
		data, err := os.ReadFile(main)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			if i == 0 {
				c.desc = strings.TrimPrefix(line, "# ")
			}
			if v, ok := strings.CutPrefix(line, "# expect: "); ok {
				c.expect = v
			}
			if v, ok := strings.CutPrefix(line, "# layer: "); ok {
				c.layer = v
			}
			if v, ok := strings.CutPrefix(line, "# ngxsockify: "); ok {
				c.ours = v
			}
		}
		if c.expect == "" {
			t.Fatalf("case %s has no # expect: line", c.name)
		}
		cases = append(cases, c)
	}
	return cases
}

// synInstall copies a case into a fresh directory, expanding {{DIR}} and
// {{PORT}}, and returns the path of its main file.
func synInstall(t *testing.T, c synCase, dir string, port int) string {
	t.Helper()
	expand := func(b []byte) []byte {
		s := strings.ReplaceAll(string(b), "{{DIR}}", dir)
		return []byte(strings.ReplaceAll(s, "{{PORT}}", strconv.Itoa(port)))
	}
	main := filepath.Join(dir, "nginx.conf")
	if !c.isDir {
		data, err := os.ReadFile(c.src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(main, expand(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return main
	}
	err := filepath.WalkDir(c.src, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(c.src, path)
		if err != nil {
			return err
		}
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
	return main
}

func TestSyntaxDifferential(t *testing.T) {
	cases := synLoadCases(t)
	if len(cases) < 40 {
		t.Fatalf("only %d syntax cases, want at least 40", len(cases))
	}
	nginx := requireNginx(t)
	ngx := requireNgxsockify(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			port := freePort(t)

			dir := t.TempDir()
			out, exit := checkConf(t, nginx, synInstall(t, c, dir, port))
			oracle := synOutcome(out, exit, dir, port)
			if oracle != c.expect && *synUpdate {
				synRecord(t, c, oracle)
			} else if oracle != c.expect {
				t.Errorf("%s: nginx now says %q, the case records %q", c.desc, oracle, c.expect)
			}

			dir2 := t.TempDir()
			out, exit = checkConf(t, ngx, synInstall(t, c, dir2, port))
			got := synOutcome(out, exit, dir2, port)
			want := oracle
			if c.ours != "" {
				want = c.ours
			}
			if got != want {
				t.Errorf("%s (layer %s)\nwant:       %s\nngxsockify: %s\nngxsockify output:\n%s",
					c.desc, synLayer(c), want, got, out)
			}
		})
	}
}

func synLayer(c synCase) string {
	if c.layer == "" {
		return "parse"
	}
	return c.layer
}
