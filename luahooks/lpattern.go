package luahooks

// Lua 5.1 patterns as LuaJIT 2.1 implements them, for string.find,
// string.match, string.gmatch and string.gsub.
//
// gopher-lua's own matcher runs a whole match inside one Go call, where the
// run's time limit (checked by the VM between instructions) cannot reach
// it: s:match("^%s*(.-)%s*$") on a header of 20,000 spaces took > 30 s.
// This matcher counts its steps and, every patCheckEvery steps, looks at
// the run's context; when it has ended it raises the same error the VM
// raises, so the run ends as a timeout (500) like any other.
//
// Semantics follow LuaJIT (measured with luajit 2.1): classes %a %c %d %g
// %l %p %s %u %w %x %z (ASCII only, bytes >= 0x80 are in no class) and
// their complements; sets with ranges, classes and ^; * + - ?; ^ and $
// anchors (^ is literal in gmatch); captures, position captures, %b, %f,
// back-references; recursion deeper than 200 raises "pattern too complex";
// at most 32 captures.

import (
	"math"
	"strconv"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"
)

const (
	patMaxCaptures = 32   // LUA_MAXCAPTURES
	patMaxDepth    = 200  // LJ_MAX_XLEVEL
	patCheckEvery  = 4096 // match steps between context checks

	capUnfinished = -1
	capPosition   = -2
)

// Character class bits.
const (
	ccAlpha = 1 << iota
	ccCntrl
	ccDigit
	ccGraph
	ccLower
	ccPunct
	ccSpace
	ccUpper
	ccXdigit
)

var charClass = func() (t [256]uint16) {
	for c := 0; c < 128; c++ {
		var m uint16
		switch {
		case c >= 'a' && c <= 'z':
			m |= ccAlpha | ccLower
		case c >= 'A' && c <= 'Z':
			m |= ccAlpha | ccUpper
		case c >= '0' && c <= '9':
			m |= ccDigit
		}
		if c < 32 || c == 127 {
			m |= ccCntrl
		}
		if c > 32 && c < 127 {
			m |= ccGraph
			if m&(ccAlpha|ccDigit) == 0 {
				m |= ccPunct
			}
		}
		if c == ' ' || (c >= '\t' && c <= '\r') {
			m |= ccSpace
		}
		if (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') {
			m |= ccXdigit
		}
		t[c] = m
	}
	return t
}()

// classMatches reports whether c is in the class named by the letter cl
// (the character after '%'); a non-letter class matches itself.
func classMatches(c, cl byte) bool {
	var in bool
	switch cl | 0x20 {
	case 'a':
		in = charClass[c]&ccAlpha != 0
	case 'c':
		in = charClass[c]&ccCntrl != 0
	case 'd':
		in = charClass[c]&ccDigit != 0
	case 'g':
		in = charClass[c]&ccGraph != 0
	case 'l':
		in = charClass[c]&ccLower != 0
	case 'p':
		in = charClass[c]&ccPunct != 0
	case 's':
		in = charClass[c]&ccSpace != 0
	case 'u':
		in = charClass[c]&ccUpper != 0
	case 'w':
		in = charClass[c]&(ccAlpha|ccDigit) != 0
	case 'x':
		in = charClass[c]&ccXdigit != 0
	case 'z':
		in = c == 0
	default:
		return cl == c
	}
	if cl >= 'A' && cl <= 'Z' {
		return !in
	}
	return in
}

// patMatcher is the state of one pattern call. Positions are byte offsets;
// -1 means no match.
type patMatcher struct {
	L      *lua.LState
	src    string
	pat    string
	level  int
	depth  int
	budget int // steps left before the next context check
	start  [patMaxCaptures]int
	length [patMaxCaptures]int // >= 0, capUnfinished or capPosition
}

var patPool = sync.Pool{New: func() any { return new(patMatcher) }}

// newPatMatcher returns a matcher from the pool; release gives it back (a
// matcher abandoned by an error is left to the collector).
func newPatMatcher(L *lua.LState, src, pat string) *patMatcher {
	// LuaJIT's matcher reads the pattern as a C string: it ends at a NUL.
	if i := strings.IndexByte(pat, 0); i >= 0 {
		pat = pat[:i]
	}
	m := patPool.Get().(*patMatcher)
	m.L, m.src, m.pat, m.budget = L, src, pat, patCheckEvery
	m.level, m.depth = 0, 0
	return m
}

func (m *patMatcher) release() {
	m.L, m.src, m.pat = nil, "", ""
	patPool.Put(m)
}

// tick accounts n steps and checks the run's context when the budget is
// spent; an ended context raises like the VM does between instructions.
func (m *patMatcher) tick(n int) {
	m.budget -= n
	if m.budget > 0 {
		return
	}
	m.budget = patCheckEvery
	ctx := m.L.Context()
	if ctx == nil {
		return
	}
	select {
	case <-ctx.Done():
		m.L.RaiseError("%s", ctx.Err().Error())
	default:
	}
}

// fail raises a pattern error. Like LuaJIT's lj_err_caller, the message
// carries the position of the calling Lua code.
func (m *patMatcher) fail(msg string) {
	m.L.RaiseError("%s", msg)
}

// patArgError is LuaJIT's argument error, with the caller's position.
func patArgError(L *lua.LState, n int, fname, msg string) {
	L.RaiseError("bad argument #%d to '%s' (%s)", n, fname, msg)
}

// classEnd returns the index just after the single-character class at p.
func (m *patMatcher) classEnd(p int) int {
	pat := m.pat
	switch pat[p] {
	case '%':
		if p+1 >= len(pat) {
			m.fail("malformed pattern (ends with '%')")
		}
		return p + 2
	case '[':
		p++
		if p < len(pat) && pat[p] == '^' {
			p++
		}
		for {
			// The first character of a set is never its end ("[]]").
			if p >= len(pat) {
				m.fail("malformed pattern (missing ']')")
			}
			c := pat[p]
			p++
			if c == '%' && p < len(pat) {
				p++
			}
			if p < len(pat) && pat[p] == ']' {
				return p + 1
			}
		}
	}
	return p + 1
}

// inSet reports whether c is in the set pat[p:end+1] ('[' at p, ']' at end).
func (m *patMatcher) inSet(c byte, p, end int) bool {
	pat := m.pat
	want := true
	p++
	if pat[p] == '^' {
		want = false
		p++
	}
	for ; p < end; p++ {
		switch {
		case pat[p] == '%':
			p++
			if classMatches(c, pat[p]) {
				return want
			}
		case pat[p+1] == '-' && p+2 < end:
			if pat[p] <= c && c <= pat[p+2] {
				return want
			}
			p += 2
		case pat[p] == c:
			return want
		}
	}
	return !want
}

// single reports whether the character at s matches the class pat[p:ep].
func (m *patMatcher) single(s, p, ep int) bool {
	if s >= len(m.src) {
		return false
	}
	c := m.src[s]
	switch m.pat[p] {
	case '.':
		return true
	case '%':
		return classMatches(c, m.pat[p+1])
	case '[':
		return m.inSet(c, p, ep-1)
	}
	return m.pat[p] == c
}

// match matches pat[p:] at src[s:]; it returns the end of the match or -1.
func (m *patMatcher) match(s, p int) int {
	m.depth++
	if m.depth > patMaxDepth {
		m.fail("pattern too complex")
	}
	m.tick(1)
	r := m.matchHere(s, p)
	m.depth--
	return r
}

func (m *patMatcher) matchHere(s, p int) int {
	pat, src := m.pat, m.src
	for {
		if p == len(pat) {
			return s
		}
		switch pat[p] {
		case '(':
			if p+1 < len(pat) && pat[p+1] == ')' {
				return m.openCapture(s, p+2, capPosition)
			}
			return m.openCapture(s, p+1, capUnfinished)
		case ')':
			return m.closeCapture(s, p+1)
		case '$':
			if p+1 == len(pat) {
				if s == len(src) {
					return s
				}
				return -1
			}
		case '%':
			if p+1 < len(pat) {
				switch c := pat[p+1]; {
				case c == 'b':
					s = m.balance(s, p+2)
					if s < 0 {
						return -1
					}
					p += 4
					continue
				case c == 'f':
					p += 2
					if p >= len(pat) || pat[p] != '[' {
						m.fail("missing '[' after '%f' in pattern")
					}
					ep := m.classEnd(p)
					var prev, cur byte
					if s > 0 {
						prev = src[s-1]
					}
					if s < len(src) {
						cur = src[s]
					}
					if m.inSet(prev, p, ep-1) || !m.inSet(cur, p, ep-1) {
						return -1
					}
					p = ep
					continue
				case c >= '0' && c <= '9':
					s = m.backref(s, c)
					if s < 0 {
						return -1
					}
					p += 2
					continue
				}
			}
		}
		ep := m.classEnd(p)
		ok := m.single(s, p, ep)
		if ep < len(pat) {
			switch pat[ep] {
			case '?':
				if ok {
					if r := m.match(s+1, ep+1); r >= 0 {
						return r
					}
				}
				p = ep + 1
				continue
			case '*':
				return m.maxExpand(s, p, ep)
			case '+':
				if !ok {
					return -1
				}
				return m.maxExpand(s+1, p, ep)
			case '-':
				return m.minExpand(s, p, ep)
			}
		}
		if !ok {
			return -1
		}
		s++
		p = ep
	}
}

func (m *patMatcher) maxExpand(s, p, ep int) int {
	n := 0
	for m.single(s+n, p, ep) {
		n++
	}
	m.tick(n)
	for ; n >= 0; n-- {
		if r := m.match(s+n, ep+1); r >= 0 {
			return r
		}
	}
	return -1
}

func (m *patMatcher) minExpand(s, p, ep int) int {
	for {
		if r := m.match(s, ep+1); r >= 0 {
			return r
		}
		if !m.single(s, p, ep) {
			return -1
		}
		s++
	}
}

func (m *patMatcher) openCapture(s, p, what int) int {
	if m.level >= patMaxCaptures {
		m.fail("too many captures")
	}
	m.start[m.level] = s
	m.length[m.level] = what
	m.level++
	r := m.match(s, p)
	if r < 0 {
		m.level--
	}
	return r
}

func (m *patMatcher) closeCapture(s, p int) int {
	l := m.level - 1
	for ; l >= 0 && m.length[l] != capUnfinished; l-- {
	}
	if l < 0 {
		m.fail("invalid pattern capture")
	}
	m.length[l] = s - m.start[l]
	r := m.match(s, p)
	if r < 0 {
		m.length[l] = capUnfinished
	}
	return r
}

// balance matches %bxy with x at pat[p].
func (m *patMatcher) balance(s, p int) int {
	if p+1 >= len(m.pat) {
		m.fail("unbalanced pattern")
	}
	src := m.src
	if s >= len(src) || src[s] != m.pat[p] {
		return -1
	}
	open, cls := m.pat[p], m.pat[p+1]
	depth := 1
	for i := s + 1; i < len(src); i++ {
		switch src[i] {
		case cls:
			depth--
			if depth == 0 {
				m.tick(i - s)
				return i + 1
			}
		case open:
			depth++
		}
	}
	m.tick(len(src) - s)
	return -1
}

// backref matches %1-%9 at s.
func (m *patMatcher) backref(s int, c byte) int {
	l := int(c) - '1'
	if l < 0 || l >= m.level || m.length[l] == capUnfinished {
		m.fail("invalid capture index")
	}
	n := m.length[l]
	if n < 0 { // a position capture never matches as text (as in C)
		return -1
	}
	m.tick(n)
	if len(m.src)-s >= n && m.src[m.start[l]:m.start[l]+n] == m.src[s:s+n] {
		return s + n
	}
	return -1
}

// capture returns capture i of the match src[s:e] (the whole match for
// i == 0 when the pattern has no captures).
func (m *patMatcher) capture(i, s, e int) lua.LValue {
	if i >= m.level {
		if i != 0 {
			m.fail("invalid capture index")
		}
		return lua.LString(m.src[s:e])
	}
	switch n := m.length[i]; n {
	case capUnfinished:
		m.fail("unfinished capture")
	case capPosition:
		return lua.LNumber(m.start[i] + 1)
	default:
		return lua.LString(m.src[m.start[i] : m.start[i]+n])
	}
	return lua.LNil
}

// pushCaptures pushes the captures (or the whole match when there are
// none and whole is set) and returns their count.
func (m *patMatcher) pushCaptures(s, e int, whole bool) int {
	n := m.level
	if n == 0 && whole {
		n = 1
	}
	for i := 0; i < n; i++ {
		m.L.Push(m.capture(i, s, e))
	}
	return n
}

// patSpecials are the characters that make string.find use patterns
// (LuaJIT's lj_str_haspattern).
const patSpecials = "^$*+?.([%-"

// patString is luaL_checkstring: numbers are converted.
func patString(L *lua.LState, n int, fname string) string {
	switch v := L.Get(n).(type) {
	case lua.LString:
		return string(v)
	case lua.LNumber:
		return formatNumber(float64(v))
	default:
		patArgError(L, n, fname, "string expected, got "+patTypeName(L, n))
	}
	return ""
}

// patTypeName names the type of argument n ("no value" when absent).
func patTypeName(L *lua.LState, n int) string {
	if n > L.GetTop() {
		return "no value"
	}
	return L.Get(n).Type().String()
}

// patOptInt is luaL_optint with LuaJIT's conversion.
func patOptInt(L *lua.LState, n int, fname string, def int) int {
	switch v := L.Get(n).(type) {
	case *lua.LNilType:
		return def
	case lua.LNumber:
		return patInt(float64(v))
	case lua.LString:
		if f, ok := parseLuaNumber(string(v)); ok {
			return patInt(f)
		}
	}
	patArgError(L, n, fname, "number expected, got "+patTypeName(L, n))
	return 0
}

// patInt converts like LuaJIT's lj_num2int on x86-64: to a 64-bit
// integer (out of range and NaN give the minimum) and then its low 32 bits.
func patInt(f float64) int {
	i := int64(math.MinInt64)
	if f == f && f < 1<<63 && f >= -(1<<63) {
		i = int64(f)
	}
	return int(int32(i))
}

// patFindAux is string.find (find) and string.match.
func patFindAux(L *lua.LState, find bool) int {
	fname := "match"
	if find {
		fname = "find"
	}
	src := patString(L, 1, fname)
	pat := patString(L, 2, fname)
	init := patOptInt(L, 3, fname, 1)
	if init < 0 {
		init += len(src) + 1
		if init < 1 {
			init = 1
		}
	} else if init == 0 {
		init = 1
	}
	if init > len(src)+1 {
		init = len(src) + 1
	}
	s0 := init - 1
	if find && (lua.LVAsBool(L.Get(4)) || !strings.ContainsAny(pat, patSpecials)) {
		if i := strings.Index(src[s0:], pat); i >= 0 {
			L.Push(lua.LNumber(s0 + i + 1))
			L.Push(lua.LNumber(s0 + i + len(pat)))
			return 2
		}
		L.Push(lua.LNil)
		return 1
	}
	m := newPatMatcher(L, src, pat)
	p0 := 0
	anchor := len(m.pat) > 0 && m.pat[0] == '^'
	if anchor {
		p0 = 1
	}
	for s := s0; ; s++ {
		m.level, m.depth = 0, 0
		if e := m.match(s, p0); e >= 0 {
			var n int
			if find {
				L.Push(lua.LNumber(s + 1))
				L.Push(lua.LNumber(e))
				n = m.pushCaptures(s, e, false) + 2
			} else {
				n = m.pushCaptures(s, e, true)
			}
			m.release()
			return n
		}
		if anchor || s >= len(src) {
			break
		}
	}
	m.release()
	L.Push(lua.LNil)
	return 1
}

func patFind(L *lua.LState) int  { return patFindAux(L, true) }
func patMatch(L *lua.LState) int { return patFindAux(L, false) }

// patGmatch is string.gmatch; '^' is not an anchor there (Lua 5.1).
func patGmatch(L *lua.LState) int {
	src := patString(L, 1, "gmatch")
	pat := patString(L, 2, "gmatch")
	pos := 0
	L.Push(L.NewFunction(func(L *lua.LState) int {
		m := newPatMatcher(L, src, pat)
		for s := pos; s <= len(src); s++ {
			m.level, m.depth = 0, 0
			if e := m.match(s, 0); e >= 0 {
				pos = e
				if e == s {
					pos++
				}
				n := m.pushCaptures(s, e, true)
				m.release()
				return n
			}
		}
		m.release()
		pos = len(src) + 1
		return 0
	}))
	return 1
}

// patGsub is string.gsub.
func patGsub(L *lua.LState) int {
	src := patString(L, 1, "gsub")
	pat := patString(L, 2, "gsub")
	repl := L.Get(3)
	var replStr string
	switch v := repl.(type) {
	case lua.LString:
		replStr = string(v)
	case lua.LNumber:
		replStr = formatNumber(float64(v))
	case *lua.LFunction, *lua.LTable:
	default:
		patArgError(L, 3, "gsub", "string/function/table expected")
	}
	maxN := patOptInt(L, 4, "gsub", len(src)+1)
	m := newPatMatcher(L, src, pat)
	p0 := 0
	anchor := len(m.pat) > 0 && m.pat[0] == '^'
	if anchor {
		p0 = 1
	}
	var b strings.Builder
	n, s := 0, 0
	for n < maxN {
		m.level, m.depth = 0, 0
		e := m.match(s, p0)
		if e >= 0 {
			n++
			m.addValue(&b, s, e, repl, replStr)
		}
		switch {
		case e > s:
			s = e
		case s < len(src):
			b.WriteByte(src[s])
			s++
		default:
			goto done
		}
		if anchor {
			break
		}
	}
done:
	m.release()
	b.WriteString(src[s:])
	L.Push(lua.LString(b.String()))
	L.Push(lua.LNumber(n))
	return 2
}

// addValue appends the replacement for the match src[s:e].
func (m *patMatcher) addValue(b *strings.Builder, s, e int, repl lua.LValue, replStr string) {
	L := m.L
	var v lua.LValue
	switch r := repl.(type) {
	case lua.LString, lua.LNumber:
		m.expand(b, s, e, replStr)
		return
	case *lua.LFunction:
		L.Push(r)
		n := m.pushCaptures(s, e, true)
		L.Call(n, 1)
		v = L.Get(-1)
		L.Pop(1)
	case *lua.LTable:
		v = L.GetTable(r, m.capture(0, s, e))
	}
	switch x := v.(type) {
	case *lua.LNilType:
		b.WriteString(m.src[s:e])
	case lua.LBool:
		if x {
			L.RaiseError("invalid replacement value (a boolean)")
		}
		b.WriteString(m.src[s:e])
	case lua.LString:
		b.WriteString(string(x))
	case lua.LNumber:
		b.WriteString(formatNumber(float64(x)))
	default:
		L.RaiseError("invalid replacement value (a %s)", v.Type().String())
	}
}

// expand appends a replacement string: %0-%9 are captures, '%' followed
// by another character is that character, a final '%' is a NUL byte (C
// reads the string's terminator).
func (m *patMatcher) expand(b *strings.Builder, s, e int, repl string) {
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(repl) {
			b.WriteByte(0)
			break
		}
		c = repl[i]
		switch {
		case c == '0':
			b.WriteString(m.src[s:e])
		case c >= '1' && c <= '9':
			switch v := m.capture(int(c-'1'), s, e).(type) {
			case lua.LString:
				b.WriteString(string(v))
			case lua.LNumber:
				b.WriteString(strconv.Itoa(int(v)))
			}
		default:
			b.WriteByte(c)
		}
	}
}

// openPatterns replaces string.find, match, gmatch and gsub in strmod.
func openPatterns(L *lua.LState, strmod *lua.LTable) {
	strmod.RawSetString("find", L.NewFunction(patFind))
	strmod.RawSetString("match", L.NewFunction(patMatch))
	strmod.RawSetString("gmatch", L.NewFunction(patGmatch))
	strmod.RawSetString("gsub", L.NewFunction(patGsub))
}
