package vars

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// PCREOptions are the PCRE compile options a pattern is read with. The zero
// value is nginx's `~`: PCRE2, no UTF, case-sensitive.
type PCREOptions struct {
	Caseless  bool // PCRE_CASELESS: nginx's "~*", ngx.re's "i"
	Multiline bool // PCRE_MULTILINE ("m"): ^ and $ also match at line breaks
	DotAll    bool // PCRE_DOTALL ("s"): "." also matches "\n"
	Extended  bool // PCRE_EXTENDED ("x"): whitespace and # comments outside classes are ignored
	UTF8      bool // PCRE_UTF8 ("u"): pattern and subject are UTF-8, matched by code point
	Anchored  bool // PCRE_ANCHORED ("a"): a match must start where the search starts
	// PCRE1 reads the pattern as PCRE 8.x does and words errors like it
	// ("pcre_compile() failed: missing )"): Debian's lua-nginx-module
	// links libpcre3 for ngx.re, while nginx itself links PCRE2.
	PCRE1 bool
	// DupNames (PCRE_DUPNAMES, ngx.re's "D"): several groups may share a
	// name.
	DupNames bool
	// JavaScript (PCRE_JAVASCRIPT_COMPAT, ngx.re's "J"): \uHHHH is the
	// character of that code point.
	JavaScript bool
}

// convertPCRE translates a PCRE pattern, read with the options o, into a
// pattern for regexp2 with the same meaning, and reports the compile errors
// PCRE reports, with its wording and offsets. Caseless, Multiline, DotAll
// and Anchored are left to the caller (regexp2 options).
//
//   - Every group becomes unnamed, so regexp2 numbers groups left to right
//     as PCRE does (.NET numbers named groups last); names are returned in
//     groups and named references (\k<n>, (?P=n), \g{n}) become numbers.
//   - \d \w \s \b (and \h \v \R \N, POSIX classes) keep PCRE's ASCII
//     meaning (PCRE_UCP is never set), where regexp2's are Unicode.
//   - Without UTF8 the result matches bytes: it is meant for regexp2 after
//     each byte >= 0x80 of it and of the subject is mapped to U+F700+byte
//     (byteRunes). With UTF8 it matches code points of a UTF-8 subject.
//   - Extended mode ("x", (?x), (?x:...)) is applied here: whitespace and
//     comments are dropped and regexp2 never sees the x option.
//   - Possessive quantifiers become atomic groups; \Q..\E, [:posix:] classes
//     and \o{} / \x{} / octal escapes are rewritten.
//
// Features regexp2 cannot express (\K, \C, \X, recursion, branch reset,
// verbs) are refused with `unsupported regex feature`.
func convertPCRE(p string, o PCREOptions) (string, []string, error) {
	if o.UTF8 {
		for i := 0; i < len(p); {
			r, n := utf8.DecodeRuneInString(p[i:])
			if r == utf8.RuneError && n == 1 {
				return "", nil, pcreErrorAt(p, "UTF-8 error: invalid UTF-8 string", i, o)
			}
			i += n
		}
	}
	c := &pcreConv{p: p, opt: o, ext: o.Extended}
	if err := c.run(); err != nil { // first pass: group names and count
		return "", nil, err
	}
	c2 := &pcreConv{p: p, opt: o, ext: o.Extended, names: map[string]int{}, ngroups: len(c.groups)}
	for i, n := range c.groups {
		if _, dup := c2.names[n]; n != "" && !dup {
			c2.names[n] = i + 1
		}
	}
	if err := c2.run(); err != nil {
		return "", nil, err
	}
	return string(c2.out), c2.groups, nil
}

type openGroup struct {
	out        int  // offset of "(" in out
	pat        int  // offset of "(" in the pattern
	lookbehind bool // (?<= or (?<!
	variable   bool // a lookbehind holding a variable quantifier (PCRE1 reports it at its end)
	ext        bool // extended mode outside the group
}

type pcreConv struct {
	p       string
	opt     PCREOptions
	ext     bool // extended mode here: o.Extended, changed by (?x) and (?-x)
	out     []byte
	groups  []string       // PCRE order; "" for unnamed
	names   map[string]int // second pass: name -> group number
	ngroups int            // second pass: total groups
	stack   []openGroup    // open groups
	atom    int            // out offset of the last quantifiable item, -1 when none
	quant   int            // 0: last item not a quantifier; 1: quantifier; 2: quantifier with ? or + after it
	qStart  int            // out offset where the last quantifier begins
}

func (c *pcreConv) errAt(msg string, off int) error { return pcreErrorAt(c.p, msg, off, c.opt) }

// at returns off2, where PCRE2 reports an error, or off1, where PCRE 8.x
// reports it, for c's dialect.
func (c *pcreConv) at(off2, off1 int) int {
	if c.opt.PCRE1 {
		return off1
	}
	return off2
}

func unsupported(p, what string) error {
	return fmt.Errorf("unsupported regex feature \"%s\" in \"%s\"", what, p)
}

// item records that out[start:] is a new quantifiable item.
func (c *pcreConv) item(start int) {
	c.atom, c.quant = start, 0
}

func (c *pcreConv) run() error {
	p := c.p
	c.atom = -1
	for i := 0; i < len(p); i++ {
		ch := p[i]
		if c.ext && isPCRESpace(ch) {
			continue // between a quantifier and its ? or + too, as PCRE 8.39 does
		}
		if c.ext && ch == '#' { // a comment up to the next newline
			if k := strings.IndexByte(p[i:], '\n'); k >= 0 {
				i += k
			} else {
				i = len(p)
			}
			continue
		}
		switch ch {
		case '\\':
			n, err := c.escape(i)
			if err != nil {
				return err
			}
			i = n
		case '[':
			start := len(c.out)
			n, err := c.class(i)
			if err != nil {
				return err
			}
			c.item(start)
			i = n
		case '(':
			n, err := c.group(i)
			if err != nil {
				return err
			}
			i = n
		case ')':
			if len(c.stack) == 0 {
				return c.errAt("unmatched closing parenthesis", i)
			}
			g := c.stack[len(c.stack)-1]
			if g.variable {
				return c.errAt("lookbehind assertion is not fixed length", i)
			}
			c.stack = c.stack[:len(c.stack)-1]
			c.out = append(c.out, ')')
			c.ext = g.ext
			c.item(g.out)
		case '|':
			c.out = append(c.out, '|')
			c.atom, c.quant = -1, 0
		case '^', '$':
			c.out = append(c.out, ch)
			c.atom, c.quant = -1, 0
		case '*', '+', '?':
			if err := c.quantifier(i, i, string(ch)); err != nil {
				return err
			}
		case '{':
			end, lo, hi, ok := parseBraces(p, i)
			if !ok { // not a quantifier: a literal brace
				c.item(len(c.out))
				c.out = append(c.out, '\\', '{')
				continue
			}
			if lo > 65535 || hi > 65535 {
				return c.errAt("number too big in {} quantifier", end)
			}
			if hi >= 0 && hi < lo {
				return c.errAt("numbers out of order in {} quantifier", end)
			}
			if err := c.quantifier(i, end, p[i:end+1]); err != nil {
				return err
			}
			i = end
		default:
			c.item(len(c.out))
			if ch >= utf8.RuneSelf && c.opt.UTF8 { // one character, several bytes
				_, n := utf8.DecodeRuneInString(p[i:])
				c.out = append(c.out, p[i:i+n]...)
				i += n - 1
				continue
			}
			c.out = append(c.out, ch)
		}
	}
	if len(c.stack) > 0 {
		return c.errAt("missing closing parenthesis", len(p))
	}
	return nil
}

// parseBraces recognises {n}, {n,} and {n,m} at p[i]; hi is -1 for "no
// upper bound". PCRE2 10.42 takes anything else (such as "{,3}") literally.
func parseBraces(p string, i int) (end, lo, hi int, ok bool) {
	j := i + 1
	num := func() (int, bool) {
		s := j
		for j < len(p) && p[j] >= '0' && p[j] <= '9' {
			j++
		}
		if s == j {
			return 0, false
		}
		n, err := strconv.Atoi(p[s:j])
		if err != nil || n > 1<<20 {
			n = 1 << 20
		}
		return n, true
	}
	lo, ok = num()
	if !ok || j >= len(p) {
		return 0, 0, 0, false
	}
	switch p[j] {
	case '}':
		return j, lo, lo, true
	case ',':
		j++
		if j < len(p) && p[j] == '}' {
			return j, lo, -1, true
		}
		hi, ok = num()
		if ok && j < len(p) && p[j] == '}' {
			return j, lo, hi, true
		}
	}
	return 0, 0, 0, false
}

// quantifier handles a quantifier written p[i:end+1] (end is its last byte,
// where PCRE reports errors for braces).
func (c *pcreConv) quantifier(i, end int, q string) error {
	switch {
	case c.quant == 1 && (q == "?" || q == "+"):
		c.quant = 2
		if q == "?" {
			c.out = append(c.out, '?')
			return nil
		}
		// possessive: X*+ is (?>X*)
		body := append([]byte(nil), c.out[c.atom:]...)
		c.out = append(append(append(c.out[:c.atom], "(?>"...), body...), ')')
		return nil
	case c.atom < 0 || c.quant != 0:
		return c.errAt("quantifier does not follow a repeatable item", end)
	}
	if fixed := q[0] == '{' && !strings.Contains(q, ","); !fixed {
		for k, g := range c.stack {
			switch {
			case g.lookbehind && c.opt.PCRE1:
				c.stack[k].variable = true
			case g.lookbehind:
				return c.errAt("lookbehind assertion is not fixed length", g.pat)
			}
		}
	}
	c.qStart = len(c.out)
	c.out = append(c.out, q...)
	c.quant = 1
	return nil
}

// escape converts the escape at p[i] == '\\' outside a class and returns the
// index of its last byte.
func (c *pcreConv) escape(i int) (int, error) {
	p := c.p
	if i+1 >= len(p) {
		return 0, c.errAt("\\ at end of pattern", len(p))
	}
	start := len(c.out)
	e := p[i+1]
	switch e {
	case 'Q':
		end := strings.Index(p[i+2:], `\E`)
		lit, next := p[i+2:], len(p)-1
		if end >= 0 {
			lit, next = p[i+2:i+2+end], i+2+end+1
		}
		for k := 0; k < len(lit); {
			r, n := c.char(lit, k)
			c.item(len(c.out))
			c.out = c.appendLiteral(c.out, r)
			k += n
		}
		return next, nil
	case 'E':
		return i + 1, nil
	case 'd', 'D', 'w', 'W', 's', 'S', 'h', 'H', 'v', 'V', 'N':
		if e == 'N' && i+2 < len(p) && p[i+2] == '{' {
			if c.opt.PCRE1 {
				return 0, c.errAt(pcre1CaseEscape, i+1)
			}
			return 0, c.errAt("\\N{U+dddd} is supported only in Unicode (UTF) mode", i+2)
		}
		c.out = append(c.out, c.classes()[e]...)
	case 'R':
		if c.opt.UTF8 {
			c.out = append(c.out, `(?:\r\n|[\n\x0b\f\r\u0085\u2028\u2029])`...)
		} else {
			c.out = append(c.out, `(?:\r\n|[\n\x0b\f\r\uF785])`...)
		}
	case 'K', 'X', 'C':
		return 0, unsupported(p, `\`+string(e))
	case 'L', 'l', 'U', 'u':
		if v, ok := c.jsEscape(i); ok {
			c.out = c.appendLiteral(c.out, v)
			c.item(start)
			return i + 5, nil
		}
		if e == 'u' && c.opt.JavaScript { // not \uHHHH: a "u"
			c.out = c.appendLiteral(c.out, 'u')
			c.item(start)
			return i + 1, nil
		}
		if c.opt.PCRE1 {
			return 0, c.errAt(pcre1CaseEscape, i+1)
		}
		c.out = append(c.out, p[i:i+2]...)
	case 'c':
		if i+2 >= len(p) {
			return 0, c.errAt("\\c at end of pattern", len(p))
		}
		c.out = append(c.out, p[i:i+3]...)
		c.item(start)
		return i + 2, nil
	case 'x', 'o':
		v, end, err := c.codeEscape(i)
		if err != nil {
			return 0, err
		}
		c.out = c.appendLiteral(c.out, v)
		c.item(start)
		return end, nil
	case 'k', 'g':
		n, end, err := c.reference(i)
		if err != nil {
			return 0, err
		}
		c.out = append(c.out, "(?:\\"+strconv.Itoa(n)+")"...)
		c.item(start)
		return end, nil
	case 'p', 'P':
		end := propEnd(p, i)
		name, positive, high := property(p[i:end+1], c.opt.UTF8)
		if c.opt.PCRE1 && !pcre1Property(name) {
			return 0, c.errAt("unknown property after \\P or \\p", end)
		}
		switch {
		case positive && high == "":
			c.out = append(c.out, `\p`+name...)
		case positive:
			c.out = append(c.out, "(?:\\p"+name+"|["+high+"])"...)
		case high == "":
			c.out = append(c.out, `\P`+name...)
		default:
			c.out = append(c.out, "(?:(?!["+high+"])\\P"+name+")"...)
		}
		c.item(start)
		return end, nil
	case 'b', 'B':
		// regexp2's \b knows Unicode letters, PCRE's (no UCP) ASCII word
		// characters only; bytes >= 0x80 are private-use runes, no letters.
		const w = `[0-9A-Za-z_]`
		switch {
		case !c.opt.UTF8:
			c.out = append(c.out, p[i:i+2]...)
		case e == 'b':
			c.out = append(c.out, "(?:(?<="+w+")(?!"+w+")|(?<!"+w+")(?="+w+"))"...)
		default:
			c.out = append(c.out, "(?:(?<="+w+")(?="+w+")|(?<!"+w+")(?!"+w+"))"...)
		}
		c.atom, c.quant = -1, 0 // assertions cannot be repeated
		return i + 1, nil
	case 'A', 'z', 'Z', 'G':
		c.out = append(c.out, p[i:i+2]...)
		c.atom, c.quant = -1, 0 // assertions cannot be repeated
		return i + 1, nil
	case '0':
		v, end := octal(p, i+1, 3)
		c.out = c.appendLiteral(c.out, rune(v))
		c.item(start)
		return end, nil
	default:
		if e >= '1' && e <= '9' {
			j := i + 1
			for j < len(p) && p[j] >= '0' && p[j] <= '9' {
				j++
			}
			n, _ := strconv.Atoi(p[i+1 : j])
			if n < 10 || n <= c.ngroups || c.names == nil {
				if c.names != nil && n > c.ngroups {
					return 0, c.errAt("reference to non-existent subpattern", c.at(i+1, len(p)))
				}
				c.out = append(c.out, "(?:\\"+strconv.Itoa(n)+")"...)
				c.item(start)
				return j - 1, nil
			}
			if e <= '7' { // more digits than groups: octal, as in PCRE
				v, end := octal(p, i+1, 3)
				if v > 0xff && !c.opt.UTF8 {
					return 0, c.errAt("octal value is greater than \\377 in 8-bit non-UTF-8 mode", end+1)
				}
				c.out = c.appendLiteral(c.out, rune(v))
				c.item(start)
				return end, nil
			}
		}
		if e >= utf8.RuneSelf { // a quoted non-ASCII character
			r, n := c.char(p, i+1)
			c.out = c.appendLiteral(c.out, r)
			c.item(start)
			return i + n, nil
		}
		c.out = append(c.out, p[i:i+2]...)
	}
	c.item(start)
	return i + 1, nil
}

// octal reads up to max octal digits at p[j] and returns their value and
// the index of the last one.
func octal(p string, j, max int) (int, int) {
	v, k := 0, j
	for k < len(p) && k < j+max && p[k] >= '0' && p[k] <= '7' {
		v = v*8 + int(p[k]-'0')
		k++
	}
	return v, k - 1
}

// char returns the character at s[k] and its length in bytes: a code point
// in UTF-8 mode (the pattern was checked to be valid UTF-8), else a byte.
func (c *pcreConv) char(s string, k int) (rune, int) {
	if c.opt.UTF8 && s[k] >= utf8.RuneSelf {
		return utf8.DecodeRuneInString(s[k:])
	}
	return rune(s[k]), 1
}

// pcre1CaseEscape is PCRE 8.x's error for \L, \l, \N{name}, \U and \u.
const pcre1CaseEscape = "PCRE does not support \\L, \\l, \\N{name}, \\U, or \\u"

// property reads \pX, \p{X}, \p{^X}, \PX ... for regexp2: braced is "{X}",
// positive tells \p{X} from its complement, and high lists, as private-use
// runes, the bytes 0x80-0xff whose Latin-1 character has the property: PCRE
// without UTF gives bytes the properties of U+0080-U+00FF, while regexp2
// sees them as private-use runes. In UTF-8 mode high is empty.
func property(esc string, utf bool) (braced string, positive bool, high string) {
	name := esc[2:]
	if strings.HasPrefix(name, "{") {
		name = strings.TrimSuffix(name[1:], "}")
	}
	positive = esc[1] == 'p'
	if strings.HasPrefix(name, "^") {
		positive, name = !positive, name[1:]
	}
	braced = "{" + name + "}"
	table := unicode.Categories[name]
	if table == nil {
		table = unicode.Scripts[name]
	}
	if table == nil || utf {
		return braced, positive, ""
	}
	var b strings.Builder
	for c := 0x80; c <= 0xff; c++ {
		if unicode.Is(table, rune(c)) {
			fmt.Fprintf(&b, `\u%04X`, byteRune(byte(c)))
		}
	}
	return braced, positive, b.String()
}

// pcre1Property reports whether PCRE 8.x knows the property {name}: a
// general category, a script or one of its own (Any, L&, Xan ...). It
// reports the error at the name's end; regexp2, which finds it otherwise,
// gives no offset.
func pcre1Property(braced string) bool {
	name := braced[1 : len(braced)-1]
	switch name {
	case "Any", "L&", "Xan", "Xps", "Xsp", "Xwd", "Xuc":
		return true
	}
	return unicode.Categories[name] != nil || unicode.Scripts[name] != nil
}

// propEnd returns the index of the last byte of \pL or \p{Name} at p[i].
func propEnd(p string, i int) int {
	if i+2 >= len(p) {
		return len(p) - 1
	}
	if p[i+2] == '{' {
		if k := strings.IndexByte(p[i+2:], '}'); k >= 0 {
			return i + 2 + k
		}
		return len(p) - 1
	}
	return i + 2
}

// codeEscape parses \xHH, \x{H..}, \o{O..} at p[i] and returns the
// character and the index of the escape's last byte: a byte, or in UTF-8
// mode a code point.
func (c *pcreConv) codeEscape(i int) (rune, int, error) {
	p := c.p
	base := 16
	if p[i+1] == 'o' {
		base = 8
	}
	if i+2 < len(p) && p[i+2] == '{' {
		end := strings.IndexByte(p[i+3:], '}')
		if end < 0 {
			return 0, 0, c.errAt("missing closing brace in \\x{} or \\o{}", len(p))
		}
		max := uint64(0xff)
		if c.opt.UTF8 {
			max = unicode.MaxRune
		}
		v, err := strconv.ParseUint(p[i+3:i+3+end], base, 32)
		if err != nil || v > max {
			return 0, 0, c.errAt("character code point value in \\x{} or \\o{} is too large", i+3+end)
		}
		if v >= 0xd800 && v <= 0xdfff {
			return 0, 0, c.errAt("disallowed Unicode code point (>= 0xd800 && <= 0xdfff)", i+3+end)
		}
		return rune(v), i + 3 + end, nil
	}
	if base == 8 {
		return 0, 0, c.errAt("missing opening brace after \\o", c.at(i+2, i+1))
	}
	j := i + 2
	for j < len(p) && j < i+4 && strings.IndexByte("0123456789abcdefABCDEF", p[j]) >= 0 {
		j++
	}
	v, _ := strconv.ParseUint("0"+p[i+2:j], 16, 32)
	return rune(v), j - 1, nil
}

// reference resolves \k<n> \k'n' \k{n} \g{n} \gN \g{-N} \g-N at p[i] to a
// group number.
func (c *pcreConv) reference(i int) (int, int, error) {
	p := c.p
	j := i + 2
	if j >= len(p) {
		return 0, 0, c.errAt("a numbered reference must not be zero", j)
	}
	var name string
	var end int
	switch open := p[j]; open {
	case '<', '\'', '{':
		closer := map[byte]byte{'<': '>', '\'': '\'', '{': '}'}[open]
		k := strings.IndexByte(p[j+1:], closer)
		if k < 0 {
			return 0, 0, c.errAt("syntax error in subpattern name (missing terminator?)", len(p))
		}
		name, end = p[j+1:j+1+k], j+1+k
	default:
		k := j
		if k < len(p) && p[k] == '-' {
			k++
		}
		for k < len(p) && p[k] >= '0' && p[k] <= '9' {
			k++
		}
		name, end = p[j:k], k-1
	}
	if c.names == nil { // first pass: names are not known yet
		return 1, end, nil
	}
	if n, err := strconv.Atoi(name); err == nil && p[i+1] == 'g' {
		if n < 0 {
			n = len(c.groups) + 1 + n
		}
		if n <= 0 || n > c.ngroups {
			return 0, 0, c.errAt("reference to non-existent subpattern", j+1)
		}
		return n, end, nil
	}
	n, ok := c.names[name]
	if !ok {
		return 0, 0, c.errAt("reference to non-existent subpattern", c.at(j+1, end))
	}
	return n, end, nil
}

// group handles "(" at p[i] and returns the index of the last byte consumed.
func (c *pcreConv) group(i int) (int, error) {
	p := c.p
	rest := p[i+1:]
	open := func(text string, capture bool, name string) {
		c.stack = append(c.stack, openGroup{out: len(c.out), pat: i, lookbehind: strings.HasPrefix(text, "(?<"), ext: c.ext})
		c.out = append(c.out, text...)
		if capture {
			c.groups = append(c.groups, name)
		}
		c.atom, c.quant = -1, 0
	}
	switch {
	case len(rest) > 1 && rest[0] == '*' && rest[1] >= 'A' && rest[1] <= 'Z':
		return 0, unsupported(p, "(*")
	case !strings.HasPrefix(rest, "?"):
		open("(", true, "")
		return i, nil
	case strings.HasPrefix(rest, "?#"):
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			return 0, c.errAt("missing ) after (?# comment", len(p))
		}
		return i + 1 + end, nil
	case strings.HasPrefix(rest, "?P<"), strings.HasPrefix(rest, "?<") && !strings.HasPrefix(rest, "?<=") && !strings.HasPrefix(rest, "?<!"),
		strings.HasPrefix(rest, "?'"):
		start, term := i+3, byte('>')
		if rest[1] == 'P' {
			start = i + 4
		} else if rest[1] == '\'' {
			term = '\''
		}
		k := start
		for k < len(p) && isWordByte(p[k]) {
			k++
		}
		name := p[start:k]
		switch {
		case name != "" && name[0] >= '0' && name[0] <= '9':
			return 0, c.errAt("subpattern name must start with a non-digit", start)
		case k >= len(p) || p[k] != term || name == "":
			return 0, c.errAt("syntax error in subpattern name (missing terminator?)", k)
		case len(name) > 32:
			return 0, c.errAt("subpattern name is too long (maximum 32 code units)", k)
		}
		for _, g := range c.groups {
			if g == name && !c.opt.DupNames {
				return 0, c.errAt("two named subpatterns have the same name (PCRE2_DUPNAMES not set)", c.at(k+1, k))
			}
		}
		open("(", true, name)
		return k, nil
	case strings.HasPrefix(rest, "?P="), strings.HasPrefix(rest, "?P>"), strings.HasPrefix(rest, "?&"):
		skip := 3
		if rest[1] == '&' {
			skip = 2
		}
		start := i + 1 + skip
		k := strings.IndexByte(p[start:], ')')
		if k < 0 {
			return 0, c.errAt("syntax error in subpattern name (missing terminator?)", len(p))
		}
		name := p[start : start+k]
		if c.names != nil {
			if _, ok := c.names[name]; !ok {
				return 0, c.errAt("reference to non-existent subpattern", c.at(start, start+k))
			}
		}
		if rest[1] != 'P' || rest[2] != '=' {
			if c.names == nil {
				return start + k, nil // the second pass checks the name first
			}
			return 0, unsupported(p, "(?"+rest[1:skip])
		}
		st := len(c.out)
		if c.names != nil {
			c.out = append(c.out, "(?:\\"+strconv.Itoa(c.names[name])+")"...)
		}
		c.item(st)
		return start + k, nil
	case strings.HasPrefix(rest, "?|"):
		return 0, unsupported(p, "(?|")
	case len(rest) > 1 && (rest[1] == 'R' || rest[1] >= '0' && rest[1] <= '9' || rest[1] == '+' || rest[1] == '-' && len(rest) > 2 && rest[2] >= '0' && rest[2] <= '9'):
		return 0, unsupported(p, "(?"+rest[1:2])
	case strings.HasPrefix(rest, "?("):
		return c.conditional(i)
	case strings.HasPrefix(rest, "?:"), strings.HasPrefix(rest, "?="), strings.HasPrefix(rest, "?!"),
		strings.HasPrefix(rest, "?<="), strings.HasPrefix(rest, "?<!"), strings.HasPrefix(rest, "?>"):
		n := 3
		if strings.HasPrefix(rest, "?<") {
			n = 4
		}
		open(p[i:i+n], false, "")
		return i + n - 1, nil
	}
	// inline options: (?imsxnU-imsx) or (?imsx-imsx: ...)
	letters := "imsxnU-^J"
	if c.opt.PCRE1 {
		letters = "imsxJUX-"
	}
	k := i + 2
	for k < len(p) && strings.IndexByte(letters, p[k]) >= 0 {
		k++
	}
	if k >= len(p) && c.opt.PCRE1 {
		return 0, c.errAt("unrecognized character after (? or (?-", len(p))
	}
	if k >= len(p) {
		return 0, c.errAt("missing closing parenthesis", len(p))
	}
	if p[k] != ')' && p[k] != ':' {
		return 0, c.errAt("unrecognized character after (? or (?-", k)
	}
	// x is applied here (whitespace and comments are dropped), so regexp2
	// gets the other letters only.
	ext, on := c.ext, true
	var keep []byte
	for _, l := range []byte(p[i+2 : k]) {
		switch l {
		case '-':
			on = false
		case '^': // PCRE2: unset imnsx
			ext = false
		case 'x':
			ext = on
			continue
		}
		keep = append(keep, l)
	}
	opts := strings.TrimSuffix(string(keep), "-")
	if p[k] == ':' {
		open("(?"+opts+":", false, "")
		c.ext = ext
		return k, nil
	}
	if opts != "" {
		c.out = append(c.out, "(?"+opts+")"...)
	}
	c.ext = ext
	c.atom, c.quant = -1, 0
	return k, nil
}

// conditional handles "(?(cond)yes|no)" at p[i]: cond is a group number,
// <name>, 'name' or a bare name (an assertion condition is unsupported).
func (c *pcreConv) conditional(i int) (int, error) {
	p := c.p
	k := strings.IndexByte(p[i+3:], ')')
	if k < 0 {
		return 0, c.errAt("missing closing parenthesis", len(p))
	}
	cond := p[i+3 : i+3+k]
	if strings.HasPrefix(cond, "?") {
		return 0, unsupported(p, "(?(?")
	}
	name := strings.Trim(cond, "<>'")
	n, err := strconv.Atoi(name)
	if c.names != nil {
		switch {
		case err == nil && (n < 1 || n > c.ngroups):
			return 0, c.errAt("reference to non-existent subpattern", c.at(i+2, i+3+k+1))
		case err != nil:
			var ok bool
			if n, ok = c.names[name]; !ok {
				return 0, c.errAt("reference to non-existent subpattern", c.at(i+3+len(cond)-len(strings.TrimLeft(cond, "<'")), i+3+k+1))
			}
		}
	}
	c.stack = append(c.stack, openGroup{out: len(c.out), pat: i, ext: c.ext})
	c.out = append(c.out, "(?("+strconv.Itoa(n)+")"...)
	c.atom, c.quant = -1, 0
	return i + 3 + k, nil
}

// byteClasses: PCRE's \d \w \s \h \v \N without UTF (bytes, C locale);
// bytes >= 0x80 are written as the private-use runes byteRunes maps them to.
var byteClasses = map[byte]string{
	'd': `[0-9]`, 'D': `[^0-9]`,
	'w': `[0-9A-Za-z_]`, 'W': `[^0-9A-Za-z_]`,
	's': `[\t\n\x0b\f\r ]`, 'S': `[^\t\n\x0b\f\r ]`,
	'h': `[\t \uF7A0]`, 'H': `[^\t \uF7A0]`,
	'v': `[\n\x0b\f\r\uF785]`, 'V': `[^\n\x0b\f\r\uF785]`,
	'N': `[^\n]`,
}

// utfClasses: the same in UTF-8 mode, where \h and \v know the Unicode
// spaces and line breaks (\d \w \s stay ASCII: PCRE_UCP is not set).
var utfClasses = map[byte]string{
	'd': `[0-9]`, 'D': `[^0-9]`,
	'w': `[0-9A-Za-z_]`, 'W': `[^0-9A-Za-z_]`,
	's': `[\t\n\x0b\f\r ]`, 'S': `[^\t\n\x0b\f\r ]`,
	'h': "[" + utfHSpace + "]", 'H': "[^" + utfHSpace + "]",
	'v': "[" + utfVSpace + "]", 'V': "[^" + utfVSpace + "]",
	'N': `[^\n]`,
}

const (
	utfHSpace = `\t \u00A0\u1680\u180E\u2000-\u200A\u202F\u205F\u3000`
	utfVSpace = `\n\x0b\f\r\u0085\u2028\u2029`
)

// classes returns the escape classes of c's mode.
func (c *pcreConv) classes() map[byte]string {
	if c.opt.UTF8 {
		return utfClasses
	}
	return byteClasses
}

// classBody returns the set of \d \w \s \h \v for use inside a bracket
// expression.
func (c *pcreConv) classBody(e byte) string {
	set := c.classes()[e]
	return set[1 : len(set)-1]
}

// appendLiteral appends character r as a literal for regexp2: a byte (those
// >= 0x80 as the private-use rune byteRunes maps them to) or, in UTF-8 mode,
// a code point.
func (c *pcreConv) appendLiteral(out []byte, r rune) []byte {
	switch {
	case r >= utf8.RuneSelf && c.opt.UTF8:
		return utf8.AppendRune(out, r)
	case r >= utf8.RuneSelf:
		return append(out, fmt.Sprintf(`\u%04X`, byteRune(byte(r)))...)
	case r < 0x20:
		return append(out, fmt.Sprintf(`\x%02x`, r)...)
	case strings.IndexByte(`\.+*?()|[]{}^$-`, byte(r)) >= 0:
		return append(out, '\\', byte(r))
	}
	return append(out, byte(r))
}

// posixClasses maps PCRE's [:name:] to ASCII ranges (C locale).
var posixClasses = map[string]string{
	"alpha":  `a-zA-Z`,
	"digit":  `0-9`,
	"alnum":  `a-zA-Z0-9`,
	"upper":  `A-Z`,
	"lower":  `a-z`,
	"space":  `\t\n\x0b\f\r `,
	"blank":  `\t `,
	"xdigit": `0-9A-Fa-f`,
	"word":   `0-9A-Za-z_`,
	"punct":  `!-/:-@\[-` + "`" + `{-~`,
	"cntrl":  `\x00-\x1f\x7f`,
	"print":  `\x20-\x7e`,
	"graph":  `\x21-\x7e`,
	"ascii":  `\x00-\x7f`,
}

// classItem is one element of a bracket expression.
type classItem struct {
	text  string // regexp2 text
	neg   string // for a negated set (\D, [:^alpha:]): the set it excludes
	value int    // byte value of a single character, -1 for a set (\d, [:alpha:])
	off   int    // offset of its first byte in the pattern
	end   int    // offset of its last byte
}

// class converts the bracket expression at p[i] == '[' and returns the
// index of its closing ']'.
func (c *pcreConv) class(i int) (int, error) {
	p := c.p
	j := i + 1
	negated := j < len(p) && p[j] == '^'
	if negated {
		j++
	}
	first := true
	var items []classItem
	for ; j < len(p); j++ {
		ch := p[j]
		if ch == ']' && !first {
			break
		}
		first = false
		it, err := c.classAtom(j)
		if err != nil {
			return 0, err
		}
		j = it.end
		// a range "x-y"
		if j+2 < len(p) && p[j+1] == '-' && p[j+2] != ']' {
			if it.value < 0 && c.opt.PCRE1 { // PCRE 8.x: [\d-z] holds a literal "-"
				items = append(items, it, classItem{text: `\-`, value: '-'})
				j++
				continue
			}
			if it.value < 0 {
				return 0, c.errAt("invalid range in character class", j+1)
			}
			hi, err := c.classAtom(j + 2)
			if err != nil {
				return 0, err
			}
			if hi.value < 0 {
				if p[hi.off] == '[' { // a POSIX class
					return 0, c.errAt("invalid range in character class", c.at(hi.off+1, hi.off))
				}
				return 0, c.errAt("invalid range in character class", c.at(hi.end+1, hi.end))
			}
			if hi.value < it.value {
				return 0, c.errAt("range out of order in character class", hi.end)
			}
			items = append(items, classItem{text: it.text + "-" + hi.text, value: -1})
			j = hi.end
			continue
		}
		items = append(items, it)
	}
	if j >= len(p) {
		return 0, c.errAt("missing terminating ] for character class", len(p))
	}
	c.out = append(c.out, classText(items, negated)...)
	return j, nil
}

// classText renders a class. Negated sets inside it (\D, [:^alpha:]) are
// expressed with alternation or lookahead, so that they keep PCRE's byte
// meaning: [A\D] is (?:[A]|[^0-9]) and [^A\D] is (?![A])[0-9].
func classText(items []classItem, negated bool) string {
	var pos strings.Builder
	var negs []string
	for _, it := range items {
		if it.neg != "" {
			negs = append(negs, it.neg)
			continue
		}
		pos.WriteString(it.text)
	}
	caret := ""
	if negated {
		caret = "^"
	}
	if len(negs) == 0 {
		return "[" + caret + pos.String() + "]"
	}
	var b strings.Builder
	if !negated {
		b.WriteString("(?:")
		if pos.Len() > 0 {
			b.WriteString("[" + pos.String() + "]|")
		}
		for k, n := range negs {
			if k > 0 {
				b.WriteByte('|')
			}
			b.WriteString("[^" + n + "]")
		}
		b.WriteByte(')')
		return b.String()
	}
	b.WriteString("(?:")
	if pos.Len() > 0 {
		b.WriteString("(?![" + pos.String() + "])")
	}
	for _, n := range negs[:len(negs)-1] {
		b.WriteString("(?=[" + n + "])")
	}
	b.WriteString("[" + negs[len(negs)-1] + "])")
	return b.String()
}

// classAtom reads one character or set inside a class at p[j].
func (c *pcreConv) classAtom(j int) (classItem, error) {
	p := c.p
	ch := p[j]
	lit := func(v rune, end int) classItem {
		return classItem{text: string(c.appendLiteral(nil, v)), value: int(v), off: j, end: end}
	}
	switch ch {
	case '[':
		if j+1 < len(p) && (p[j+1] == ':' || p[j+1] == '.' || p[j+1] == '=') {
			term := string(p[j+1]) + "]"
			if end := strings.Index(p[j+2:], term); end >= 0 {
				name := p[j+2 : j+2+end]
				if p[j+1] != ':' {
					return classItem{}, c.errAt("POSIX collating elements are not supported", j)
				}
				neg := strings.HasPrefix(name, "^")
				r, ok := posixClasses[strings.TrimPrefix(name, "^")]
				if !ok {
					return classItem{}, c.errAt("unknown POSIX class name", j+2)
				}
				if neg {
					return classItem{neg: r, value: -1, off: j, end: j + 2 + end + 1}, nil
				}
				return classItem{text: r, value: -1, off: j, end: j + 2 + end + 1}, nil
			}
		}
		return lit('[', j), nil
	case '\\':
		if j+1 >= len(p) {
			return classItem{}, c.errAt("\\ at end of pattern", len(p))
		}
		e := p[j+1]
		if v, ok := c.jsEscape(j); ok {
			return lit(v, j+5), nil
		}
		switch e {
		case 'd', 'w', 's', 'h', 'v':
			return classItem{text: c.classBody(e), value: -1, off: j, end: j + 1}, nil
		case 'D', 'W', 'S', 'H', 'V':
			return classItem{neg: c.classBody(e + 'a' - 'A'), value: -1, off: j, end: j + 1}, nil
		case 'x', 'o':
			v, end, err := c.codeEscape(j)
			if err != nil {
				return classItem{}, err
			}
			return lit(v, end), nil
		case 'n':
			return lit('\n', j+1), nil
		case 't':
			return lit('\t', j+1), nil
		case 'r':
			return lit('\r', j+1), nil
		case 'f':
			return lit('\f', j+1), nil
		case 'e':
			return lit(0x1b, j+1), nil
		case 'a':
			return lit(0x07, j+1), nil
		case 'b':
			return lit(0x08, j+1), nil
		case 'Q':
			end := strings.Index(p[j+2:], `\E`)
			s, last := p[j+2:], len(p)-1
			if end >= 0 {
				s, last = p[j+2:j+2+end], j+2+end+1
			}
			var t []byte
			for k := 0; k < len(s); {
				r, n := c.char(s, k)
				t = c.appendLiteral(t, r)
				k += n
			}
			return classItem{text: string(t), value: -1, off: j, end: last}, nil
		case 'p', 'P':
			end := propEnd(p, j)
			name, positive, high := property(p[j:end+1], c.opt.UTF8)
			if c.opt.PCRE1 && !pcre1Property(name) {
				return classItem{}, c.errAt("unknown property after \\P or \\p", end)
			}
			if positive {
				return classItem{text: `\p` + name + high, value: -1, off: j, end: end}, nil
			}
			// \P{X}: neither X's ASCII members nor its bytes >= 0x80
			return classItem{neg: `\p` + name + high, value: -1, off: j, end: end}, nil
		}
		if e >= '0' && e <= '7' {
			v, end := octal(p, j+1, 3)
			if v > 0xff && !c.opt.UTF8 {
				return classItem{}, c.errAt("octal value is greater than \\377 in 8-bit non-UTF-8 mode", end+1)
			}
			return lit(rune(v), end), nil
		}
		r, n := c.char(p, j+1)
		return lit(r, j+n), nil
	}
	r, n := c.char(p, j)
	return lit(r, j+n-1), nil
}

// isPCRESpace reports whether extended mode skips c: PCRE's white space in
// the C locale (never a byte >= 0x80, not even in UTF-8 mode).
func isPCRESpace(c byte) bool {
	return c == ' ' || c >= '\t' && c <= '\r'
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// jsEscape reads \uHHHH at p[i] in JavaScript mode: the code point, and
// whether it is one (PCRE_JAVASCRIPT_COMPAT).
func (c *pcreConv) jsEscape(i int) (rune, bool) {
	p := c.p
	if !c.opt.JavaScript || p[i+1] != 'u' || i+6 > len(p) {
		return 0, false
	}
	v, err := strconv.ParseUint(p[i+2:i+6], 16, 32)
	if err != nil || strings.ContainsAny(p[i+2:i+6], "+-") {
		return 0, false
	}
	return rune(v), true
}
