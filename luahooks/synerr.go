package luahooks

import (
	"fmt"
	"strings"
)

// opener is a bracket unclosedBracket saw open.
type opener struct {
	c      byte
	line   int
	params bool // a function's parameter list: LuaJIT names no line
}

// unclosedBracket explains a syntax error the way LuaJIT does when the
// token at (line, col) (col: its last byte, 1-based) comes where the
// bracket still open before it must close: after a complete expression
// inside "(", "{" or "[", LuaJIT reports "')' expected near 'tok'", adding
// "(to close '(' at line N)" when the bracket opened on another line.
// gopher-lua says "unexpected symbol" there. It returns "" when the error
// is of another kind.
func unclosedBracket(src string, line, col int, tok string) string {
	var stack []opener
	prevEnds := false // the previous token can end an expression
	funcHead := false // since "function": only names, "." and ":"
	ln, lineStart := 1, 0
	for i := 0; i < len(src); {
		c := src[i]
		start := i
		ends := false
		switch {
		case c == '\n':
			ln++
			i++
			lineStart = i
			continue
		case c == ' ' || c == '\t' || c == '\r':
			i++
			continue
		case strings.HasPrefix(src[i:], "--"):
			j := i + 2
			if lvl, ok := longBracket(src, j); ok {
				end := longBracketEnd(src, j+lvl+2, lvl)
				for _, ch := range src[i:end] {
					if ch == '\n' {
						ln++
					}
				}
				if k := strings.LastIndexByte(src[i:end], '\n'); k >= 0 {
					lineStart = i + k + 1
				}
				i = end
				continue
			}
			for j < len(src) && src[j] != '\n' {
				j++
			}
			i = j
			continue
		case c == '[' && func() bool { _, ok := longBracket(src, i); return ok }():
			lvl, _ := longBracket(src, i)
			end := longBracketEnd(src, i+lvl+2, lvl)
			if strings.Contains(src[i:end], "\n") {
				return "" // a string over several lines: not worth following
			}
			i, ends = end, true
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c && src[j] != '\n' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			i, ends = min(j+1, len(src)), true
		case isLuaJITIdent(c) || c >= '0' && c <= '9' || c == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			j := i
			for j < len(src) && (isLuaJITIdent(src[j]) || src[j] >= '0' && src[j] <= '9' || src[j] == '.' && c >= '0' && c <= '9') {
				j++
			}
			word := src[i:j]
			ends = !luaKeywords[word] || word == "nil" || word == "true" || word == "false" || word == "end"
			i = j
			funcHead = word == "function" || funcHead && !luaKeywords[word]
		default:
			switch c {
			case '(', '{', '[':
				stack = append(stack, opener{c, ln, c == '(' && funcHead})
			case ')', '}', ']':
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
				}
				ends = true
			}
			i++
			if strings.HasPrefix(src[start:], "...") {
				i, ends = start+3, true
			}
			funcHead = funcHead && (c == '.' || c == ':')
		}
		if ln == line && i-lineStart == col {
			// src[start:i] is the token of the error
			if !prevEnds || src[start:i] != tok {
				return ""
			}
			if c == '(' || c == '{' || c == '[' {
				stack = stack[:len(stack)-1] // it opened one itself
			}
			return expected(stack, line)
		}
		if ln > line {
			return ""
		}
		prevEnds = ends
	}
	if line == eofLine && prevEnds {
		return expected(stack, ln) // the end of src came where a bracket must close
	}
	return ""
}

// eofLine is unclosedBracket's line for an error at the end of the source.
const eofLine = 1 << 30

// expected is LuaJIT's message for the brackets still open (stack) at an
// error on line: "')' expected", naming the opening line when it is
// another one; "" when none is open.
func expected(stack []opener, line int) string {
	if len(stack) == 0 {
		return ""
	}
	closer := map[byte]byte{'(': ')', '{': '}', '[': ']'}
	top := stack[len(stack)-1]
	if top.line == line || top.params {
		return fmt.Sprintf("'%c' expected", closer[top.c])
	}
	return fmt.Sprintf("'%c' expected (to close '%c' at line %d)", closer[top.c], top.c, top.line)
}

// luaKeywords are Lua 5.1's reserved words.
var luaKeywords = map[string]bool{
	"and": true, "break": true, "do": true, "else": true, "elseif": true, "end": true,
	"false": true, "for": true, "function": true, "if": true, "in": true, "local": true,
	"nil": true, "not": true, "or": true, "repeat": true, "return": true, "then": true,
	"true": true, "until": true, "while": true,
}
