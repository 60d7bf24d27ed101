package luahooks

import (
	"errors"
	"fmt"
	"ngxsockify/ngxlog"
	"sort"
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
	check bool // "u" without "U": pcre_exec checks the subject is UTF-8 and offsets fall on characters
	ncap  int
	names []groupName // in group order ("D": by name, then group order)
	// dupNames ("D"): each name maps to a table of the values its groups
	// captured, unmatched ones left out (nil when none matched); a res
	// table passed in keeps its lists and they grow, as in nginx.
	dupNames bool
	// dfa ("d"): pcre_dfa_exec's answer, the longest match at the
	// leftmost position that matches, and no captures. It is the pattern
	// as \G(?:pattern)\z, tried on the subject cut at each end from the
	// longest down. Known difference: a lookahead at a cut end sees the
	// subject's end, not the text after it.
	dfa *regexp2.Regexp
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

// reErrMax is the longest compile error message ngx.re returns:
// lua-resty-core hands the C side a 128-byte buffer (MAX_ERR_MSG_LEN).
const reErrMax = 127

// reMatchTimeout bounds one regex match: a catastrophic pattern inside a Go
// call cannot be stopped by the run's context, so regexp2 stops it and
// ngx.re answers nil, err.
const reMatchTimeout = time.Second

// compileRegex parses ngx.re options and compiles pattern with the PCRE
// translator nginx.conf regexes use, in PCRE 8.x's dialect: Debian's
// lua-nginx-module links libpcre3.
func compileRegex(pattern, flags string) (*pcreRegex, error) {
	key := reKey{pattern, flags}
	reCache.Lock()
	c := reCache.m[key]
	reCache.Unlock()
	if c != nil {
		return c, nil
	}
	o := vars.PCREOptions{PCRE1: true}
	for i := 0; i < len(flags); i++ {
		switch flags[i] {
		case 'i':
			o.Caseless = true
		case 'm':
			o.Multiline = true
		case 's':
			o.DotAll = true
		case 'x':
			o.Extended = true
		case 'u', 'U':
			o.UTF8 = true
		case 'a':
			o.Anchored = true
		case 'D':
			o.DupNames = true
		case 'J':
			o.JavaScript = true
		case 'j', 'o', 'd':
		default:
			return nil, fmt.Errorf("unknown flag \"%c\" (flags \"%s\")", flags[i], flags)
		}
	}
	re, groups, err := vars.CompilePCRE(pattern, o)
	if err != nil {
		msg := err.Error()
		if len(msg) > reErrMax {
			msg = msg[:reErrMax]
		}
		return nil, errors.New(msg)
	}
	re.MatchTimeout = reMatchTimeout
	var dfa *regexp2.Regexp
	if strings.IndexByte(flags, 'd') >= 0 {
		end := ")\\z"
		if o.Extended {
			end = "\n" + end // a trailing # comment ends at the newline
		}
		if dfa, _, err = vars.CompilePCRE("\\G(?:"+pattern+end, o); err != nil {
			return nil, err
		}
		dfa.MatchTimeout = reMatchTimeout
		groups = nil // lua-nginx-module compiles a DFA regex with 0 captures
	}
	c = &pcreRegex{dfa: dfa, re: re, utf8: o.UTF8, check: o.UTF8 && !strings.Contains(flags, "U"), ncap: len(groups), dupNames: o.DupNames}
	for i, name := range groups {
		if name != "" {
			c.names = append(c.names, groupName{name, i + 1})
		}
	}
	if c.dupNames {
		// PCRE's name table order: by name, then group number.
		sort.SliceStable(c.names, func(i, j int) bool { return c.names[i].name < c.names[j].name })
	}
	reCache.Lock()
	if len(reCache.m) >= reCacheMax {
		reCache.m = map[reKey]*pcreRegex{}
	}
	reCache.m[key] = c
	reCache.Unlock()
	return c, nil
}

// subject is a Lua string prepared for regexp2: runes plus the byte offset
// of each rune.
type subject struct {
	s     string
	runes []rune
	offs  []int // byte offset of rune i; offs[len(runes)] == len(s); nil in byte mode
	bad   bool  // not valid UTF-8 (UTF-8 mode)
}

func newSubject(s string, utf bool) *subject {
	sub := &subject{s: s}
	if !utf {
		sub.runes = vars.ByteRunes(s)
		return sub
	}
	sub.runes = make([]rune, 0, len(s))
	sub.offs = make([]int, 0, len(s)+1)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		sub.bad = sub.bad || r == utf8.RuneError && n == 1
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
	m, err := rx.re.FindRunesMatchStartingAt(sub.runes, from)
	if m == nil || err != nil || rx.dfa == nil {
		return m, err
	}
	for end := len(sub.runes); end > m.Index+m.Length; end-- {
		long, err := rx.dfa.FindRunesMatchStartingAt(sub.runes[:end], m.Index)
		if err != nil || long != nil && long.Index == m.Index {
			return long, err
		}
	}
	return m, nil
}

// pcre_exec's errors for a UTF-8 regex that checks its subject ("u"), as
// lua-nginx-module reports them.
var (
	errBadUTF8       = errors.New("pcre_exec() failed: -10") // PCRE_ERROR_BADUTF8
	errBadUTF8Offset = errors.New("pcre_exec() failed: -11") // PCRE_ERROR_BADUTF8_OFFSET
)

// findAt runs one match from byte offset pos as pcre_exec does: with the
// UTF-8 check, a subject that is not UTF-8 or an offset inside a character
// is an error; without it, the search starts at the next character.
func (rx *pcreRegex) findAt(sub *subject, pos int) (*regexp2.Match, error) {
	if rx.check {
		if sub.bad {
			return nil, errBadUTF8
		}
		if pos < len(sub.s) && !utf8.RuneStart(sub.s[pos]) {
			return nil, errBadUTF8Offset
		}
	}
	return rx.find(sub, sub.runeIdx(pos))
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
		v := val(gn.num)
		if !rx.dupNames {
			t.RawSetString(gn.name, v)
			continue
		}
		if v == lua.LFalse {
			continue
		}
		if list, ok := t.RawGetString(gn.name).(*lua.LTable); ok {
			list.Append(v)
		} else {
			list = L.CreateTable(1, 0)
			list.Append(v)
			t.RawSetString(gn.name, list)
		}
	}
	return t
}

// compileRegexArg is compileRegex for an ngx.re call: an unknown flag is
// the caller's mistake and raises; a compile error is returned.
func (st *state) compileRegexArg(L *lua.LState, pat, flags string) (*pcreRegex, error) {
	rx, err := compileRegex(pat, flags)
	if err != nil && strings.HasPrefix(err.Error(), "unknown flag") {
		L.RaiseError("%s", err.Error())
	}
	if err == nil && strings.IndexByte(flags, 'j') >= 0 {
		st.logJIT(pat, flags)
	}
	return rx, err
}

// logJIT writes the debug line lua-nginx-module writes when it compiles a
// regex with "j" (PCRE's JIT, always available there): on every call, or
// once per worker (here: per Runtime) with "o", which caches the regex.
func (st *state) logJIT(pat, flags string) {
	if strings.IndexByte(flags, 'o') >= 0 {
		if _, seen := st.rt.reOnce.LoadOrStore(reKey{pat, flags}, struct{}{}); seen {
			return
		}
	}
	st.logf(ngxlog.Debug, "pcre JIT compiling result: 1")
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
	rx, err := st.compileRegexArg(L, pat, flags)
	if err != nil {
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
	if m == nil && n == 2 { // nil, err: find answers nil, nil, err
		err := L.Get(-1)
		L.Pop(1)
		L.Push(lua.LNil)
		L.Push(err)
		return 3
	}
	if m == nil {
		return n
	}
	// resty.core: a negative nth is 0; past the regex's groups is an
	// error; a group that did not take part is nil, nil.
	if nth < 0 {
		nth = 0
	}
	if nth > rx.ncap {
		L.Push(lua.LNil)
		L.Push(lua.LNil)
		L.Push(lua.LString("nth out of bound"))
		return 3
	}
	g := m.GroupByNumber(nth)
	if g == nil || len(g.Captures) == 0 {
		L.Push(lua.LNil)
		L.Push(lua.LNil)
		return 2
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
	pos := 0 // byte offset
	done := false
	L.Push(L.NewFunction(func(L *lua.LState) int {
		if done || pos > len(s) {
			done = true
			L.Push(lua.LNil)
			return 1
		}
		m, err := rx.findAt(sub, pos)
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
		pos = sub.byteOff(m.Index + m.Length)
		if m.Length == 0 {
			pos++ // one byte, as lua-nginx-module does
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
			st.logf(ngxlog.Err, "%s", err.Error())
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
	rx, err := st.compileRegexArg(L, pat, flags)
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 3
	}
	sub := newSubject(s, rx.utf8)
	var out strings.Builder
	last := 0 // byte offset copied so far
	pos := 0  // byte offset to search from
	count := 0
	for pos <= len(s) {
		m, err := rx.findAt(sub, pos)
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
				} else if part.group <= rx.ncap && part.group < len(groups) && len(groups[part.group].Captures) > 0 {
					out.WriteString(sub.text(&groups[part.group]))
				}
			}
		}
		last = end
		if !global {
			break
		}
		pos = end
		if m.Length == 0 {
			// Copy one byte and go on after it, as lua-nginx-module does:
			// inside a character, a checked UTF-8 regex fails (-11) and an
			// unchecked one here takes the whole character.
			if end >= len(s) {
				break
			}
			pos = end + 1
			if !rx.check {
				pos = sub.byteOff(sub.runeIdx(pos))
			}
			out.WriteString(s[end:pos])
			last = pos
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

// parseTemplate parses a sub/gsub replacement as lua-nginx-module's
// ngx_http_lua_script_compile does: $N and ${N} (digits), $$; the error
// is the line nginx logs (a name that is not a number, a missing closing
// bracket, a '$' with nothing usable after it).
func parseTemplate(t string) ([]tmplPart, error) {
	var parts []tmplPart
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, tmplPart{lit: lit.String(), group: -1})
			lit.Reset()
		}
	}
	invalid := fmt.Errorf("lua script: invalid capturing variable name found in \"%s\"", t)
	isName := func(c byte) bool {
		return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
	}
	for i := 0; i < len(t); {
		if t[i] != '$' {
			lit.WriteByte(t[i])
			i++
			continue
		}
		if i++; i == len(t) {
			return nil, invalid
		}
		if t[i] == '$' {
			lit.WriteByte('$')
			i++
			continue
		}
		num := t[i] >= '0' && t[i] <= '9'
		bracket := false
		if t[i] == '{' {
			bracket = true
			if i++; i == len(t) {
				return nil, invalid
			}
			num = t[i] >= '0' && t[i] <= '9'
		}
		start, n, closed := i, 0, false
		for ; i < len(t); i++ {
			c := t[i]
			if c == '}' && bracket {
				bracket, closed = false, true
				break
			}
			if num {
				if c >= '0' && c <= '9' {
					n = n*10 + int(c-'0')
					continue
				}
				break
			}
			if !isName(c) {
				break
			}
		}
		name := t[start:i]
		if closed {
			i++ // past the closing bracket
		}
		if bracket {
			return nil, fmt.Errorf("the closing bracket in \"%s\" variable is missing", name)
		}
		if name == "" {
			return nil, invalid
		}
		if !num {
			return nil, fmt.Errorf("attempt to use named capturing variable \"%s\" (named captures not supported yet)", name)
		}
		flush()
		parts = append(parts, tmplPart{group: n})
	}
	flush()
	return parts, nil
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
	m, err := rx.findAt(sub, pos)
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
