package nginxconf

import (
	"math/rand"
	"os"
	"strconv"
	"strings"
	"testing"
)

func FuzzLuaBlock(f *testing.F) {
	for _, s := range []string{
		`a = "}" .. '{' .. "\" }"`, "a = [[ } ]] .. [==[ ]] } ]==]", "-- }\n", "--[[ } ]]", "--[==[ ]] ]==]",
		"t = {}; n = #t", "a = '\\\n}'", "if x then end",
	} {
		f.Add("http { init_by_lua_block {" + s + "} }")
	}
	seedCorpus(f, true)
	f.Fuzz(func(t *testing.T, text string) {
		if strings.Contains(text, "include") {
			t.Skip("reads files outside the input")
		}
		parseBounded(t, text)
		// The Lua lexer alone, on a block that starts right away.
		s := newSource("/fuzz/lua.conf", []byte(text))
		for i := 0; i < 1000; i++ {
			before := s.pos
			if _, err := s.readLuaBlock(); err != nil || s.pos <= before {
				break
			}
		}
	})
}

// TestLuaBlockRandomDifferential builds random Lua-looking block bodies
// (braces, strings, escapes, long brackets, comments) and compares Parse
// with nginx -t on each: same outcome, same message and line. It runs
// NGX_DIFF_LUA bodies (default 0: skipped), seeded by NGX_DIFF_SEED.
func TestLuaBlockRandomDifferential(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("NGX_DIFF_LUA"))
	if n == 0 {
		t.Skip("set NGX_DIFF_LUA to run")
	}
	nginx := nginxOracle(t)
	seed, _ := strconv.ParseInt(os.Getenv("NGX_DIFF_SEED"), 10, 64)
	rng := rand.New(rand.NewSource(seed))
	pieces := []string{"{", "}", "{ }", "\"", "'", "\\", "\\\"", "\\'", "\\\\", "[[", "]]", "[=[", "]=]", "[==[", "]==]",
		"--", "-- }", "--[[", "--[==[", "\n", " ", "a", "#t", "x = 1", ";", "-", "[", "]", "=", "\"}\"", "'{'", "ngx.say(\"a\")"}
	bad := 0
	for i := 0; i < n && bad < 10; i++ {
		var body strings.Builder
		for k := rng.Intn(12) + 1; k > 0; k-- {
			body.WriteString(pieces[rng.Intn(len(pieces))])
		}
		if rng.Intn(8) == 0 {
			body.WriteString(strings.Repeat("x ", 1500+rng.Intn(1500)))
			body.WriteString(pieces[rng.Intn(len(pieces))])
		}
		dir := t.TempDir()
		text := strings.ReplaceAll(oracleHeader, "{{DIR}}", dir) +
			"http {\n    server {\n        location / {\n            access_by_lua_block {" + body.String() + "}\n        }\n    }\n}\n"
		want := nginxCheck(t, nginx, dir, text)
		got, _, _ := strings.Cut(parseCheck(dir, text), "\n")
		if got != want {
			bad++
			t.Errorf("body %d (%d bytes): %.300q\n got: %s\nwant: %s", i, body.Len(), body.String(), got, want)
		}
	}
}

func TestReadLuaBlock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, code string
		endLine        int
		err            string
	}{
		{"plain", " a = 1 }", " a = 1 ", 1, ""},
		{"nested", "t = { a = { } } }", "t = { a = { } } ", 1, ""},
		{"double quoted brace", `a = "}" }`, `a = "}" `, 1, ""},
		{"escaped quote", `a = "\" }" }`, `a = "\" }" `, 1, ""},
		{"escaped backslash ends string", `a = "\\" } rest`, `a = "\\" `, 1, ""},
		{"single quoted", `a = '{' }`, `a = '{' `, 1, ""},
		{"long string", "a = [[ } ]] }", "a = [[ } ]] ", 1, ""},
		{"long string level 2", "a = [==[ ]] } ]=] ]==] }", "a = [==[ ]] } ]=] ]==] ", 1, ""},
		{"line comment", "-- }\n}", "-- }\n", 2, ""},
		{"long comment", "--[[ }\n ]] }", "--[[ }\n ]] ", 2, ""},
		{"length operator", "n = #t }", "n = #t ", 1, ""},
		{"string dies at newline", "a = \"}\n\"", "a = \"", 1, ""},
		{"open long bracket", "a = [==[ }\n]] }", "", 0, `Lua code block missing the closing long bracket "]==]", the inlined Lua code may be too long in /t/lua.conf:1`},
		{"end of file", "\n a = 1\n", "", 0, "unexpected end of file, expecting terminating characters for lua code block in /t/lua.conf:1"},
		{"end of file after inner brace", "\n t = {\n a = 1\n", "", 0, "unexpected end of file, expecting terminating characters for lua code block in /t/lua.conf:2"},
		{"comment at end of file", "a = 1 -- }", "", 0, "unexpected end of file, expecting terminating characters for lua code block in /t/lua.conf:1"},
		{"run longer than the window", strings.Repeat(" ", 5000) + "}", "", 0, "too long lua code block, probably missing terminating characters in /t/lua.conf:1"},
	}
	for _, tt := range tests {
		s := newSource("/t/lua.conf", []byte(tt.in))
		code, err := s.readLuaBlock()
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%s: error %v, want %s", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if code != tt.code || s.line != tt.endLine {
			t.Errorf("%s: code %q line %d, want %q line %d", tt.name, code, s.line, tt.code, tt.endLine)
		}
	}
}
