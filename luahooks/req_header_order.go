package luahooks

import (
	"maps"
	"net/http"
)

// HeaderOrder is where ngx.req.set_header and clear_header left a
// request's header values in nginx's header list (r->headers_in.headers,
// which proxy_pass sends in its order): of each name, the first InPlace
// values stand at the lines the client sent it on (a line past them is
// gone), and the rest at the end of the list, one per entry of Appended,
// in its order. A nil *HeaderOrder is the list as received.
//
// As lua-nginx-module's ngx_http_set_header_helper: a value for a name
// the list has replaces its first line in place (keeping that line's
// spelling) and removes its others; a name the list lacks goes at the
// end, spelled as the hook spelled it; a table's values after the first
// go at the end; a clear removes every line of the name.
type HeaderOrder struct {
	inPlace  map[string]int // by canonical key: the names a hook changed
	Appended []HeaderLine
}

// HeaderLine is one value a hook put at the end of the header list: its
// name's canonical key, and the name as written.
type HeaderLine struct{ Key, Name string }

// InPlace is how many of key's values in h stand at the client's lines.
func (o *HeaderOrder) InPlace(h http.Header, key string) int {
	if o != nil {
		if n, ok := o.inPlace[key]; ok {
			return min(n, len(h[key]))
		}
	}
	return len(h[key])
}

// Set records that the values of key (written name) become vals, none
// for a clear; h holds the values before the change.
func (o *HeaderOrder) Set(h http.Header, key, name string, vals []string) {
	in := o.InPlace(h, key)
	if o.inPlace == nil {
		o.inPlace = map[string]int{}
	}
	// the name's lines at the end: the first stays for a value when no
	// line of the client's is left to take it
	keep := len(vals) > 0 && in == 0
	kept := false
	lines := o.Appended[:0]
	for _, l := range o.Appended {
		if l.Key != key || keep && !kept {
			kept = kept || l.Key == key
			lines = append(lines, l)
		}
	}
	o.Appended = lines
	o.inPlace[key] = min(in, 1, len(vals))
	if keep && !kept {
		o.Appended = append(o.Appended, HeaderLine{key, name})
	}
	for range max(len(vals)-1, 0) {
		o.Appended = append(o.Appended, HeaderLine{key, name})
	}
}

// Clone is a copy of o for a subrequest, which starts with its parent's
// header list.
func (o *HeaderOrder) Clone() *HeaderOrder {
	if o == nil {
		return nil
	}
	return &HeaderOrder{inPlace: maps.Clone(o.inPlace), Appended: append([]HeaderLine(nil), o.Appended...)}
}
