package nginxconf

import (
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
