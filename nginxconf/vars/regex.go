package vars

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
	"github.com/dlclark/regexp2/syntax"
)

// MatchTimeout bounds one regexp2 match, standing in for PCRE's match limit
// (which nginx 1.22 hits in about 0.2 s on a catastrophic pattern): Exec
// reports ErrMatchLimit, and nginx's callers answer 500.
const MatchTimeout = 500 * time.Millisecond

// ErrMatchLimit is Exec's error when a match ran past MatchTimeout; nginx
// logs `pcre2_match() failed: -47 on "<subject>" using "<pattern>"`.
var ErrMatchLimit = errors.New("pcre2_match() failed: -47")

// Regex is a compiled nginx regular expression (PCRE syntax, as in
// `location ~`, `if ($x ~ ...)`, `rewrite`, `map` and `server_name ~`).
//
// Matching is byte-wise, like nginx's PCRE without the UTF flag: "." matches
// one byte, bytes >= 0x80 are neither letters nor digits and have no case,
// and captures are byte ranges of the subject, so subjects that are not
// valid UTF-8 (a decoded $uri holding %FF) keep their bytes. Groups are
// numbered left to right, named ones included, as PCRE numbers them.
//
// Known differences from PCRE2: a group repeated with {n,m} whose iteration
// can match the empty string may capture differently (regexp2's empty-loop
// rule); PCRE's match limit is a timeout here (MatchTimeout); \K,
// recursion, branch reset and (*VERB)s are refused at compile time. A
// random differential test (3,300 patterns on nginx) found no other
// difference. CompilePCRE offers the same translator with PCRE's other
// options (UTF-8, extended, ...) to ngx.re.
//
// Two engines: github.com/dlclark/regexp2 (backtracking, lookaround,
// backreferences) always works; Go's regexp is used instead when the pattern
// compiles under RE2 with the same meaning and the subject is ASCII without a
// newline (where "$" semantics and byte/rune matching could differ).
type Regex struct {
	pattern  string
	caseless bool
	std      *regexp.Regexp  // nil when the pattern needs regexp2
	re       *regexp2.Regexp // always set
	ncap     int             // number of capturing groups ($1..$ncap)
	names    []string        // names[i] is the name of group i ("" if unnamed); len ncap+1
	slots    []int           // slots[i] is the regexp2 group number of PCRE group i
	named    []string        // named groups in order
}

// Captures is the result of a successful match: $0 (whole match), $1..$N and
// named groups. It refers to the subject string without copying it.
type Captures struct {
	subject string
	idx     []int // 2*(N+1) byte offsets, -1 for a group that did not take part
	re      *Regex
}

// CompileRegex compiles pattern with PCRE semantics; caseless is nginx's
// "~*". Errors read like nginx's (Debian nginx 1.22 links PCRE2):
//
//	pcre2_compile() failed: missing closing parenthesis in "(abc"
//	pcre2_compile() failed: range out of order in character class in "[z-a]" at "a]"
func CompileRegex(pattern string, caseless bool) (*Regex, error) {
	re2, conv, groups, err := compilePCRE(pattern, PCREOptions{Caseless: caseless})
	if err != nil {
		return nil, err
	}
	x := &Regex{pattern: pattern, caseless: caseless, re: re2, ncap: len(groups)}
	x.names = make([]string, len(groups)+1)
	x.slots = make([]int, len(groups)+1)
	for i, name := range groups {
		x.names[i+1] = name
		x.slots[i+1] = i + 1 // convertPCRE leaves only unnamed groups
		if name != "" {
			x.named = append(x.named, name)
		}
	}
	if stdCompatible(conv) {
		p := conv
		if caseless {
			p = "(?i)" + p
		}
		if std, err := regexp.Compile(p); err == nil && std.NumSubexp() == len(groups) {
			x.std = std
		}
	}
	return x, nil
}

// CompilePCRE compiles a PCRE pattern read with the options o for regexp2
// (see convertPCRE), for regex users other than nginx's `~` (ngx.re).
// groups lists the group names in PCRE order, "" for unnamed groups; the
// regexp2 group number of PCRE group n is n. Without o.UTF8 the regex
// matches the runes ByteRunes makes of a subject, else the subject's code
// points. Its MatchTimeout is MatchTimeout.
func CompilePCRE(pattern string, o PCREOptions) (re *regexp2.Regexp, groups []string, err error) {
	re, _, groups, err = compilePCRE(pattern, o)
	return re, groups, err
}

// compilePCRE is CompilePCRE that also returns the translated pattern.
func compilePCRE(pattern string, o PCREOptions) (*regexp2.Regexp, string, []string, error) {
	conv, groups, err := convertPCRE(pattern, o)
	if err != nil {
		return nil, "", nil, err
	}
	src := conv
	if o.Anchored {
		src = `\G(?:` + src + `)`
	}
	if !o.UTF8 {
		src = byteString(src)
	}
	opts := regexp2.RegexOptions(regexp2.None)
	if o.Caseless {
		opts |= regexp2.IgnoreCase
	}
	if o.Multiline {
		opts |= regexp2.Multiline
	}
	if o.DotAll {
		opts |= regexp2.Singleline
	}
	re, err := regexp2.Compile(src, opts)
	if err != nil {
		return nil, "", nil, pcreError(pattern, err, o)
	}
	re.MatchTimeout = MatchTimeout
	return re, conv, groups, nil
}

// MustCompileRegex is CompileRegex that panics on error, for tests and
// built-in patterns.
func MustCompileRegex(pattern string, caseless bool) *Regex {
	re, err := CompileRegex(pattern, caseless)
	if err != nil {
		panic(err)
	}
	return re
}

// String returns the pattern as written.
func (re *Regex) String() string { return re.pattern }

// Caseless reports whether the regex was compiled for "~*".
func (re *Regex) Caseless() bool { return re.caseless }

// NumCaptures returns the number of capturing groups.
func (re *Regex) NumCaptures() int { return re.ncap }

// Names returns the named groups in order; each becomes a variable $name
// that a successful match sets (nginx adds them at load time).
func (re *Regex) Names() []string { return re.named }

// UsesRE2 reports whether matches may run on Go's regexp engine.
func (re *Regex) UsesRE2() bool { return re.std != nil }

// MatchString reports whether s matches, without building captures.
func (re *Regex) MatchString(s string) bool {
	if re.std != nil && plainASCII(s) {
		return re.std.MatchString(s)
	}
	ok, err := re.re.MatchRunes(byteRunes(s))
	return err == nil && ok
}

// Match matches s and returns its captures. A regexp2 match that exceeds
// MatchTimeout counts as no match; callers that decide access use Exec.
func (re *Regex) Match(s string) (*Captures, bool) {
	c, ok, _ := re.Exec(s)
	return c, ok
}

// Exec is Match that reports a match that ran past MatchTimeout as
// ErrMatchLimit, so that the caller can fail closed as nginx does.
func (re *Regex) Exec(s string) (*Captures, bool, error) {
	if re.std != nil && plainASCII(s) {
		idx := re.std.FindStringSubmatchIndex(s)
		if idx == nil {
			return nil, false, nil
		}
		return &Captures{subject: s, idx: idx, re: re}, true, nil
	}
	m, err := re.re.FindRunesMatch(byteRunes(s))
	if err != nil {
		return nil, false, ErrMatchLimit
	}
	if m == nil {
		return nil, false, nil
	}
	idx := make([]int, 2*(re.ncap+1))
	for i := 0; i <= re.ncap; i++ {
		g := m.GroupByNumber(re.slots[i])
		if g == nil || len(g.Captures) == 0 {
			idx[2*i], idx[2*i+1] = -1, -1
			continue
		}
		// one rune per byte: rune offsets are byte offsets.
		idx[2*i], idx[2*i+1] = g.Index, g.Index+g.Length
	}
	return &Captures{subject: s, idx: idx, re: re}, true, nil
}

// Len returns the number of groups including $0.
func (c *Captures) Len() int {
	if c == nil {
		return 0
	}
	return len(c.idx) / 2
}

// Group returns capture n ($0 is the whole match); false when n is out of
// range or the group did not take part in the match.
func (c *Captures) Group(n int) (string, bool) {
	if c == nil || n < 0 || 2*n+1 >= len(c.idx) || c.idx[2*n] < 0 {
		return "", false
	}
	return c.subject[c.idx[2*n]:c.idx[2*n+1]], true
}

// Named returns the value of the named group name.
func (c *Captures) Named(name string) (string, bool) {
	if c == nil {
		return "", false
	}
	for i, n := range c.re.names {
		if n == name && n != "" {
			return c.Group(i)
		}
	}
	return "", false
}

// Subject returns the string that was matched.
func (c *Captures) Subject() string { return c.subject }

// plainASCII reports whether s is ASCII without a newline: there Go's
// regexp and PCRE agree on every construct stdCompatible lets through.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || c == '\n' {
			return false
		}
	}
	return true
}

// stdCompatible rejects patterns whose meaning differs between RE2 and PCRE
// even when RE2 accepts them: non-ASCII literals (bytes vs runes),
// backslash-digit (octal in RE2, backreference in PCRE), and groups repeated
// with *, + or {n,m}: when an iteration can match the empty string PCRE runs
// one more, empty, iteration and captures "" where RE2 keeps the last
// non-empty one (`(a|)+` on "aa": PCRE $1 = "", RE2 $1 = "a").
func stdCompatible(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] >= utf8.RuneSelf {
			return false
		}
		if p[i] == ')' && i+1 < len(p) && (p[i+1] == '*' || p[i+1] == '+' || p[i+1] == '{') {
			return false
		}
		if p[i] == '\\' && i+1 < len(p) {
			c := p[i+1]
			if c >= '0' && c <= '9' || c == 'Z' || c == 'G' || c == 'C' || c == 'X' || c == 'R' || c == 'h' || c == 'v' || c == 'H' || c == 'V' {
				return false
			}
			i++
		}
	}
	return true
}

// byteRune maps a subject or pattern byte to the rune regexp2 sees: ASCII
// as itself, bytes >= 0x80 to a private-use block, so that they are no
// letters or digits and have no case, as with PCRE without UTF in the C
// locale. One rune per byte keeps offsets equal.
func byteRune(b byte) rune {
	if b < utf8.RuneSelf {
		return rune(b)
	}
	return 0xF700 + rune(b)
}

// ByteRunes returns the runes a regex compiled without UTF8 matches for
// subject s: one per byte, so rune offsets are byte offsets.
func ByteRunes(s string) []rune { return byteRunes(s) }

func byteString(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return string(byteRunes(s))
		}
	}
	return s
}

func byteRunes(s string) []rune {
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = byteRune(s[i])
	}
	return r
}

// RegexError is a regex compile error in nginx's wording.
type RegexError struct {
	Pattern string
	Msg     string // PCRE's message
	Offset  int    // byte offset PCRE reports, or -1 when unknown
	PCRE1   bool   // reported by PCRE 8.x (pcre_compile), not PCRE2
}

// Error formats the error like nginx: pcre2_compile() failed: MSG in "PAT" at "REST".
func (e *RegexError) Error() string {
	fn := "pcre2_compile()"
	if e.PCRE1 {
		fn = "pcre_compile()"
	}
	s := fmt.Sprintf("%s failed: %s in \"%s\"", fn, e.Msg, e.Pattern)
	if e.Offset >= 0 && e.Offset < len(e.Pattern) {
		s += fmt.Sprintf(" at \"%s\"", e.Pattern[e.Offset:])
	}
	return s
}

// pcreErrorAt makes the error PCRE2's message msg at offset off, in PCRE
// 8.x's words when o.PCRE1.
func pcreErrorAt(p, msg string, off int, o PCREOptions) error {
	if o.PCRE1 {
		if m, ok := pcre1Messages[msg]; ok {
			msg = m
		}
	}
	return &RegexError{Pattern: p, Msg: msg, Offset: off, PCRE1: o.PCRE1}
}

// pcre1Messages maps PCRE2's compile error messages to PCRE 8.39's where
// they differ (pcre_compile.c, error_texts).
var pcre1Messages = map[string]string{
	"missing closing parenthesis":                                       "missing )",
	"unmatched closing parenthesis":                                     "unmatched parentheses",
	"quantifier does not follow a repeatable item":                      "nothing to repeat",
	"missing ) after (?# comment":                                       "missing ) after comment",
	"syntax error in subpattern name (missing terminator?)":             "syntax error in subpattern name (missing terminator)",
	"subpattern name must start with a non-digit":                       "group name must start with a non-digit",
	"subpattern name is too long (maximum 32 code units)":               "subpattern name is too long (maximum 32 characters)",
	"two named subpatterns have the same name (PCRE2_DUPNAMES not set)": "two named subpatterns have the same name",
	"character code point value in \\x{} or \\o{} is too large":         "character value in \\x{} or \\o{} is too large",
	"unknown property after \\P or \\p":                                 "unknown property name after \\P or \\p",
	"UTF-8 error: invalid UTF-8 string":                                 "invalid UTF-8 string",
	"missing closing brace in \\x{} or \\o{}":                           "non-hex character in \\x{} (closing brace missing?)",
}

// pcreError translates a regexp2 parse error into PCRE's message.
func pcreError(p string, err error, o PCREOptions) error {
	var se *syntax.Error
	if !errors.As(err, &se) {
		return pcreErrorAt(p, err.Error(), -1, o)
	}
	off := -1
	msg := string(se.Code)
	switch se.Code {
	case syntax.ErrMissingParen:
		msg, off = "missing closing parenthesis", len(p)
	case syntax.ErrUnexpectedParen:
		msg = "unmatched closing parenthesis"
	case syntax.ErrIllegalEndEscape:
		msg, off = "\\ at end of pattern", len(p)
	case syntax.ErrUnknownSlashP, syntax.ErrMalformedSlashP, syntax.ErrIncompleteSlashP:
		msg = "unknown property after \\P or \\p"
	case syntax.ErrInvalidRepeatOp, syntax.ErrMissingRepeatArgument:
		msg = "quantifier does not follow a repeatable item"
	case syntax.ErrInvalidRepeatSize:
		msg = "numbers out of order in {} quantifier"
	case syntax.ErrReversedCharRange:
		msg = "range out of order in character class"
		if len(se.Args) == 2 {
			if k := strings.Index(p, fmt.Sprintf("%c-%c", se.Args...)); k >= 0 {
				off = k + 2
			}
		}
	case syntax.ErrUnterminatedBracket:
		msg, off = "missing terminating ] for character class", len(p)
	case syntax.ErrUnrecognizedGrouping:
		msg = "unrecognized character after (? or (?-"
		if strings.HasSuffix(p, "(?") {
			msg, off = "missing closing parenthesis", len(p)
		} else if k := strings.Index(p, fmt.Sprint("(", se.Args[0])); len(se.Args) == 1 && k >= 0 {
			off = k + 2
		}
	case syntax.ErrUndefinedNameRef, syntax.ErrUndefinedBackRef, syntax.ErrUndefinedReference:
		msg = "reference to non-existent subpattern"
	default:
		msg = fmt.Sprintf(msg, se.Args...)
	}
	return pcreErrorAt(p, msg, off, o)
}
