package nginxconf

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"ngxsockify/nginxconf/vars"
)

// charsetModule is ngx_http_charset_module: `charset` adds the charset to
// the Content-Type of the charset_types, and when source_charset (or the
// charset a response already has, with override_charset on) differs,
// the body is recoded through a charset_map.
var charsetModule = module{name: "ngx_http_charset_module", directives: []directive{
	{name: "charset", dup: "charset", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.Charset = c.charsetName(d, true)
	}},
	{name: "source_charset", dup: "source_charset", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.SourceCharset = c.charsetName(d, false)
	}},
	{name: "override_charset", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.OverrideCharset = d.Args[0] == "on"
	}},
	{name: "charset_types", inherit: inheritReplace, field: "CharsetTypes", set: func(c *compiler, lv *level, d *Directive) {
		for _, a := range d.Args {
			lv.conf.CharsetTypes = append(lv.conf.CharsetTypes, strings.ToLower(a))
		}
	}},
	{name: "charset_map", custom: true, set: func(c *compiler, lv *level, d *Directive) { c.charsetMap(d) }},
}}

// CharsetConf is the charset module's part of a location's settings.
type CharsetConf struct {
	Charset       CharsetName // the zero value is `charset off`
	SourceCharset CharsetName // the zero value is off
	// OverrideCharset: a response that names its charset already (autoindex
	// xml) is recoded and relabelled too.
	OverrideCharset bool
	// CharsetTypes are the MIME types (lower case) the charset is added to;
	// nil means nginx's default list, "*" any type.
	CharsetTypes []string
}

// CharsetName is the value of charset or source_charset: a name, or a
// variable when the value starts with "$"; both empty means off.
type CharsetName struct {
	Name string
	Var  *vars.Template
}

// Off reports whether no charset is set.
func (n CharsetName) Off() bool { return n.Name == "" && n.Var == nil }

// Charsets are the charsets an http block names (in charset,
// source_charset and charset_map, compared without case) and its
// charset_map tables.
type Charsets struct {
	known map[string]string // lower case -> the spelling first seen
	maps  map[[2]string]*CharsetMap
}

// CharsetMap is one `charset_map From To { ... }` block: Pairs[b] is what
// byte b of From becomes in To (one byte, or a UTF-8 sequence when To is
// utf-8), for the bytes the block lists.
type CharsetMap struct {
	From, To string
	Pairs    map[byte]string
}

// Known reports whether the configuration names charset name.
func (cs *Charsets) Known(name string) bool {
	return cs != nil && cs.known[strings.ToLower(name)] != ""
}

// Canonical is name as the configuration first spelled it (nginx names a
// charset so in Content-Type and messages).
func (cs *Charsets) Canonical(name string) string {
	if cs != nil {
		if c := cs.known[strings.ToLower(name)]; c != "" {
			return c
		}
	}
	return name
}

func (cs *Charsets) add(name string) {
	if k := strings.ToLower(name); cs.known[k] == "" {
		cs.known[k] = name
	}
}

// Map returns the charset_map between from and to, written in either
// direction (reverse says it was written `to from`).
func (cs *Charsets) Map(from, to string) (m *CharsetMap, reverse bool) {
	if cs == nil {
		return nil, false
	}
	from, to = strings.ToLower(from), strings.ToLower(to)
	if m := cs.maps[[2]string{from, to}]; m != nil {
		return m, false
	}
	if m := cs.maps[[2]string{to, from}]; m != nil {
		return m, true
	}
	return nil, false
}

func (c *compiler) charsets() *Charsets {
	h := c.cfg.HTTP
	if h.Charsets == nil {
		h.Charsets = &Charsets{known: map[string]string{}, maps: map[[2]string]*CharsetMap{}}
	}
	return h.Charsets
}

// charsetName compiles the argument of charset (canOff) or source_charset.
func (c *compiler) charsetName(d *Directive, canOff bool) CharsetName {
	v := d.Args[0]
	switch {
	case canOff && v == "off":
		return CharsetName{}
	case strings.HasPrefix(v, "$"):
		return CharsetName{Var: c.template(d, v)}
	}
	c.charsets().add(v)
	return CharsetName{Name: v}
}

// charsetMap compiles `charset_map from to { src dst; ... }`: src a hex
// byte, dst a hex byte, or the hex bytes of one UTF-8 character of the
// BMP when to is utf-8.
func (c *compiler) charsetMap(d *Directive) {
	cs := c.charsets()
	from, to := strings.ToLower(d.Args[0]), strings.ToLower(d.Args[1])
	if _, rev := cs.Map(from, to); cs.maps[[2]string{from, to}] != nil || rev {
		c.fail(d, `duplicate "charset_map" between "%s" and "%s"`, d.Args[0], d.Args[1])
		return
	}
	cs.add(d.Args[0])
	cs.add(d.Args[1])
	m := &CharsetMap{From: d.Args[0], To: d.Args[1], Pairs: map[byte]string{}}
	for _, e := range d.Block {
		if len(e.Args) != 1 {
			c.fail(e, "invalid parameters number")
			continue
		}
		src, ok := hexByte(e.Name)
		if !ok {
			c.fail(e, `invalid value "%s"`, e.Name)
			continue
		}
		dst, ok := charsetMapValue(e.Args[0], to == "utf-8")
		if !ok {
			c.fail(e, `invalid value "%s"`, e.Args[0])
			continue
		}
		m.Pairs[src] = dst
	}
	cs.maps[[2]string{from, to}] = m
}

// hexByte parses nginx's ngx_hextoi value of at most 255.
func hexByte(s string) (byte, bool) {
	if s == "" || strings.ContainsAny(s, "+-") {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 16, 64)
	if err != nil || n > 255 {
		return 0, false
	}
	return byte(n), true
}

// charsetMapValue parses a charset_map value: a hex byte, or (utf8) hex
// byte pairs whose start is a multibyte UTF-8 character up to U+FFFF.
func charsetMapValue(s string, utf bool) (string, bool) {
	if !utf {
		b, ok := hexByte(s)
		return string([]byte{b}), ok
	}
	var seq []byte
	for i := 0; i < len(s); i += 2 {
		b, ok := hexByte(s[i:min(i+2, len(s))])
		if !ok {
			return "", false
		}
		seq = append(seq, b)
	}
	r, size := utf8.DecodeRune(seq)
	if r == utf8.RuneError || size < 2 || r > 0xffff {
		return "", false
	}
	return string(seq[:size]), true
}

// checkCharsets reports a level whose charset and source_charset are two
// different names with no charset_map between them (nginx checks this
// when it merges the levels, and names no position).
func (c *compiler) checkCharsets() {
	cs := c.cfg.HTTP.Charsets
	for _, lc := range c.cfg.HTTP.Confs {
		dst, src := lc.Charset.Name, lc.SourceCharset.Name
		if dst == "" || src == "" || strings.EqualFold(dst, src) {
			continue
		}
		if m, _ := cs.Map(src, dst); m == nil {
			c.errs = append(c.errs, &Error{Msg: `no "charset_map" between the charsets "` + cs.Canonical(src) + `" and "` + cs.Canonical(dst) + `"`})
			if !c.collectAll {
				panic(errStop{})
			}
			return
		}
	}
}

// Maps returns every charset_map, in no particular order.
func (cs *Charsets) Maps() []*CharsetMap {
	var out []*CharsetMap
	for _, m := range cs.maps {
		out = append(out, m)
	}
	return out
}
