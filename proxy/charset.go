package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/static"
)

// charsetModule is nginx's ngx_http_charset_filter_module: its header
// filter adds "; charset=..." to the charset_types and, when the source
// charset differs and a charset_map joins the two, recodes the body.
var charsetModule = module{
	name:      "charset",
	provision: provisionCharsets,
	register: func(e *engine) {
		e.addHeaderFilter(charsetFilter)
	},
}

// defaultCharsetTypes is nginx's default charset_types.
var defaultCharsetTypes = []string{
	"text/html", "text/xml", "text/plain", "text/vnd.wap.wml", "application/javascript", "application/rss+xml",
}

// charsetPlan is the charset filter's decision for one response.
type charsetPlan struct {
	label  string        // the charset to name in Content-Type ("" for none)
	recode *recodeTables // nil: the body goes out as it is
	log    string        // an error to log (no charset_map between them)
}

// changesLength reports whether recoding can change the body's length
// (into or out of UTF-8): nginx then drops Content-Length and ranges.
func (p charsetPlan) changesLength() bool { return p.recode != nil && p.recode.utf8 }

// charsetPlanFor decides, as ngx_http_charset_header_filter does, what the
// charset filter does to a response of Content-Type ctype.
func (rq *request) charsetPlanFor(ctype string) (charsetPlan, bool) {
	if ctype == "" {
		return charsetPlan{}, false
	}
	conf := rq.conf
	mime, has := splitCharset(ctype)
	dst := rq.accelCharset // a backend's X-Accel-Charset: whatever the type and charset say
	if dst == "" {
		if conf.Charset.Off() {
			return charsetPlan{}, false
		}
		if has != "" {
			if !conf.OverrideCharset {
				return charsetPlan{}, false
			}
		} else if mime == "" || !charsetTypeMatch(conf.CharsetTypes, mime) {
			return charsetPlan{}, false
		}
		dst = rq.charsetValue(conf.Charset)
	}
	cs := rq.st.cfg.HTTP.Charsets
	var src string
	srcOff := false
	switch {
	case has != "":
		src = has
	case conf.SourceCharset.Off():
		srcOff = true
	default:
		src = rq.charsetValue(conf.SourceCharset)
	}
	noMap := charsetPlan{log: fmt.Sprintf(`no "charset_map" between the charsets "%s" and "%s"`, src, dst)}
	if !cs.Known(dst) || !srcOff && !cs.Known(src) {
		if srcOff || strings.EqualFold(dst, src) {
			return charsetPlan{label: dst}, true
		}
		return noMap, true
	}
	if srcOff || strings.EqualFold(dst, src) {
		return charsetPlan{label: dst}, true
	}
	m, reverse := cs.Map(src, dst)
	if m == nil {
		return noMap, true
	}
	return charsetPlan{label: dst, recode: rq.st.recoders[m][boolIndex(reverse)]}, true
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// charsetValue is the charset n names: a variable's value as it is, a
// name as the configuration first spelled it.
func (rq *request) charsetValue(n nginxconf.CharsetName) string {
	if n.Var != nil {
		return n.Var.Eval(rq.v)
	}
	return rq.st.cfg.HTTP.Charsets.Canonical(n.Name)
}

// splitCharset splits a Content-Type into the MIME type and the value of
// its charset parameter. A type with other parameters gives no MIME type:
// nginx would not find it among the charset_types.
func splitCharset(ctype string) (mime, charset string) {
	mime, params, ok := strings.Cut(ctype, ";")
	if !ok {
		return mime, ""
	}
	params = strings.TrimSpace(params)
	if len(params) > 8 && strings.EqualFold(params[:8], "charset=") {
		return strings.TrimSpace(mime), strings.Trim(params[8:], `"`)
	}
	return "", ""
}

func charsetTypeMatch(types []string, mime string) bool {
	if types == nil {
		types = defaultCharsetTypes
	}
	mime = strings.ToLower(mime)
	for _, t := range types {
		if t == "*" || t == mime {
			return true
		}
	}
	return false
}

// charsetFilter is the header filter: it labels the response and installs
// the body recoder.
func charsetFilter(rq *request, code int) int {
	if rq.conf.Charset.Off() && rq.accelCharset == "" {
		return code // the common case, before any header lookup
	}
	h := rq.w.Header()
	ct := h.Get("Content-Type")
	plan, ok := rq.charsetPlanFor(ct)
	if !ok {
		return code
	}
	if plan.log != "" {
		rq.logf(ngxlog.Err, "%s", plan.log)
		return code
	}
	if plan.recode != nil && headerFirst(h, "Content-Encoding") != "" {
		// an encoded body (gzip_static's, a backend's) cannot be recoded:
		// nginx leaves it, and its type, as they are
		return code
	}
	mime, _ := splitCharset(ct)
	if mime == "" {
		mime = ct
	}
	switch {
	case code == http.StatusMovedPermanently || code == http.StatusFound:
		// nginx names no charset on a redirect
		if plan.recode == nil {
			return code
		}
		h.Set("Content-Type", mime)
	case plan.label == "":
		h.Set("Content-Type", mime)
	default:
		h.Set("Content-Type", mime+"; charset="+plan.label)
	}
	if plan.recode != nil {
		if plan.changesLength() {
			h.Del("Content-Length")
			h.Del("Accept-Ranges")
			rq.w.stream = true
		}
		rq.w.body = plan.recode.recoder()
	}
	return code
}

// recodeTables recode one direction of a charset_map.
type recodeTables struct {
	utf8 bool
	// bytes[b] is what byte b becomes (an 8-bit charset, or into UTF-8)
	bytes [256]string
	// fromUTF8 maps characters to bytes (recoding out of UTF-8)
	fromUTF8 map[rune]byte
}

// provisionCharsets builds both directions of every charset_map, as nginx
// builds its tables at load: unlisted bytes below 0x80 stay, the others
// become "?".
func provisionCharsets(_ *Server, st *state) error {
	st.recoders = map[*nginxconf.CharsetMap][2]*recodeTables{}
	cs := st.cfg.HTTP
	if cs == nil || cs.Charsets == nil {
		return nil
	}
	for _, m := range cs.Charsets.Maps() {
		fwd, rev := &recodeTables{}, &recodeTables{}
		for i := 0; i < 256; i++ {
			c := string([]byte{byte(i)})
			if i >= 0x80 {
				c = "?"
			}
			fwd.bytes[i], rev.bytes[i] = c, c
		}
		if strings.EqualFold(m.To, "utf-8") {
			fwd.utf8, rev.utf8 = true, true
			rev.fromUTF8 = map[rune]byte{}
			for b, seq := range m.Pairs {
				fwd.bytes[b] = seq
				r, _ := static.DecodeUTF8([]byte(seq))
				rev.fromUTF8[rune(r)] = b
			}
		} else {
			for b, c := range m.Pairs {
				fwd.bytes[b] = c
				rev.bytes[c[0]] = string([]byte{b})
			}
		}
		st.recoders[m] = [2]*recodeTables{fwd, rev}
	}
	return nil
}

// recoder returns a body filter for one response.
func (t *recodeTables) recoder() func([]byte) []byte {
	if t.fromUTF8 == nil {
		return func(p []byte) []byte {
			out := make([]byte, 0, len(p))
			for _, c := range p {
				out = append(out, t.bytes[c]...)
			}
			return out
		}
	}
	var pending []byte // an incomplete character at the end of a write
	return func(p []byte) []byte {
		if len(pending) > 0 {
			p = append(pending, p...)
			pending = nil
		}
		out := make([]byte, 0, len(p))
		for i := 0; i < len(p); {
			c := p[i]
			if c < 0x80 {
				out = append(out, c)
				i++
				continue
			}
			r, size := static.DecodeUTF8(p[i:])
			if r == static.UTF8Incomplete {
				// kept for the next write; dropped at the end, as nginx does
				pending = append([]byte(nil), p[i:]...)
				break
			}
			i += size
			switch b, ok := t.fromUTF8[rune(r)]; {
			case r > utf8.MaxRune:
				out = append(out, '?')
			case ok:
				out = append(out, b)
			default:
				// nginx writes what the charset lacks as a character reference
				out = fmt.Appendf(out, "&#%d;", r)
			}
		}
		return out
	}
}
