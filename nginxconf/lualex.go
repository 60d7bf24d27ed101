package nginxconf

import (
	"bytes"
	"strings"
)

// Lua tokens that matter for finding the end of a *_by_lua_block, as
// lua-nginx-module's ngx_http_lua_lex() finds them (in this order of
// priority when two start at the same byte).
const (
	luaLeftCurly    = iota // {
	luaRightCurly          // }
	luaLongString          // [[ or [==[ : a long string, skipped to its closing bracket
	luaLongComment         // --[[ or --[==[ : a long comment, likewise
	luaRightBracket        // ]] or ]==] outside a long string: ignored
	luaLineComment         // -- up to the end of the line
	luaDoubleQuoted        // "..." on one line, with \ escapes
	luaSingleQuoted        // '...' likewise
)

// luaMatch finds the first Lua token in b, as the DFA generated for
// lua-nginx-module does: the token that starts first wins (at one start,
// a long comment beats a line comment); a line comment runs to the newline
// or to the end of b; a quoted string ends at its closing quote and dies at
// a newline, and one still open at the end of b never matches, so a later
// token inside it is what the DFA falls back to. It returns the token kind
// and the offsets of its first byte and of the byte after it; ok is false
// when no token is complete within b.
func luaMatch(b []byte) (kind, from, to int, ok bool) {
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			return luaLeftCurly, i, i + 1, true
		case '}':
			return luaRightCurly, i, i + 1, true
		case '[':
			if n, ok := longBracket(b[i:], '['); ok {
				return luaLongString, i, i + n, true
			}
		case ']':
			if n, ok := longBracket(b[i:], ']'); ok {
				return luaRightBracket, i, i + n, true
			}
		case '-':
			if i+1 < len(b) && b[i+1] == '-' {
				if n, ok := longBracket(b[i+2:], '['); ok {
					return luaLongComment, i, i + 2 + n, true
				}
				if j := bytes.IndexByte(b[i+2:], '\n'); j >= 0 {
					return luaLineComment, i, i + 2 + j, true
				}
				return luaLineComment, i, len(b), true
			}
		case '"', '\'':
			if n, done := quotedLua(b[i:]); done {
				kind := luaDoubleQuoted
				if b[i] == '\'' {
					kind = luaSingleQuoted
				}
				return kind, i, i + n, true
			}
		}
	}
	return 0, 0, 0, false
}

// longBracket matches [=*[ (or ]=*] with c == ']') at the start of b.
func longBracket(b []byte, c byte) (int, bool) {
	if len(b) < 2 || b[0] != c {
		return 0, false
	}
	i := 1
	for i < len(b) && b[i] == '=' {
		i++
	}
	if i < len(b) && b[i] == c {
		return i + 1, true
	}
	return 0, false
}

// quotedLua matches a one-line quoted Lua string at the start of b. It
// returns its length and true; false when a newline or the end of b comes
// first.
func quotedLua(b []byte) (int, bool) {
	q := b[0]
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case q:
			return i + 1, true
		case '\n':
			return 0, false
		case '\\':
			if i+1 >= len(b) {
				return -1, false
			}
			if b[i+1] == '\n' {
				return 0, false
			}
			i++
		}
	}
	return -1, false
}

// readLuaBlock reads the body of a *_by_lua_block whose '{' was just read,
// up to the matching '}' as Lua sees it, like
// ngx_http_lua_conf_lua_block_parse(). It returns the Lua source verbatim
// (without the braces); s.line is then the line of the closing brace.
//
// nginx reads the file through a 4 KiB window here too, and some inputs
// fail only because of it (a long string not closed within the window, a
// run of over 4 KiB without any token); the window is emulated so that the
// same configs fail with the same messages.
func (s *source) readLuaBlock() (string, *Error) {
	level := 1
	blockStart := s.pos
	ctxLine := s.line // the line reported for an unterminated block
	for {
		kind, err := s.readLuaToken(ctxLine)
		if err != nil {
			return "", err
		}
		switch kind {
		case luaLeftCurly:
			ctxLine = s.line
			level++
		case luaRightCurly:
			level--
			if level == 0 {
				return string(s.data[blockStart : s.pos-1]), nil
			}
		}
	}
}

// readLuaToken is ngx_http_lua_conf_read_lua_token().
func (s *source) readLuaToken(ctxLine int) (int, *Error) {
	start := s.pos
	startLine := s.line
	const half = confBuffer / 2
	for {
		if s.pos >= s.last || (s.last-s.pos < half && s.last < len(s.data)) {
			if s.last >= len(s.data) {
				return 0, s.errorf(ctxLine, "unexpected end of file, expecting terminating characters for lua code block")
			}
			n := s.last - start
			if n == confBuffer {
				return 0, s.errorf(startLine, "too long lua code block, probably missing terminating characters")
			}
			s.last = min(len(s.data), s.last+confBuffer-n)
		}

		kind, from, to, ok := luaMatch(s.data[s.pos:s.last])
		if !ok {
			if s.last >= len(s.data) {
				return 0, s.errorf(ctxLine, "unexpected end of file, expecting terminating characters for lua code block")
			}
			n := s.last - s.pos
			if n == confBuffer {
				return 0, s.errorf(startLine, "too long lua code block, probably missing terminating characters")
			}
			// nginx keeps what it scanned and reads on after it, without
			// counting the newlines it skipped (so its later line numbers
			// are off; we report the same ones).
			s.pos = s.last
			s.last = min(len(s.data), s.last+confBuffer-n)
			continue
		}

		if kind == luaLongString || kind == luaLongComment {
			s.line += bytes.Count(s.data[s.pos:s.pos+from], []byte{'\n'})
			s.pos += from
			to -= from
			open := s.data[s.pos : s.pos+to]
			if kind == luaLongComment {
				open = open[2:]
			}
			closing := strings.Map(func(r rune) rune {
				if r == '[' {
					return ']'
				}
				return r
			}, string(open))
			i := bytes.Index(s.data[s.pos+to:s.last], []byte(closing))
			if i < 0 {
				return 0, s.errorf(s.line, `Lua code block missing the closing long bracket "%s", the inlined Lua code may be too long`, closing)
			}
			to += i + len(closing)
			from = 0
		}
		s.line += bytes.Count(s.data[s.pos:s.pos+to], []byte{'\n'})
		s.pos += to
		return kind, nil
	}
}
