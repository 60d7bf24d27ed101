package vars

import (
	"fmt"
	"strings"
)

// MapEntry is one "key value;" line of a map block, after nginx's
// unescaping. Key "default" sets the default; a key starting with "~" is a
// regex ("~*" caseless); a leading "\" escapes the key ("\~x", "\default").
type MapEntry struct {
	Key, Value string
}

// MapOptions are the parameter lines of a map block.
type MapOptions struct {
	Hostnames bool // `hostnames;`: keys may be "*.example.com", ".example.com", "www.example.*"
	Volatile  bool // `volatile;`: evaluated on every use instead of once per request
}

// Map is a compiled `map $source $name { ... }` (nginx 1.22 semantics):
// exact keys match case-insensitively; with Hostnames, wildcard keys are
// tried next (longest leading wildcard, then longest trailing one); then the
// regexes in order of appearance (their captures are set, so values may use
// $1 and named captures); else the default ("" without one). Values may hold
// variables. The result is cached per request unless Volatile.
type Map struct {
	source   *Template
	exact    map[string]*Template
	head     map[string]*Template // "*.example.com" -> "example.com"
	dot      map[string]*Template // ".example.com" -> "example.com" (also matches the name itself)
	tail     map[string]*Template // "www.example.*" -> "www.example"
	regexes  []mapRegex
	def      *Template
	volatile bool
	hosts    bool
	geo      *Geo   // a geo block's table, in place of the rest
	split    *Split // a split_clients block's, in place of the rest
}

type mapRegex struct {
	re    *Regex
	value *Template
}

// NewMap compiles a map whose source is the template text source (usually
// "$var", may be "$a:$b"). Regex keys are compiled first and their named
// captures declared in g, so values may use them; then values are compiled.
// Errors use nginx's words (`conflicting parameter "k"`, regex errors,
// variable errors); the caller adds " in file:line".
func NewMap(g *Registry, source string, entries []MapEntry, opts MapOptions) (*Map, error) {
	src, err := g.Compile(source)
	if err != nil {
		return nil, err
	}
	m := &Map{source: src, exact: map[string]*Template{}, volatile: opts.Volatile, hosts: opts.Hostnames}
	type pending struct {
		re    *Regex
		key   string
		val   string
		index int
	}
	var list []pending
	for i, e := range entries {
		k := e.Key
		if strings.HasPrefix(k, "~") {
			caseless := strings.HasPrefix(k, "~*")
			p := k[1:]
			if caseless {
				p = k[2:]
			}
			re, err := CompileRegex(p, caseless)
			if err != nil {
				return nil, &MapEntryError{Index: i, Err: err}
			}
			for _, n := range re.Names() {
				if err := g.DeclareCapture(n); err != nil {
					return nil, &MapEntryError{Index: i, Err: err}
				}
			}
			list = append(list, pending{re: re, val: e.Value, index: i})
			continue
		}
		list = append(list, pending{key: k, val: e.Value, index: i})
	}
	for _, p := range list {
		v, err := g.Compile(p.val)
		if err != nil {
			return nil, &MapEntryError{Index: p.index, Err: err}
		}
		if p.re != nil {
			m.regexes = append(m.regexes, mapRegex{re: p.re, value: v})
			continue
		}
		k := p.key
		if k == "default" {
			if m.def != nil {
				return nil, &MapEntryError{Index: p.index, Err: fmt.Errorf("duplicate default map parameter")}
			}
			m.def = v
			continue
		}
		k = strings.TrimPrefix(k, `\`)
		lk := strings.ToLower(k)
		conflict := func() error {
			return &MapEntryError{Index: p.index, Err: fmt.Errorf("conflicting parameter \"%s\"", lk)}
		}
		table, key := m.exact, lk
		if opts.Hostnames {
			switch {
			case strings.HasPrefix(lk, "*."):
				table, key = m.tab(&m.head), lk[2:]
				if _, dup := m.dot[key]; dup {
					return nil, conflict()
				}
			case strings.HasPrefix(lk, "."):
				table, key = m.tab(&m.dot), lk[1:]
				if _, dup := m.head[key]; dup {
					return nil, conflict()
				}
			case strings.HasSuffix(lk, ".*"):
				table, key = m.tab(&m.tail), lk[:len(lk)-2]
			case strings.Contains(lk, "*"):
				return nil, &MapEntryError{Index: p.index, Err: fmt.Errorf("invalid hostname or wildcard \"%s\"", k)}
			}
		}
		if _, dup := table[key]; dup {
			return nil, conflict()
		}
		table[key] = v
	}
	return m, nil
}

// MapEntryError is an error in entries[Index] of NewMap; nginx reports it
// at that entry's line. Error() is the message alone.
type MapEntryError struct {
	Index int
	Err   error
}

// Error returns the message alone, as nginx prints it before " in file:line".
func (e *MapEntryError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *MapEntryError) Unwrap() error { return e.Err }

func (m *Map) tab(p *map[string]*Template) map[string]*Template {
	if *p == nil {
		*p = map[string]*Template{}
	}
	return *p
}

// Volatile reports whether the map was declared `volatile`.
func (m *Map) Volatile() bool { return m.volatile }

// Eval computes the map's value for r (without the per-request cache).
func (m *Map) Eval(r *Request) string { return m.eval(r) }

func (m *Map) eval(r *Request) string {
	if m.geo != nil {
		return m.geo.Value(r)
	}
	if m.split != nil {
		return m.split.Value(r)
	}
	src := m.source.Eval(r)
	key := src
	if m.hosts && strings.HasSuffix(key, ".") {
		key = key[:len(key)-1]
	}
	key = lower(key)
	if v, ok := m.exact[key]; ok {
		return v.Eval(r)
	}
	if m.hosts {
		if v := m.wildcard(key); v != nil {
			return v.Eval(r)
		}
	}
	for _, e := range m.regexes {
		if c, ok := e.re.Match(src); ok {
			r.SetCaptures(c)
			return e.value.Eval(r)
		}
	}
	if m.def != nil {
		return m.def.Eval(r)
	}
	return ""
}

func (m *Map) wildcard(h string) *Template {
	if m.dot != nil {
		if v, ok := m.dot[h]; ok {
			return v
		}
	}
	if m.head != nil || m.dot != nil {
		for i := 0; i < len(h); i++ {
			if h[i] != '.' {
				continue
			}
			s := h[i+1:]
			if v, ok := m.head[s]; ok {
				return v
			}
			if v, ok := m.dot[s]; ok {
				return v
			}
		}
	}
	if m.tail != nil {
		for i := len(h) - 1; i > 0; i-- {
			if h[i] == '.' {
				if v, ok := m.tail[h[:i]]; ok {
					return v
				}
			}
		}
	}
	return nil
}
