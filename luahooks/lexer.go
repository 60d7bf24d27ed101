package luahooks

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// luajitSource brings LuaJIT's lexical rules to gopher-lua's parser, which
// follows Lua 5.1's and differs in four places:
//
//   - A file's first line starting with "#" (a shebang) is skipped by
//     LuaJIT's file loader (and lua-nginx-module's); gopher-lua refuses it.
//     With file set, that line is blanked (its newline stays, so line
//     numbers do not move).
//   - LuaJIT refuses an unknown escape in a quoted string ("\d": "invalid
//     escape sequence near '"a'"); gopher-lua keeps the character. Such
//     code must not load.
//   - LuaJIT has "\xXX", "\z" and "\u{XXX}"; gopher-lua does not. They are
//     rewritten into decimal escapes (and "\z" drops the white space after
//     it; the newlines it drops are put back after the string, so line
//     numbers stay).
//   - LuaJIT takes bytes of 0x80 and above as identifier characters (UTF-8
//     names load); gopher-lua refuses them. Each such identifier is renamed
//     to an ASCII one (mangleIdent), the same name for the same bytes.
//
// Comments and long strings are copied as they are. name is the chunk name
// for error messages. When nothing needs a change, src is returned.
func luajitSource(src, name string, file bool) (string, error) {
	var b strings.Builder
	changed := false
	i := 0
	if file && strings.HasPrefix(src, "#") {
		nl := strings.IndexByte(src, '\n')
		if nl < 0 {
			nl = len(src)
		}
		b.WriteString(strings.Repeat(" ", nl)) // keeps columns; the newline follows
		i, changed = nl, true
	}
	line := 1
	flush := func(from, to int) { b.WriteString(src[from:to]) }
	start := i
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == '-' && strings.HasPrefix(src[i:], "--"):
			j := i + 2
			if lvl, ok := longBracket(src, j); ok {
				end := longBracketEnd(src, j+lvl+2, lvl)
				line += strings.Count(src[i:end], "\n")
				i = end
				continue
			}
			for j < len(src) && src[j] != '\n' {
				j++
			}
			i = j
		case c == '[':
			if lvl, ok := longBracket(src, i); ok {
				end := longBracketEnd(src, i+lvl+2, lvl)
				line += strings.Count(src[i:end], "\n")
				i = end
				continue
			}
			i++
		case c == '"' || c == '\'':
			end, text, lines, err := quotedString(src, i, line, name)
			if err != nil {
				return "", err
			}
			if text != src[i:end] {
				flush(start, i)
				b.WriteString(text)
				start, changed = end, true
			}
			line += lines
			i = end
		case c >= 0x80 || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			high := false
			for j < len(src) && isLuaJITIdent(src[j]) {
				high = high || src[j] >= 0x80
				j++
			}
			if high {
				flush(start, i)
				b.WriteString(mangleIdent(src[i:j]))
				start, changed = j, true
			}
			i = j
		case c >= '0' && c <= '9':
			// A number may end in letters (1e5, 0x1F, 1ULL): keep them
			// with it.
			j := i
			for j < len(src) && isLuaJITIdent(src[j]) || j < len(src) && src[j] == '.' {
				j++
			}
			i = j
		default:
			i++
		}
	}
	if !changed {
		return src, nil
	}
	flush(start, len(src))
	return b.String(), nil
}

func isLuaJITIdent(c byte) bool {
	return c >= 0x80 || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// mangledPrefix starts the names mangleIdent makes.
const mangledPrefix = "__ngxsockify_u"

// mangleIdent renames an identifier holding bytes >= 0x80: they become
// "_XX" hex after a prefix no Lua programmer writes. The same name is
// used as a field name (t.ключ, {ключ = 1}), so tables agree; ngx.var
// takes the original bytes back (unmangleIdent).
func mangleIdent(id string) string {
	var b strings.Builder
	b.WriteString(mangledPrefix)
	for i := 0; i < len(id); i++ {
		if c := id[i]; c >= 0x80 {
			fmt.Fprintf(&b, "_%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unmangleIdent is the identifier mangleIdent renamed to name, or name
// when it is not such a name.
func unmangleIdent(name string) string {
	rest, ok := strings.CutPrefix(name, mangledPrefix)
	if !ok {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; c == '_' && i+2 < len(rest) && isUpperHex(rest[i+1]) && isUpperHex(rest[i+2]) {
			v, _ := strconv.ParseUint(rest[i+1:i+3], 16, 8)
			if v < 0x80 {
				return name
			}
			b.WriteByte(byte(v))
			i += 2
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

// longBracket reports whether src[i:] opens a long bracket ("[[", "[=[",
// ...) and its level.
func longBracket(src string, i int) (int, bool) {
	if i >= len(src) || src[i] != '[' {
		return 0, false
	}
	j := i + 1
	for j < len(src) && src[j] == '=' {
		j++
	}
	if j < len(src) && src[j] == '[' {
		return j - i - 1, true
	}
	return 0, false
}

// longBracketEnd returns the index after the "]=*]" of level lvl closing a
// long bracket whose contents start at i (len(src) when unterminated: the
// parser reports that).
func longBracketEnd(src string, i, lvl int) int {
	closer := "]" + strings.Repeat("=", lvl) + "]"
	if k := strings.Index(src[i:], closer); k >= 0 {
		return i + k + len(closer)
	}
	return len(src)
}

// quotedString checks the quoted string starting at src[i] with LuaJIT's
// escape rules. It returns the index after it, the text to give gopher-lua
// (src[i:end] when nothing changes), and how many lines it spans.
func quotedString(src string, i, line int, name string) (end int, text string, lines int, err error) {
	q := src[i]
	var out strings.Builder // the string as gopher-lua will read it
	var tok strings.Builder // the token so far, as LuaJIT shows it in errors
	out.WriteByte(q)
	tok.WriteByte(q)
	changed := false
	pendingNL := 0
	bad := func() (int, string, int, error) {
		return 0, "", 0, fmt.Errorf("%s:%d: invalid escape sequence near '%s'", name, line+lines, tok.String())
	}
	j := i + 1
	for j < len(src) {
		c := src[j]
		switch {
		case c == q:
			out.WriteByte(q)
			out.WriteString(strings.Repeat("\n", pendingNL))
			j++
			if !changed && pendingNL == 0 {
				return j, src[i:j], lines, nil
			}
			return j, out.String(), lines, nil
		case c == '\n' || c == '\r':
			// Unfinished string: the parser says so.
			return j, src[i:j], lines, nil
		case c != '\\':
			out.WriteByte(c)
			tok.WriteByte(c)
			j++
			continue
		}
		// An escape.
		if j+1 >= len(src) {
			return len(src), src[i:], lines, nil
		}
		e := src[j+1]
		switch {
		case strings.IndexByte("abfnrtv\\\"'", e) >= 0:
			out.WriteString(src[j : j+2])
			tok.WriteString(unescapeSimple(e))
			j += 2
		case e == '\n' || e == '\r':
			out.WriteString(src[j : j+2])
			tok.WriteByte('\n')
			lines++
			j += 2
			if j < len(src) && (src[j] == '\n' || src[j] == '\r') && src[j] != e {
				out.WriteByte(src[j])
				j++
			}
		case e >= '0' && e <= '9':
			k := j + 1
			v := 0
			for n := 0; n < 3 && k < len(src) && src[k] >= '0' && src[k] <= '9'; n++ {
				v = v*10 + int(src[k]-'0')
				k++
			}
			if v > 255 {
				return bad()
			}
			out.WriteString(src[j:k])
			tok.WriteByte(byte(v))
			j = k
		case e == 'x':
			if j+4 > len(src) || !isHexDigit(src[j+2]) || !isHexDigit(src[j+3]) {
				return bad()
			}
			v := unhex(src[j+2])<<4 | unhex(src[j+3])
			fmt.Fprintf(&out, "\\%03d", v)
			tok.WriteByte(byte(v))
			changed = true
			j += 4
		case e == 'z':
			k := j + 2
			for k < len(src) && strings.IndexByte(" \t\n\r\f\v", src[k]) >= 0 {
				if src[k] == '\n' {
					pendingNL++
					lines++
				}
				k++
			}
			changed = true
			j = k
		case e == 'u':
			k := j + 2
			if k >= len(src) || src[k] != '{' {
				return bad()
			}
			k++
			v := 0
			n := 0
			for k < len(src) && isHexDigit(src[k]) {
				v = v*16 + unhex(src[k])
				if v >= 0x110000 {
					return bad()
				}
				k++
				n++
			}
			if n == 0 || k >= len(src) || src[k] != '}' {
				return bad()
			}
			k++
			var buf [utf8.UTFMax]byte
			m := encodeUTF8(buf[:], v)
			for _, x := range buf[:m] {
				fmt.Fprintf(&out, "\\%03d", x)
				tok.WriteByte(x)
			}
			changed = true
			j = k
		default:
			return bad()
		}
	}
	return len(src), src[i:], lines, nil
}

func unescapeSimple(e byte) string {
	switch e {
	case 'a':
		return "\a"
	case 'b':
		return "\b"
	case 'f':
		return "\f"
	case 'n':
		return "\n"
	case 'r':
		return "\r"
	case 't':
		return "\t"
	case 'v':
		return "\v"
	}
	return string(e)
}

func isHexDigit(c byte) bool { return unhex(c) >= 0 }

// encodeUTF8 writes v as LuaJIT does for "\u{...}": plain UTF-8, also for
// surrogates (which Go's utf8.EncodeRune would replace).
func encodeUTF8(p []byte, v int) int {
	switch {
	case v < 0x80:
		p[0] = byte(v)
		return 1
	case v < 0x800:
		p[0], p[1] = 0xC0|byte(v>>6), 0x80|byte(v&0x3F)
		return 2
	case v < 0x10000:
		p[0], p[1], p[2] = 0xE0|byte(v>>12), 0x80|byte(v>>6&0x3F), 0x80|byte(v&0x3F)
		return 3
	}
	p[0], p[1], p[2], p[3] = 0xF0|byte(v>>18), 0x80|byte(v>>12&0x3F), 0x80|byte(v>>6&0x3F), 0x80|byte(v&0x3F)
	return 4
}
