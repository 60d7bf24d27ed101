package vars

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
)

type varKind uint8

const (
	kindBuiltin varKind = iota // value from a getter over the request
	kindSet                    // `set $x`, named captures: one slot per request
	kindMap                    // `map ... $x`: evaluated lazily, cached in a slot
	kindPrefix                 // $http_*, $arg_*, ...: built on first use of a name
	kindCached                 // a built-in whose first value stays for the request, in a slot
)

// varDef describes one variable known at load time.
type varDef struct {
	name       string
	kind       varKind
	get        func(r *Request) (string, bool)
	set        func(r *Request, v string, ok bool) // changeable built-ins ($args)
	changeable bool
	slot       int
	m          *Map
	// setDeclared: declared by `set`; a slot never written then reads as ""
	// (nginx's "using uninitialized variable"). A variable declared only as
	// a regex named capture reads as not found until a match sets it.
	setDeclared bool
	// indexed: the configuration names the variable (a template, `set`,
	// auth_request_set ...), as nginx's ngx_http_get_variable_index makes
	// it an indexed variable. nginx keeps the values of indexed variables
	// only (a map, $secure_link): one read by name alone (SSI echo,
	// ngx.var) and named nowhere in the configuration is computed at
	// every read.
	indexed bool
	// logDirect: an access-log line reads the value itself (builtin)
	logDirect bool
}

// Registry holds every variable a configuration may use: nginx's built-ins,
// the prefix families ($http_*, $sent_http_*, $cookie_*, $arg_*,
// $upstream_http_*, $upstream_cookie_*), `set` variables, regex named
// captures and `map` variables. Names are case-insensitive, as in nginx.
//
// A Registry is built at load time by one goroutine; once templates are
// compiled it is only read and may be shared by any number of requests.
type Registry struct {
	defs   map[string]*varDef
	nslots int
	// dyn caches prefix variables first named at request time (ngx.var.x
	// from Lua), bounded by maxDynamic.
	dyn  sync.Map // string -> *varDef
	ndyn atomic.Int32
}

// maxDynamic bounds the request-time cache of prefix variables.
const maxDynamic = 4096

// NewRegistry returns a registry holding nginx's built-in variables.
func NewRegistry() *Registry {
	g := &Registry{defs: make(map[string]*varDef, len(builtins)+16)}
	for name, b := range builtins {
		d := &varDef{name: name, kind: kindBuiltin, get: b.get, set: b.set, changeable: b.set != nil, logDirect: b.logDirect}
		if b.cached {
			d.kind, d.slot = kindCached, g.nslots
			g.nslots++
		}
		g.defs[name] = d
	}
	return g
}

// Declare declares a variable written by `set $name` (or a regex named
// capture). Declaring twice is fine. A built-in that is not changeable gives
// nginx's error `the duplicate "uri" variable`; a changeable built-in
// ($args, $limit_rate) stays built-in, and a prefix name such as $http_x
// becomes an ordinary variable that hides the header once set, and reads
// the header until then, as in nginx.
func (g *Registry) Declare(name string) error {
	return g.declare(name, true)
}

// DeclareCapture declares the variable of a regex named capture
// ((?<name>...) in a location, if, rewrite, server_name or map regex).
// Unlike a `set` variable it reads as not found (nil in ngx.var) until a
// match sets it. Declaring a name with both is fine.
func (g *Registry) DeclareCapture(name string) error {
	return g.declare(name, false)
}

func (g *Registry) declare(name string, set bool) error {
	name = strings.ToLower(name)
	if d, ok := g.defs[name]; ok {
		if !d.changeable {
			return fmt.Errorf("the duplicate \"%s\" variable", name)
		}
		d.setDeclared = d.setDeclared || set
		return nil
	}
	// a prefix name ($http_x) read where nothing set it reads as the
	// prefix variable (nginx 1.22: rewrite_set.t, "set in other context")
	g.defs[name] = &varDef{name: name, kind: kindSet, changeable: true, slot: g.nslots, setDeclared: set,
		get: prefixGetter(name)}
	g.nslots++
	return nil
}

// DeclareMap makes $name the result of m. The name may have been declared
// before with Declare (a pre-pass); a built-in name gives `the duplicate
// "x" variable`.
func (g *Registry) DeclareMap(name string, m *Map) error {
	name = strings.ToLower(name)
	d, ok := g.defs[name]
	if ok && (d.kind == kindBuiltin || d.kind == kindCached) && (!d.changeable || name != "uid_reset") {
		return fmt.Errorf("the duplicate \"%s\" variable", name)
	}
	if !ok {
		d = &varDef{name: name, slot: g.nslots}
		g.nslots++
		g.defs[name] = d
	} else if d.kind == kindBuiltin {
		// $uid_reset: the map replaces the built-in, and needs a slot
		d.slot = g.nslots
		g.nslots++
		d.get, d.set = nil, nil
	}
	d.kind, d.m, d.changeable = kindMap, m, true
	return nil
}

// DeclareGeo makes $name the value of a geo table, as DeclareMap does.
func (g *Registry) DeclareGeo(name string, geo *Geo) error {
	return g.DeclareMap(name, &Map{geo: geo})
}

// DeclareSplit makes $name the value of a split_clients table, as
// DeclareMap does.
func (g *Registry) DeclareSplit(name string, s *Split) error {
	return g.DeclareMap(name, &Map{split: s})
}

// lookup returns the definition of name (lower case), creating prefix
// variables on first use, for a reference in the configuration (which
// makes it indexed).
func (g *Registry) lookup(name string) *varDef {
	if d, ok := g.defs[name]; ok {
		d.indexed = true
		return d
	}
	get := prefixGetter(name)
	if get == nil {
		return nil
	}
	d := &varDef{name: name, kind: kindPrefix, get: get, indexed: true}
	if strings.HasPrefix(name, "sent_http_") || strings.HasPrefix(name, "sent_trailer_") {
		// nginx does not mark these not cacheable: the first value read
		// stays for the request (and its subrequests, which share it)
		d.kind, d.slot = kindCached, g.nslots
		g.nslots++
	}
	g.defs[name] = d
	return d
}

// findDef is lookup for request time: it never writes to the registry (which
// requests share), building a throw-away definition for a prefix name.
func (g *Registry) findDef(name string) *varDef {
	if d, ok := g.defs[name]; ok {
		return d
	}
	if d, ok := g.dyn.Load(name); ok {
		return d.(*varDef)
	}
	get := prefixGetter(name)
	if get == nil {
		return nil
	}
	d := &varDef{name: name, kind: kindPrefix, get: get}
	if g.ndyn.Load() < maxDynamic {
		if _, loaded := g.dyn.LoadOrStore(name, d); !loaded {
			g.ndyn.Add(1)
		}
	}
	return d
}

// Known reports whether $name may be used in a template.
func (g *Registry) Known(name string) bool {
	return g.findDef(strings.ToLower(name)) != nil
}

// Var returns a compiled reference for `set $name` (and set_by_lua). The name
// must be declared (or be a changeable built-in such as $args): otherwise the
// error is `unknown "x" variable`, or `the duplicate "x" variable` for a
// built-in that cannot be written.
func (g *Registry) Var(name string) (VarRef, error) {
	lname := strings.ToLower(name)
	d := g.lookup(lname)
	if d == nil {
		return VarRef{}, fmt.Errorf("unknown \"%s\" variable", lname)
	}
	if !d.changeable || d.kind == kindPrefix {
		return VarRef{}, fmt.Errorf("the duplicate \"%s\" variable", lname)
	}
	return VarRef{d: d}, nil
}

// VarRef is a compiled reference to one writable variable.
type VarRef struct{ d *varDef }

// Name returns the variable's name (lower case), "" for the zero VarRef.
func (v VarRef) Name() string {
	if v.d == nil {
		return ""
	}
	return v.d.name
}

// Set stores value, as `set $x value` does. A zero VarRef does nothing.
func (v VarRef) Set(r *Request, value string) {
	if v.d != nil {
		r.store(v.d, value, true)
	}
}

// Get reads the variable like a template would (not found reads as "").
func (v VarRef) Get(r *Request) string {
	if v.d == nil {
		return ""
	}
	s, _ := r.value(v.d)
	return s
}

// Template is a compiled nginx value with variables ("$host:$server_port",
// "${x}y", "$1"). Compile once at load time; Eval does no parsing.
type Template struct {
	raw    string
	parts  []tpart
	litLen int
	// twoPass: the template reads captures and a map; nginx computes every
	// variable (a map regex may replace the captures) before copying any
	// capture, so captures read after the variables.
	twoPass bool
}

type tpart struct {
	lit     string
	capture int  // 1..9 for $1..$9, 0 for none
	inArgs  bool // a capture after a literal "?" (rewrite escapes it)
	v       *varDef
}

// ErrInvalidVariableName is nginx's message for "$" not followed by a name.
var ErrInvalidVariableName = errors.New("invalid variable name")

// CompileLog is Compile for a log_format: the names the log module
// computes itself ($bytes_sent, $body_bytes_sent: logDirect) do not become
// indexed by it, as nginx's log module does not index them, so that their
// value is kept only where another directive names them.
func (g *Registry) CompileLog(text string) (*Template, error) {
	var was []*varDef
	for _, name := range [...]string{"bytes_sent", "body_bytes_sent"} {
		if d := g.defs[name]; d != nil && d.logDirect && !d.indexed {
			was = append(was, d)
		}
	}
	t, err := g.Compile(text)
	for _, d := range was {
		d.indexed = false
	}
	return t, err
}

// Compile compiles text. Errors use nginx's words: `invalid variable name`,
// `the closing bracket in "x" variable is missing`, `unknown "x" variable`
// (nginx prints the last one without a file and line, after reading the
// whole configuration; declare every `set`/`map`/named capture first).
func (g *Registry) Compile(text string) (*Template, error) {
	t := &Template{raw: text}
	var lit strings.Builder
	inArgs := false
	flush := func() {
		if lit.Len() > 0 {
			inArgs = inArgs || strings.Contains(lit.String(), "?")
			t.parts = append(t.parts, tpart{lit: lit.String()})
			t.litLen += lit.Len()
			lit.Reset()
		}
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c != '$' {
			lit.WriteByte(c)
			continue
		}
		i++
		if i == len(text) {
			return nil, ErrInvalidVariableName
		}
		if text[i] >= '1' && text[i] <= '9' {
			flush()
			t.parts = append(t.parts, tpart{capture: int(text[i] - '0'), inArgs: inArgs})
			continue
		}
		bracket := false
		if text[i] == '{' {
			bracket = true
			i++
		}
		start := i
		for i < len(text) && isWordByte(text[i]) {
			i++
		}
		name := text[start:i]
		if bracket {
			if i >= len(text) || text[i] != '}' {
				return nil, fmt.Errorf("the closing bracket in \"%s\" variable is missing", name)
			}
		}
		if name == "" {
			return nil, ErrInvalidVariableName
		}
		if !bracket {
			i-- // the loop's i++ moves to the byte after the name
		}
		lname := strings.ToLower(name)
		d := g.lookup(lname)
		if d == nil {
			return nil, fmt.Errorf("unknown \"%s\" variable", lname)
		}
		flush()
		t.parts = append(t.parts, tpart{v: d})
	}
	flush()
	var caps, maps bool
	for _, p := range t.parts {
		caps = caps || p.capture != 0
		maps = maps || p.v != nil && p.v.kind != kindBuiltin
	}
	t.twoPass = caps && maps
	return t, nil
}

// MustCompile is Compile that panics on error.
func (g *Registry) MustCompile(text string) *Template {
	t, err := g.Compile(text)
	if err != nil {
		panic(err)
	}
	return t
}

// String returns the text the template was compiled from.
func (t *Template) String() string { return t.raw }

// Const returns the template's value when it holds no variable or capture.
func (t *Template) Const() (string, bool) {
	switch len(t.parts) {
	case 0:
		return "", true
	case 1:
		if t.parts[0].v == nil && t.parts[0].capture == 0 {
			return t.parts[0].lit, true
		}
	}
	return "", false
}

// HasCaptures reports whether the template uses $1..$9.
func (t *Template) HasCaptures() bool {
	for _, p := range t.parts {
		if p.capture != 0 {
			return true
		}
	}
	return false
}

// Eval returns the template's value for r. Variables that are not found
// (and captures that did not take part) read as "", as in nginx.
func (t *Template) Eval(r *Request) string {
	switch len(t.parts) {
	case 0:
		return ""
	case 1:
		return r.part(&t.parts[0])
	}
	if t.twoPass {
		return t.evalTwoPass(r)
	}
	var b strings.Builder
	b.Grow(t.litLen + 16*len(t.parts))
	for i := range t.parts {
		b.WriteString(r.part(&t.parts[i]))
	}
	return b.String()
}

// EvalRewrite evaluates a rewrite replacement. With escape set (nginx does
// it when the request path held a %XX escape or a "+", see QuotedURI),
// captures that come after the replacement's "?" are escaped with
// EscapeArgs, as nginx's rewrite does.
func (t *Template) EvalRewrite(r *Request, escape bool) string {
	if !escape {
		return t.Eval(r)
	}
	return t.evalEscaped(r, func(p *tpart) bool { return p.inArgs })
}

// EvalRedirect evaluates the replacement of a rewrite that redirects, as
// nginx's regex codes do: with escape set (see QuotedURI) every capture is
// escaped with EscapeArgs (e->quote), and then the whole value goes
// through UnescapeRedirect (ngx_http_script_regex_end_code). The request's
// arguments, when kept, are added after that by the caller.
func (t *Template) EvalRedirect(r *Request, escape bool) string {
	var s string
	if escape {
		s = t.evalEscaped(r, func(p *tpart) bool { return p.capture != 0 })
	} else {
		s = t.Eval(r)
	}
	return UnescapeRedirect(s)
}

// evalEscaped is Eval with the parts for which esc reports true escaped
// with EscapeArgs.
func (t *Template) evalEscaped(r *Request, esc func(*tpart) bool) string {
	vals := make([]string, len(t.parts))
	for pass := 0; pass < 2; pass++ {
		for i := range t.parts {
			p := &t.parts[i]
			// twoPass: captures read after every variable (see Template)
			if t.twoPass && (p.capture != 0) != (pass == 1) || !t.twoPass && pass == 1 {
				continue
			}
			vals[i] = r.part(p)
			if esc(p) {
				vals[i] = EscapeArgs(vals[i])
			}
		}
	}
	return strings.Join(vals, "")
}

// LiteralQuery reports whether the template's text holds a "?" outside
// its variables: nginx then adds a rewrite's kept arguments with "&", else
// with "?" (sc->args), whatever the variables' values hold.
func (t *Template) LiteralQuery() bool {
	for _, p := range t.parts {
		if p.capture == 0 && p.v == nil && strings.Contains(p.lit, "?") {
			return true
		}
	}
	return false
}

// QuotedURI reports whether a raw request path makes nginx escape rewrite
// captures (r->quoted_uri or r->plus_in_uri).
func QuotedURI(rawPath string) bool {
	return strings.ContainsAny(rawPath, "%+")
}

// EscapeArgs percent-encodes s like nginx's NGX_ESCAPE_ARGS (measured on
// nginx 1.22): controls, space, non-ASCII and "#%&+;<>?\^`{|} are escaped.
func EscapeArgs(s string) string { return Escape(s, argsEscaped) }

// Escape percent-encodes (upper-case hex) every byte of s for which
// escaped reports true, as nginx's ngx_escape_uri does for its tables.
func Escape(s string, escaped func(byte) bool) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if escaped(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		if c := s[i]; escaped(c) {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

func argsEscaped(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return true
	}
	return strings.IndexByte("\"#%&+;<>?\\^`{|}", c) >= 0
}

func (t *Template) evalTwoPass(r *Request) string {
	vals := make([]string, len(t.parts))
	for i := range t.parts {
		if t.parts[i].capture == 0 {
			vals[i] = r.part(&t.parts[i])
		}
	}
	for i := range t.parts {
		if t.parts[i].capture != 0 {
			vals[i] = r.part(&t.parts[i])
		}
	}
	return strings.Join(vals, "")
}

func (r *Request) part(p *tpart) string {
	switch {
	case p.v != nil:
		s, _ := r.value(p.v)
		return s
	case p.capture != 0:
		s, _ := r.caps.Group(p.capture)
		return s
	}
	return p.lit
}

// prefixGetter builds the getter of a prefix variable, or nil.
func prefixGetter(name string) func(r *Request) (string, bool) {
	switch {
	case strings.HasPrefix(name, "http_"):
		return headerGetter(name[5:])
	case strings.HasPrefix(name, "sent_http_"):
		key := headerKey(name[10:])
		if key == "Cache-Control" || key == "Link" {
			// nginx 1.22 keeps these two response headers as lists and
			// joins their values.
			return func(r *Request) (string, bool) {
				var vs []string
				for k, v := range r.RespHeader {
					if k == key || strings.EqualFold(k, key) {
						vs = append(vs, v...) // a name as a hook spelled it too
					}
				}
				return strings.Join(vs, ", "), len(vs) > 0
			}
		}
		return func(r *Request) (string, bool) { return firstHeader(r.RespHeader, key) }
	case strings.HasPrefix(name, "upstream_http_"):
		key := headerKey(name[14:])
		return func(r *Request) (string, bool) { return firstHeader(r.Upstream(), key) }
	case strings.HasPrefix(name, "cookie_"):
		c := name[7:]
		return func(r *Request) (string, bool) {
			if r.HTTP == nil {
				return "", false
			}
			return cookieValue(r.HTTP.Header["Cookie"], c)
		}
	case strings.HasPrefix(name, "upstream_cookie_"):
		c := name[16:]
		return func(r *Request) (string, bool) { return setCookieValue(r.Upstream()["Set-Cookie"], c) }
	case strings.HasPrefix(name, "arg_"):
		a := name[4:]
		return func(r *Request) (string, bool) { return Arg(r.Args, a) }
	case strings.HasPrefix(name, "sent_trailer_"):
		key := headerKey(name[13:])
		return func(r *Request) (string, bool) { return firstHeader(r.SentTrailer, key) }
	case strings.HasPrefix(name, "upstream_trailer_"):
		return func(*Request) (string, bool) { return "", false }
	}
	return nil
}

// oddHeaderValues adds to vs, the values under key, those of the header
// names nginx's $http_name also reads (ngx_http_variable_unknown_header:
// each byte of the name, "-" as "_", equal to the variable's, case
// ignored) that are spelled with other bytes than key's: "x_foo" for
// $http_x_foo. They come after key's own values (nginx 1.22 reads the
// first matching line in request order: the same when one name matches).
func oddHeaderValues(h map[string][]string, key, name string, vs []string) []string {
	for k, v := range h {
		if k == key || len(k) != len(name) || strings.IndexFunc(k, oddNameByte) < 0 {
			continue
		}
		same := true
		for i := 0; i < len(k) && same; i++ {
			c := k[i]
			if c >= 'A' && c <= 'Z' {
				c |= 0x20
			} else if c == '-' {
				c = '_'
			}
			same = c == name[i]
		}
		if same {
			vs = append(vs[:len(vs):len(vs)], v...)
		}
	}
	return vs
}

func oddNameByte(c rune) bool {
	return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-')
}

// headerKey maps the part after "http_" to Go's canonical header key:
// "x_real_ip" -> "X-Real-Ip". Headers whose names hold "_" are dropped by
// nginx by default (ignore_invalid_headers), so "-" is the only match.
func headerKey(s string) string {
	return textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(s, "_", "-"))
}

func headerGetter(s string) func(r *Request) (string, bool) {
	key := headerKey(s)
	sep := ""
	switch key {
	case "Host":
		return func(r *Request) (string, bool) {
			if r.HTTP == nil || r.HTTP.Host == "" {
				return "", false
			}
			return r.HTTP.Host, true
		}
	case "Cookie":
		sep = "; "
	case "X-Forwarded-For":
		sep = ", "
	}
	name := strings.ToLower(s)
	return func(r *Request) (string, bool) {
		if r.HTTP == nil {
			return "", false
		}
		vs := r.HTTP.Header[key]
		if r.OddHeaderNames {
			vs = oddHeaderValues(r.HTTP.Header, key, name, vs)
		}
		switch {
		case len(vs) == 0:
			return "", false
		case len(vs) == 1 || sep == "":
			return vs[0], true
		}
		return strings.Join(vs, sep), true
	}
}

func firstHeader(h map[string][]string, key string) (string, bool) {
	if vs := h[key]; len(vs) > 0 {
		return vs[0], true
	}
	// a name kept as spelled (ngx.header): nginx compares caselessly, and
	// "_" in the name matches the variable's "_" too
	for k, vs := range h {
		if len(vs) > 0 && len(k) == len(key) && k != key && strings.EqualFold(strings.ReplaceAll(k, "_", "-"), key) {
			return vs[0], true
		}
	}
	return "", false
}

// Arg returns the raw (not unescaped) value of argument name in args, like
// nginx's $arg_name: the name matches case-insensitively, must start the
// string or follow "&", and be followed by "="; the first match wins.
func Arg(args, name string) (string, bool) {
	n := len(name)
	for i := 0; i+n < len(args); i++ {
		if (i == 0 || args[i-1] == '&') && args[i+n] == '=' && strings.EqualFold(args[i:i+n], name) {
			v := args[i+n+1:]
			if j := strings.IndexByte(v, '&'); j >= 0 {
				v = v[:j]
			}
			return v, true
		}
	}
	return "", false
}

// cookieValue finds cookie name in Cookie header values like nginx 1.22:
// name case-insensitive, pairs split on ";" or ",", spaces around "="
// skipped, the value runs to the next ";" (trailing spaces kept).
func cookieValue(headers []string, name string) (string, bool) {
	for _, h := range headers {
		s := 0
		for s < len(h) {
			if len(h)-s >= len(name) && strings.EqualFold(h[s:s+len(name)], name) {
				p := s + len(name)
				for p < len(h) && h[p] == ' ' {
					p++
				}
				if p < len(h) && h[p] == '=' {
					p++
					for p < len(h) && h[p] == ' ' {
						p++
					}
					e := p
					for e < len(h) && h[e] != ';' {
						e++
					}
					return h[p:e], true
				}
			}
			for s < len(h) {
				c := h[s]
				s++
				if c == ';' || c == ',' {
					break
				}
			}
			for s < len(h) && h[s] == ' ' {
				s++
			}
		}
	}
	return "", false
}

// setCookieValue is $upstream_cookie_name, as nginx 1.22's
// ngx_http_parse_set_cookie_lines reads the Set-Cookie lines: the first
// line that starts with the name (case ignored), spaces, then "=" (a line
// where another byte follows the name is skipped); its value is what
// follows, spaces around it dropped, up to the first ";".
func setCookieValue(headers []string, name string) (string, bool) {
	for _, h := range headers {
		if len(name) >= len(h) || !strings.EqualFold(h[:len(name)], name) {
			continue
		}
		v := strings.TrimLeft(h[len(name):], " ")
		if v == "" || v[0] != '=' {
			continue
		}
		v = strings.TrimLeft(v[1:], " ")
		if k := strings.IndexByte(v, ';'); k >= 0 {
			v = v[:k]
		}
		return strings.TrimRight(v, " "), true
	}
	return "", false
}

// LogEscape is log_format's escape= parameter: how variable values are
// written into an access-log line.
type LogEscape uint8

const (
	// LogEscapeDefault writes '"', '\\' and bytes below 0x20 or above 0x7E
	// as \xXX, and a variable that is not found as "-".
	LogEscapeDefault LogEscape = iota
	// LogEscapeJSON escapes for a JSON string ('"', '\\', \n \r \t \b \f,
	// other controls as \u00XX); not found writes nothing.
	LogEscapeJSON
	// LogEscapeNone writes values as they are; not found writes nothing.
	LogEscapeNone
)

// AppendLog appends to dst a log_format template evaluated as nginx's log
// module does: the literal text as written, each variable escaped by esc.
// Only a variable that is not found is written "-" (escape=default); an
// empty value that is found ($uri of a bad request, $is_args without
// arguments) writes nothing.
func (t *Template) AppendLog(dst []byte, r *Request, esc LogEscape) []byte {
	b := dst
	for i := range t.parts {
		p := &t.parts[i]
		var s string
		var ok bool
		switch {
		case p.v != nil:
			s, ok = r.logValue(p.v)
		case p.capture != 0:
			s, ok = r.caps.Group(p.capture)
		default:
			b = append(b, p.lit...)
			continue
		}
		switch esc {
		case LogEscapeNone:
			b = append(b, s...)
			continue
		case LogEscapeDefault:
			if !ok {
				b = append(b, '-')
				continue
			}
		}
		b = appendLogEscaped(b, s, esc)
	}
	return b
}

// appendLogEscaped appends s escaped as esc says (Default or JSON): the
// runs of bytes that stay as they are in one append each.
func appendLogEscaped(b []byte, s string, esc LogEscape) []byte {
	const hex = "0123456789ABCDEF"
	changed := &logEscaped[esc]
	for {
		j := 0
		for j < len(s) && !changed[s[j]] {
			j++
		}
		b = append(b, s[:j]...)
		if j == len(s) {
			return b
		}
		c := s[j]
		s = s[j+1:]
		switch {
		case esc == LogEscapeJSON && (c == '"' || c == '\\'):
			b = append(b, '\\', c)
		case esc == LogEscapeJSON:
			if k := strings.IndexByte("\n\r\t\b\f", c); k >= 0 {
				b = append(b, '\\', "nrtbf"[k])
			} else {
				b = append(b, `\u00`...)
				b = append(b, hex[c>>4], hex[c&15])
			}
		default:
			b = append(b, `\x`...)
			b = append(b, hex[c>>4], hex[c&15])
		}
	}
}

// logEscaped tells, for escape=default and escape=json, the bytes that
// appendLogEscaped changes.
var logEscaped = func() (t [LogEscapeNone][256]bool) {
	for c := range 256 {
		t[LogEscapeDefault][c] = c == '"' || c == '\\' || c < 0x20 || c > 0x7e
		t[LogEscapeJSON][c] = c == '"' || c == '\\' || c < 0x20
	}
	return t
}()
