package nginxconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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
