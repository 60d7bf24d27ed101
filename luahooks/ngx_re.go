package luahooks

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
	lua "github.com/yuin/gopher-lua"

	"ngxsockify/nginxconf/vars"
)

// pcreRegex is a regex compiled with PCRE numbering: regexp2 (a .NET
// engine) numbers named groups after unnamed ones, so named groups are
// rewritten to plain groups and their names kept here.
type pcreRegex struct {
	re    *regexp2.Regexp
	utf8  bool
	ncap  int
	names []groupName // in group order
}

type groupName struct {
	name string
	num  int
}

type reKey struct{ pattern, flags string }

var reCache = struct {
	sync.Mutex
	m map[reKey]*pcreRegex
}{m: map[reKey]*pcreRegex{}}

const reCacheMax = 1024

// reMatchTimeout bounds one regex match: a catastrophic pattern inside a Go
// call cannot be stopped by the run's context, so regexp2 stops it and
// ngx.re answers nil, err.
const reMatchTimeout = time.Second

// byteRune maps a subject or pattern byte to a rune in non-UTF-8 mode:
// bytes >= 0x80 go to a private-use block so that \w, \d, \s and case
// folding treat them like PCRE does (not letters), one rune per byte.
func byteRune(b byte) rune {
	if b < 0x80 {
		return rune(b)
	}
	return 0xF700 + rune(b)
}

func runeByte(r rune) byte {
	if r >= 0xF780 && r <= 0xF7FF {
		return byte(r - 0xF700)
	}
	return byte(r)
}

// compileRegex parses ngx.re options and compiles pattern.
func compileRegex(pattern, flags string) (*pcreRegex, error) {
	key := reKey{pattern, flags}
	reCache.Lock()
	c := reCache.m[key]
	reCache.Unlock()
	if c != nil {
		return c, nil
	}
	var opt regexp2.RegexOptions
	utf := false
	anchored := false
	extended := false
	for i := 0; i < len(flags); i++ {
		switch flags[i] {
		case 'i':
			opt |= regexp2.IgnoreCase
		case 'm':
			opt |= regexp2.Multiline
		case 's':
			opt |= regexp2.Singleline
		case 'x':
			opt |= regexp2.IgnorePatternWhitespace
			extended = true
		case 'u', 'U':
			utf = true
		case 'a':
			anchored = true
		case 'j', 'o', 'd', 'D', 'J':
		default:
			return nil, fmt.Errorf("unknown flag \"%c\" (flags \"%s\")", flags[i], flags)
		}
	}
	var rewritten string
	var names []groupName
	var ncap int
	var err error
	// Byte-mode patterns (the usual "jo") go through the translator that
	// nginx.conf regexes use, which knows more of PCRE (POSIX classes,
	// possessive quantifiers, \h, \R ...). UTF and extended patterns, and
	// any pattern it refuses, take rewritePattern, which also words
	// ngx.re's compile errors.
	if conv, groups, cerr := vars.ConvertPCRE(pattern); cerr == nil && !utf && !extended {
		rewritten, ncap = conv, len(groups)
		for i, name := range groups {
			if name != "" {
				names = append(names, groupName{name, i + 1})
			}
		}
	} else if rewritten, names, ncap, err = rewritePattern(pattern, utf, extended); err != nil {
		return nil, fmt.Errorf("pcre_compile() failed: %s in \"%s\"", err.Error(), pattern)
	}
	if anchored {
		rewritten = `\G(?:` + rewritten + `)`
	}
	if !utf {
		rs := make([]rune, len(rewritten))
		for i := 0; i < len(rewritten); i++ {
			rs[i] = byteRune(rewritten[i])
		}
		rewritten = string(rs)
	}
	re, err := regexp2.Compile(rewritten, opt)
	if err != nil {
		msg := pcreMessage(err)
		if msg == "nothing to repeat" {
			if at := repeatOffset(pattern); at >= 0 && at < len(pattern) {
				return nil, fmt.Errorf("pcre_compile() failed: %s in \"%s\" at \"%s\"", msg, pattern, pattern[at:])
			}
		}
		return nil, fmt.Errorf("pcre_compile() failed: %s in \"%s\"", msg, pattern)
	}
	re.MatchTimeout = reMatchTimeout
	c = &pcreRegex{re: re, utf8: utf, ncap: ncap, names: names}
	reCache.Lock()
	if len(reCache.m) >= reCacheMax {
		reCache.m = map[reKey]*pcreRegex{}
	}
	reCache.m[key] = c
	reCache.Unlock()
	return c, nil
}

// pcreMessage maps regexp2's parse errors to PCRE's wording.
func pcreMessage(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "error parsing regexp: ")
	if i := strings.LastIndex(msg, " in `"); i >= 0 {
		msg = msg[:i]
	}
	switch {
	case strings.HasPrefix(msg, "missing closing )"):
		return "missing )"
	case strings.HasPrefix(msg, "unexpected )"):
		return "unmatched parentheses"
	case strings.HasPrefix(msg, "unterminated [] set"):
		return "missing terminating ] for character class"
	case strings.HasPrefix(msg, "missing argument to repetition operator"),
		strings.HasPrefix(msg, "invalid nested repetition operator"):
		return "nothing to repeat"
	case strings.HasPrefix(msg, "illegal \\ at end of pattern"):
		return "\\ at end of pattern"
	case strings.HasPrefix(msg, "reference to undefined group"):
		return "reference to non-existent subpattern"
	case strings.HasPrefix(msg, "[") && strings.Contains(msg, "range in reverse order"):
		return "range out of order in character class"
	case strings.HasPrefix(msg, "invalid repeat count"):
		return "number too big in {} quantifier"
	}
	return msg
}

type patternError string

func (e patternError) Error() string { return string(e) }

// rewritePattern turns named groups into plain ones (recording their
// numbers), named back references into numbered ones, \x{...} and (in
// byte mode) \xHH >= 0x80 into escapes regexp2 reads like PCRE.
func rewritePattern(p string, utf, extended bool) (string, []groupName, int, error) {
	var b strings.Builder
	var names []groupName
	ncap := 0
	byName := map[string]int{}
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			if i+1 >= len(p) {
				return "", nil, 0, patternError("\\ at end of pattern")
			}
			n := p[i+1]
			switch {
			case n == 'Q':
				end := strings.Index(p[i+2:], `\E`)
				lit := p[i+2:]
				if end >= 0 {
					lit = p[i+2 : i+2+end]
				}
				for k := 0; k < len(lit); k++ {
					writeLiteral(&b, lit[k], utf)
				}
				if end >= 0 {
					i = i + 2 + end + 1
				} else {
					i = len(p)
				}
				continue
			case n == 'E':
				i++
				continue
			case n == 'x':
				j := i + 2
				var v int64
				var err error
				if j < len(p) && p[j] == '{' {
					end := strings.IndexByte(p[j:], '}')
					if end < 0 {
						return "", nil, 0, patternError("missing } after \\x{")
					}
					v, err = strconv.ParseInt(p[j+1:j+end], 16, 32)
					if err != nil {
						return "", nil, 0, patternError("invalid hex in \\x{}")
					}
					i = j + end
				} else {
					k := j
					for k < len(p) && k < j+2 && unhex(p[k]) >= 0 {
						k++
					}
					if k > j {
						v, _ = strconv.ParseInt(p[j:k], 16, 32)
					}
					i = k - 1
				}
				if !utf && v >= 0x80 && v <= 0xff {
					v = int64(byteRune(byte(v)))
				}
				if v > 0xffff {
					b.WriteRune(rune(v))
				} else {
					fmt.Fprintf(&b, `\u%04X`, v)
				}
				continue
			case n == 'k' && !inClass && i+2 < len(p) && (p[i+2] == '<' || p[i+2] == '\'' || p[i+2] == '{'):
				closer := map[byte]byte{'<': '>', '\'': '\'', '{': '}'}[p[i+2]]
				end := strings.IndexByte(p[i+3:], closer)
				if end < 0 {
					return "", nil, 0, patternError("syntax error in subpattern name (missing terminator)")
				}
				name := p[i+3 : i+3+end]
				num, ok := byName[name]
				if !ok {
					return "", nil, 0, patternError("reference to non-existent subpattern")
				}
				fmt.Fprintf(&b, `(?:\%d)`, num)
				i = i + 3 + end
				continue
			}
			b.WriteByte(c)
			b.WriteByte(n)
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
			b.WriteByte(c)
		case c == '[':
			inClass = true
			b.WriteByte(c)
			j := i + 1
			if j < len(p) && p[j] == '^' {
				b.WriteByte('^')
				j++
			}
			if j < len(p) && p[j] == ']' {
				b.WriteString(`\]`)
				j++
			}
			i = j - 1
		case c == '#' && extended:
			end := strings.IndexByte(p[i:], '\n')
			if end < 0 {
				i = len(p)
			} else {
				i += end
			}
		case c == '(':
			rest := p[i+1:]
			var name string
			skip := 0
			switch {
			case strings.HasPrefix(rest, "?P<"):
				skip = 3
			case strings.HasPrefix(rest, "?<") && !strings.HasPrefix(rest, "?<=") && !strings.HasPrefix(rest, "?<!"):
				skip = 2
			case strings.HasPrefix(rest, "?'"):
				skip = 2
			case strings.HasPrefix(rest, "?P="):
				end := strings.IndexByte(rest, ')')
				if end < 0 {
					return "", nil, 0, patternError("missing )")
				}
				num, ok := byName[rest[3:end]]
				if !ok {
					return "", nil, 0, patternError("reference to non-existent subpattern")
				}
				fmt.Fprintf(&b, `(?:\%d)`, num)
				i += end + 1
				continue
			case strings.HasPrefix(rest, "?"), strings.HasPrefix(rest, "*"):
				b.WriteByte(c)
				continue
			default:
				ncap++
				b.WriteByte(c)
				continue
			}
			term := byte('>')
			if rest[skip-1] == '\'' {
				term = '\''
			}
			end := strings.IndexByte(rest[skip:], term)
			if end < 0 {
				return "", nil, 0, patternError("syntax error in subpattern name (missing terminator)")
			}
			name = rest[skip : skip+end]
			if name == "" || !isGroupName(name) {
				return "", nil, 0, patternError("syntax error in subpattern name (missing terminator)")
			}
			ncap++
			if _, dup := byName[name]; dup {
				return "", nil, 0, patternError("two named subpatterns have the same name")
			}
			byName[name] = ncap
			names = append(names, groupName{name, ncap})
			b.WriteByte('(')
			i += skip + end + 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), names, ncap, nil
}

func writeLiteral(b *strings.Builder, c byte, utf bool) {
	if c >= 0x80 || strings.IndexByte(`\^$.|?*+()[]{}#- `, c) < 0 {
		b.WriteByte(c)
		return
	}
	b.WriteByte('\\')
	b.WriteByte(c)
}

func isGroupName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return true
}

// subject is a Lua string prepared for regexp2: runes plus the byte offset
// of each rune.
type subject struct {
	s     string
	runes []rune
	offs  []int // byte offset of rune i; offs[len(runes)] == len(s); nil in byte mode
}

func newSubject(s string, utf bool) *subject {
	sub := &subject{s: s}
	if !utf {
		sub.runes = make([]rune, len(s))
		for i := 0; i < len(s); i++ {
			sub.runes[i] = byteRune(s[i])
		}
		return sub
	}
	sub.runes = make([]rune, 0, len(s))
	sub.offs = make([]int, 0, len(s)+1)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		sub.runes = append(sub.runes, r)
		sub.offs = append(sub.offs, i)
		i += n
	}
	sub.offs = append(sub.offs, len(s))
	return sub
}

func (s *subject) byteOff(runeIdx int) int {
	if s.offs == nil {
		return runeIdx
	}
	return s.offs[runeIdx]
}

// runeIdx converts a byte offset to a rune index (the first rune starting
// at or after it).
func (s *subject) runeIdx(byteOff int) int {
	if s.offs == nil {
		return byteOff
	}
	lo, hi := 0, len(s.offs)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if s.offs[mid] < byteOff {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

func (s *subject) text(g *regexp2.Group) string {
	return s.s[s.byteOff(g.Index):s.byteOff(g.Index+g.Length)]
}

// find runs one match starting at rune index from.
func (rx *pcreRegex) find(sub *subject, from int) (*regexp2.Match, error) {
	if from > len(sub.runes) {
		return nil, nil
	}
	return rx.re.FindRunesMatchStartingAt(sub.runes, from)
}

func (st *state) openRe() *lua.LTable {
	return st.funcTable(map[string]lua.LGFunction{
		"match":  st.reMatch,
		"find":   st.reFind,
		"gmatch": st.reGmatch,
		"sub":    func(L *lua.LState) int { return st.reSub(L, false) },
		"gsub":   func(L *lua.LState) int { return st.reSub(L, true) },
	})
}

// captures builds the table ngx.re.match returns: [0], numbered groups
// (false when unmatched) and named groups.
func (st *state) captures(L *lua.LState, rx *pcreRegex, sub *subject, m *regexp2.Match, res *lua.LTable) *lua.LTable {
	t := res
	if t == nil {
		t = L.CreateTable(rx.ncap, len(rx.names)+1)
	}
	groups := m.Groups()
	t.RawSetInt(0, lua.LString(sub.text(&groups[0])))
	val := func(n int) lua.LValue {
		if n >= len(groups) || len(groups[n].Captures) == 0 {
			return lua.LFalse
		}
		return lua.LString(sub.text(&groups[n]))
	}
	for n := 1; n <= rx.ncap; n++ {
		t.RawSetInt(n, val(n))
	}
	for _, gn := range rx.names {
		t.RawSetString(gn.name, val(gn.num))
	}
	return t
}

// reArgs reads subject, regex and options; it returns nil (after pushing
// nil, err) on a compile error.
func (st *state) reArgs(L *lua.LState, optIdx int) (string, *pcreRegex, bool) {
	s := L.CheckString(1)
	pat := L.CheckString(2)
	flags := ""
	if v := L.Get(optIdx); v != lua.LNil {
		flags = L.CheckString(optIdx)
	}
	rx, err := compileRegex(pat, flags)
	if err != nil {
		if strings.HasPrefix(err.Error(), "unknown flag") {
			L.RaiseError("%s", err.Error())
		}
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return "", nil, false
	}
	return s, rx, true
}

func ctxPos(L *lua.LState, idx int) (*lua.LTable, int) {
	ctx, ok := L.Get(idx).(*lua.LTable)
	if !ok {
		return nil, 0
	}
	pos := 0
	if n, ok := ctx.RawGetString("pos").(lua.LNumber); ok && n > 0 {
		pos = int(n) - 1
	}
	return ctx, pos
}

func (st *state) reMatch(L *lua.LState) int {
	s, rx, ok := st.reArgs(L, 3)
	if !ok {
		return 2
	}
	ctx, pos := ctxPos(L, 4)
	res, _ := L.Get(5).(*lua.LTable)
	sub, m, n := reExecAt(L, s, rx, ctx, pos)
	if m == nil {
		return n
	}
	L.Push(st.captures(L, rx, sub, m, res))
	return 1
}

func (st *state) reFind(L *lua.LState) int {
	s, rx, ok := st.reArgs(L, 3)
	if !ok {
		// find answers nil, nil, err (from, to, err).
		err := L.Get(-1)
		L.Pop(1)
		L.Push(lua.LNil)
		L.Push(err)
		return 3
	}
	ctx, pos := ctxPos(L, 4)
	nth := L.OptInt(5, 0)
	sub, m, n := reExecAt(L, s, rx, ctx, pos)
	if m == nil {
		return n
	}
	g := m.GroupByNumber(nth)
	if g == nil || len(g.Captures) == 0 {
		L.Push(lua.LNil)
		return 1
	}
	from := sub.byteOff(g.Index)
	to := sub.byteOff(g.Index + g.Length)
	L.Push(lua.LNumber(from + 1))
	L.Push(lua.LNumber(to))
	return 2
}

func (st *state) reGmatch(L *lua.LState) int {
	s, rx, ok := st.reArgs(L, 3)
	if !ok {
		return 2
	}
	sub := newSubject(s, rx.utf8)
	pos := 0
	done := false
	L.Push(L.NewFunction(func(L *lua.LState) int {
		if done || pos > len(sub.runes) {
			done = true
			L.Push(lua.LNil)
			return 1
		}
		m, err := rx.find(sub, pos)
		if err != nil {
			done = true
			L.Push(lua.LNil)
			L.Push(lua.LString(err.Error()))
			return 2
		}
		if m == nil {
			done = true
			L.Push(lua.LNil)
			return 1
		}
		pos = m.Index + m.Length
		if m.Length == 0 {
			pos++
		}
		L.Push(st.captures(L, rx, sub, m, nil))
		return 1
	}))
	return 1
}

// reSub implements ngx.re.sub and ngx.re.gsub.
func (st *state) reSub(L *lua.LState, global bool) int {
	s := L.CheckString(1)
	pat := L.CheckString(2)
	repl := L.Get(3)
	var tmpl []tmplPart
	var fn *lua.LFunction
	switch r := repl.(type) {
	case lua.LString:
		var err error
		if tmpl, err = parseTemplate(string(r)); err != nil {
			L.Push(lua.LNil)
			L.Push(lua.LNil)
			L.Push(lua.LString("failed to compile the replacement template"))
			return 3
		}
	case lua.LNumber:
		tmpl = []tmplPart{{lit: formatNumber(float64(r)), group: -1}}
	case *lua.LFunction:
		fn = r
	default:
		L.ArgError(3, "string, number, or function expected, got "+typeName(repl))
	}
	flags := ""
	if v := L.Get(4); v != lua.LNil {
		flags = L.CheckString(4)
	}
	rx, err := compileRegex(pat, flags)
	if err != nil {
		if strings.HasPrefix(err.Error(), "unknown flag") {
			L.RaiseError("%s", err.Error())
		}
		L.Push(lua.LNil)
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 3
	}
	sub := newSubject(s, rx.utf8)
	var out strings.Builder
	last := 0 // byte offset copied so far
	pos := 0  // rune index to search from
	count := 0
	for pos <= len(sub.runes) {
		m, err := rx.find(sub, pos)
		if err != nil {
			L.Push(lua.LNil)
			L.Push(lua.LNil)
			L.Push(lua.LString(err.Error()))
			return 3
		}
		if m == nil {
			break
		}
		count++
		start, end := sub.byteOff(m.Index), sub.byteOff(m.Index+m.Length)
		out.WriteString(s[last:start])
		if fn != nil {
			caps := st.captures(L, rx, sub, m, nil)
			L.Push(fn)
			L.Push(caps)
			L.Call(1, 1)
			v := L.Get(-1)
			L.Pop(1)
			switch x := v.(type) {
			case lua.LString:
				out.WriteString(string(x))
			case lua.LNumber:
				out.WriteString(formatNumber(float64(x)))
			default:
				L.RaiseError("bad argument #3 to '%s' (string expected, got %s)", map[bool]string{true: "gsub", false: "sub"}[global], typeName(v))
			}
		} else {
			groups := m.Groups()
			for _, part := range tmpl {
				if part.group < 0 {
					out.WriteString(part.lit)
				} else if part.group < len(groups) && len(groups[part.group].Captures) > 0 {
					out.WriteString(sub.text(&groups[part.group]))
				}
			}
		}
		last = end
		if !global {
			break
		}
		if m.Length == 0 {
			// Copy one character and go on after it.
			if m.Index >= len(sub.runes) {
				break
			}
			next := sub.byteOff(m.Index + 1)
			out.WriteString(s[end:next])
			last = next
			pos = m.Index + 1
		} else {
			pos = m.Index + m.Length
		}
	}
	out.WriteString(s[last:])
	L.Push(lua.LString(out.String()))
	L.Push(lua.LNumber(count))
	return 2
}

type tmplPart struct {
	lit   string
	group int // -1 for a literal
}

// parseTemplate parses a sub/gsub replacement: $0..$99, ${N}, $$.
func parseTemplate(t string) ([]tmplPart, error) {
	var parts []tmplPart
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, tmplPart{lit: lit.String(), group: -1})
			lit.Reset()
		}
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c != '$' {
			lit.WriteByte(c)
			continue
		}
		if i+1 >= len(t) {
			return nil, fmt.Errorf("invalid capturing variable name found in \"%s\"", t)
		}
		n := t[i+1]
		switch {
		case n == '$':
			lit.WriteByte('$')
			i++
		case n >= '0' && n <= '9':
			j := i + 1
			for j < len(t) && t[j] >= '0' && t[j] <= '9' {
				j++
			}
			g, _ := strconv.Atoi(t[i+1 : j])
			flush()
			parts = append(parts, tmplPart{group: g})
			i = j - 1
		case n == '{':
			end := strings.IndexByte(t[i+2:], '}')
			if end < 0 {
				return nil, fmt.Errorf("the closing bracket in \"%s\" variable is missing", t[i+2:])
			}
			g, err := strconv.Atoi(t[i+2 : i+2+end])
			if err != nil {
				return nil, fmt.Errorf("invalid capturing variable name found in \"%s\"", t)
			}
			flush()
			parts = append(parts, tmplPart{group: g})
			i = i + 2 + end
		default:
			return nil, fmt.Errorf("invalid capturing variable name found in \"%s\"", t)
		}
	}
	flush()
	return parts, nil
}

// repeatOffset finds where PCRE reports "nothing to repeat": the first
// quantifier with nothing before it (pattern start, '(' or '|') or
// following another quantifier.
func repeatOffset(p string) int {
	prevQuant := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			i++
			prevQuant = false
		case c == '*' || c == '+' || c == '?':
			if i == 0 || p[i-1] == '(' || p[i-1] == '|' {
				return i
			}
			if prevQuant && c != '?' && c != '+' {
				return i
			}
			prevQuant = c != '?' || !prevQuant
		default:
			prevQuant = false
		}
	}
	return -1
}

// reExecAt runs rx on s from byte position pos (1-based) for ngx.re.match
// and ngx.re.find, moving ctx.pos past the match. When there is no match
// (or an error) it has pushed the results and returns their count.
func reExecAt(L *lua.LState, s string, rx *pcreRegex, ctx *lua.LTable, pos int) (*subject, *regexp2.Match, int) {
	if pos > len(s) {
		L.Push(lua.LNil)
		return nil, nil, 1
	}
	sub := newSubject(s, rx.utf8)
	m, err := rx.find(sub, sub.runeIdx(pos))
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return nil, nil, 2
	}
	if m == nil {
		L.Push(lua.LNil)
		return nil, nil, 1
	}
	if ctx != nil {
		ctx.RawSetString("pos", lua.LNumber(sub.byteOff(m.Index+m.Length)+1))
	}
	return sub, m, 0
}
