package proxy

import (
	"net/http"
	"sort"
	"strings"

	"ngxsockify/nginxconf"
)

// subModule is nginx's ngx_http_sub_filter_module: its header filter picks
// the responses of the sub_filter_types (whoever wrote them: static files,
// return, error pages, proxy_pass, Lua), drops their Content-Length (and
// Last-Modified and ETag unless sub_filter_last_modified), and its body
// filter replaces the sub_filter strings as the body streams through,
// holding back only the bytes that may still begin a match. Its body
// filter runs after body_filter_by_lua's and before charset recoding, as
// nginx chains them; the header filter runs after charset's, which only
// adds a parameter the type test ignores.
var subModule = module{
	name:      "sub",
	provision: provisionSub,
	register: func(e *engine) {
		e.addHeaderFilter(subHeaderFilter)
	},
}

// subTables are nginx's search tables for one set of patterns: the
// patterns sorted (stably) by their key byte, the one at min-1; a shift per
// byte (how far the next possible key position is, Horspool-style over the
// first min bytes of every pattern); and for each key byte the range of
// patterns that have it.
type subTables struct {
	pats     []subPattern
	min, max int
	shift    [256]uint8
	index    [257]uint8 // pats[index[c]:index[c+1]] have key byte c
}

// subPattern is one pattern (lower case) and the replacement of its pair.
type subPattern struct {
	match string
	value *nginxconf.SubFilter
}

// newSubTables builds the tables for pats (at most 255, none empty).
func newSubTables(pats []subPattern) *subTables {
	t := &subTables{pats: pats, min: len(pats[0].match), max: len(pats[0].match)}
	for _, p := range pats[1:] {
		t.min = min(t.min, len(p.match))
		t.max = max(t.max, len(p.match))
	}
	key := t.min - 1
	sort.SliceStable(pats, func(i, j int) bool { return pats[i].match[key] < pats[j].match[key] })
	span := min(t.min, 255)
	for c := range t.shift {
		t.shift[c] = uint8(span)
	}
	c := 0
	for i, p := range pats {
		for j := 0; j < span; j++ {
			b := p.match[key-j]
			t.shift[b] = min(t.shift[b], uint8(j))
		}
		for ; c <= int(p.match[key]); c++ {
			t.index[c] = uint8(i)
		}
	}
	for ; c < len(t.index); c++ {
		t.index[c] = uint8(len(pats))
	}
	return t
}

// provisionSub builds the tables of the levels whose patterns are
// constant; patterns with variables are built per response.
func provisionSub(_ *Server, st *state) error {
	built := map[*nginxconf.SubFilter]*subTables{}
	for _, lc := range st.cfg.HTTP.Confs {
		if len(lc.SubFilters) == 0 {
			continue
		}
		first := &lc.SubFilters[0] // levels that inherit share the slice
		if t, ok := built[first]; ok {
			st.confs[lc.ID].sub = t
			continue
		}
		pats := make([]subPattern, 0, len(lc.SubFilters))
		for i := range lc.SubFilters {
			m, ok := lc.SubFilters[i].Match.Const()
			if !ok {
				pats = nil
				break
			}
			pats = append(pats, subPattern{match: m, value: &lc.SubFilters[i]})
		}
		var t *subTables
		if pats != nil {
			t = newSubTables(pats)
		}
		built[first] = t
		st.confs[lc.ID].sub = t
	}
	return nil
}

// subTablesFor returns the tables of the request's level: built at load,
// or now from the patterns' values (lowered; empty ones left out). Nil:
// nothing to look for.
func (rq *request) subTablesFor() *subTables {
	if t := rq.st.confs[rq.conf.ID].sub; t != nil {
		return t
	}
	var pats []subPattern
	for i := range rq.conf.SubFilters {
		sf := &rq.conf.SubFilters[i]
		if m := nginxconf.LowerASCII(sf.Match.Eval(rq.v)); m != "" {
			pats = append(pats, subPattern{match: m, value: sf})
		}
	}
	if pats == nil {
		return nil
	}
	return newSubTables(pats)
}

// subTypeMatch tests a Content-Type against sub_filter_types as nginx's
// ngx_http_test_content_type does: "*" takes any response, even one
// without a type; otherwise the type up to a "; charset=" parameter (the
// whole value when it has other parameters), without case.
func subTypeMatch(types []string, ctype string) bool {
	if len(types) == 1 && types[0] == "*" {
		return true
	}
	if ctype == "" {
		return false
	}
	mime := ctype
	for i := 0; i < len(ctype); i++ {
		if ctype[i] != ';' {
			continue
		}
		rest := strings.TrimLeft(ctype[i+1:], " ")
		if len(rest) >= 8 && strings.EqualFold(rest[:8], "charset=") {
			mime = ctype[:i]
			break
		}
	}
	mime = nginxconf.LowerASCII(mime)
	if types == nil {
		return mime == "text/html"
	}
	for _, t := range types {
		if t == mime {
			return true
		}
	}
	return false
}

// subHeaderFilter starts the sub filter on a response it applies to.
func subHeaderFilter(rq *request, code int) int {
	conf := rq.conf
	if conf == nil || len(conf.SubFilters) == 0 || rq.w.discard || rq.subrequest && !rq.filtered {
		// a subrequest's body goes to ngx.location.capture, whose filter
		// comes before nginx's sub filter (auth_request's is dropped);
		// an SSI include's or an addition's goes through it
		return code
	}
	h := rq.w.Header()
	if h.Get("Content-Length") == "0" || !subTypeMatch(conf.SubFilterTypes, h.Get("Content-Type")) {
		return code
	}
	t := rq.subTablesFor()
	if t == nil {
		return code
	}
	bodyRewritten(h, conf.SubFilterLastModified)
	rq.w.stream = true
	f := &subFilter{rq: rq, t: t, once: conf.SubFilterOnce}
	next := rq.w.body // charset recoding, when its filter set one
	rq.w.body = func(p []byte) []byte {
		out := f.write(p)
		if next != nil {
			out = next(out)
		}
		return out
	}
	rq.w.tail = func() {
		out := f.end()
		if next != nil {
			out = next(out)
		}
		if len(out) > 0 && !rq.w.discard {
			n, _ := rq.w.write(out)
			rq.w.bytes += int64(n)
		}
	}
	return code
}

// bodyRewritten drops what a filter that rewrites the body (sub, ssi)
// makes untrue: the length, and Last-Modified and ETag unless the filter's
// *_last_modified is on (then the ETag turns weak).
func bodyRewritten(h http.Header, lastModified bool) {
	h.Del("Content-Length")
	if lastModified {
		weakETag(h)
	} else {
		h.Del("Last-Modified")
		h.Del("Etag")
	}
}

// weakETag is nginx's ngx_http_weak_etag: a strong ETag becomes weak, and
// one that is not quoted is dropped.
func weakETag(h map[string][]string) {
	v := h["Etag"]
	if len(v) == 0 || strings.HasPrefix(v[0], "W/") {
		return
	}
	if strings.HasPrefix(v[0], `"`) {
		h["Etag"] = []string{"W/" + v[0]}
		return
	}
	delete(h, "Etag")
}

// subFilter is the body filter of one response: what nginx's
// ngx_http_sub_parse decides, over a body that arrives in pieces. At each
// position, from the left, the first pattern (in the tables' order) that
// matches is replaced and the search goes on after it; a pattern the data
// so far only begins holds the bytes from there back until more come.
// At the end of the body held bytes go out as they are, as nginx sends
// its "looked" buffer.
type subFilter struct {
	rq   *request
	t    *subTables
	once bool
	// used marks patterns already replaced under sub_filter_once; when
	// every pattern is, the rest of the body passes through.
	used    []bool
	applied int
	done    bool
	values  []string // replacements evaluated so far (nginx evaluates each once)
	got     []bool
	held    []byte // bytes not decided yet (fewer than t.max)
	scratch []byte // held and the new bytes, when some were held
	out     []byte
}

// match results of one pattern at one position
const (
	subNo = iota
	subPartial
	subYes
)

// matchAt compares pattern m with data from s, ASCII case aside.
func matchAt(data []byte, s int, m string) int {
	n := min(len(m), len(data)-s)
	for j := 0; j < n; j++ {
		c := data[s+j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != m[j] {
			return subNo
		}
	}
	if n < len(m) {
		return subPartial
	}
	return subYes
}

// write takes the next piece of the body and returns what can go out.
func (f *subFilter) write(p []byte) []byte {
	if f.done && len(f.held) == 0 {
		return p
	}
	data := p
	if len(f.held) > 0 {
		f.scratch = append(append(f.scratch[:0], f.held...), p...)
		data = f.scratch
		f.held = f.held[:0]
	}
	t := f.t
	out := f.out[:0]
	emitted, s := 0, 0 // data[emitted:s] is decided and plain
	for !f.done {
		k := s + t.min - 1
		if k >= len(data) {
			break
		}
		c := data[k]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if sh := t.shift[c]; sh > 0 {
			s += int(sh)
			continue
		}
		r, i := subNo, 0
		for i = int(t.index[c]); i < int(t.index[int(c)+1]); i++ {
			if f.once && f.used != nil && f.used[i] {
				continue
			}
			if r = matchAt(data, s, t.pats[i].match); r != subNo {
				break
			}
		}
		if r == subPartial {
			break
		}
		if r == subNo {
			s++
			continue
		}
		out = append(out, data[emitted:s]...)
		out = append(out, f.value(i)...)
		s += len(t.pats[i].match)
		emitted = s
		if f.once {
			if f.used == nil {
				f.used = make([]bool, len(t.pats))
			}
			f.used[i] = true
			f.applied++
			f.done = f.applied == len(t.pats)
		}
	}
	if f.done {
		s = len(data)
	}
	// Bytes no pattern can begin go out now rather than with the next
	// write (nginx's flush pass, for streamed responses).
	for ; s < len(data) && !f.mayBegin(data, s); s++ {
	}
	out = append(out, data[emitted:s]...)
	f.held = append(f.held, data[s:]...)
	f.out = out
	return out
}

// mayBegin reports whether some pattern begins with data[s:] (which is
// shorter than any of them): used ones count too, as in nginx.
func (f *subFilter) mayBegin(data []byte, s int) bool {
	for _, p := range f.t.pats {
		if matchAt(data, s, p.match) == subPartial {
			return true
		}
	}
	return false
}

// end returns the bytes still held when the body ends.
func (f *subFilter) end() []byte {
	out := f.held
	f.held = nil
	return out
}

// value is the replacement of pattern i, evaluated when first needed.
func (f *subFilter) value(i int) string {
	if f.got == nil {
		f.got = make([]bool, len(f.t.pats))
		f.values = make([]string, len(f.t.pats))
	}
	if !f.got[i] {
		f.got[i] = true
		f.values[i] = f.t.pats[i].value.Value.Eval(f.rq.v)
	}
	return f.values[i]
}

// subFilters reports whether sub_filter will rewrite a response of type
// ctype and length size here (its length is then not known in advance),
// on the conditions subHeaderFilter starts it: not empty, a type of
// sub_filter_types, a pattern that is not empty once evaluated.
func (rq *request) subFilters(ctype string, size int64) bool {
	return len(rq.conf.SubFilters) > 0 && size != 0 && subTypeMatch(rq.conf.SubFilterTypes, ctype) &&
		rq.subTablesFor() != nil
}
