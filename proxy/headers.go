package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
)

// headersModule is nginx's ngx_http_headers_filter_module: expires and
// add_header, as a header filter.
var headersModule = module{
	name: "headers",
	register: func(e *engine) {
		e.addHeaderFilter(addHeaders)
	},
}

// addHeaders adds expires' headers and add_header's for the statuses nginx
// adds them to (add_header ... always: for every status).
func addHeaders(rq *request, code int) int {
	conf := rq.conf
	if conf.Expires == nil && len(conf.AddHeaders) == 0 && len(conf.AddTrailers) == 0 {
		return code
	}
	ok := safeStatus(code)
	h := rq.w.Header()
	if len(conf.AddTrailers) > 0 {
		expectTrailers(rq, code, ok)
	}
	if ok && conf.Expires != nil && setExpires(h, conf.Expires, rq.v, time.Now()) {
		// a value already in nginx's list is replaced in its place,
		// else one is added last
		rq.w.note("Expires")
		rq.w.note("Cache-Control")
	}
	for i := range conf.AddHeaders {
		ah := &conf.AddHeaders[i]
		if !ok && !ah.Always {
			continue
		}
		v := ah.Value.Eval(rq.v)
		if !addHeader(h, ah.Key, v, ah.Replace) {
			continue
		}
		if ah.Key == "Content-Type" && !ah.Replace {
			rq.w.addedType = append(rq.w.addedType, v)
		}
		switch ah.Key {
		case "Server", "Date", "Content-Length":
			// nginx adds an entry to its list and still writes its
			// own in the header filter's place; both go there here
		default:
			rq.w.note(ah.Key)
		}
		if ah.Name != ah.Key {
			rq.w.spell = append(rq.w.spell, spelling{ah.Name, ah.Key})
		}
	}
	return code
}

// addHeader applies one add_header whose value is v to h: replace (the
// ETag, Last-Modified and other headers it overrides) sets it, or with an
// empty value removes it; otherwise a non-empty value is added. It
// reports whether h changed.
func addHeader(h http.Header, key, v string, replace bool) bool {
	switch {
	case replace && v == "":
		delete(h, key)
	case replace:
		h[key] = []string{v}
	case v != "":
		h[key] = append(h[key], v)
	default:
		return false
	}
	return true
}

// safeStatus reports the statuses add_header and add_trailer add to
// without "always".
func safeStatus(code int) bool {
	switch code {
	case 200, 201, 204, 206, 301, 302, 303, 304, 307, 308:
		return true
	}
	return false
}

// expectTrailers applies add_trailer at the header: when one applies to
// the status, an HTTP/1.1 response with a body that may be chunked is
// chunked, its Content-Length dropped (nginx's r->expect_trailers and
// chunked filter), and the trailers are sent after its body
// (sendTrailers).
func expectTrailers(rq *request, code int, ok bool) {
	if rq.subrequest || rq.wire == nil {
		return
	}
	expect := false
	for i := range rq.conf.AddTrailers {
		expect = expect || ok || rq.conf.AddTrailers[i].Always
	}
	if !expect || code < 200 || code == 204 || code == 304 || rq.r.Method == http.MethodHead {
		return
	}
	if rq.r.ProtoMajor == 2 {
		// HTTP/2 sends trailers in a HEADERS frame of their own: the
		// Content-Length stays, chunked_transfer_encoding does not apply
		rq.trailers = true
		return
	}
	if !rq.r.ProtoAtLeast(1, 1) || rq.conf.NoChunked {
		return
	}
	delete(rq.w.Header(), "Content-Length")
	rq.trailers = true
}

// sendTrailers evaluates add_trailer's values at the body's end, as
// nginx's trailers filter does, and hands the non-empty ones to the wire
// ($sent_trailer_ reads them, each after those before it).
func (rq *request) sendTrailers() {
	ok := safeStatus(rq.w.status)
	var lines []byte
	for i := range rq.conf.AddTrailers {
		t := &rq.conf.AddTrailers[i]
		if !ok && !t.Always {
			continue
		}
		v := t.Value.Eval(rq.v)
		if v == "" {
			continue
		}
		if rq.v.SentTrailer == nil {
			rq.v.SentTrailer = http.Header{}
		}
		rq.v.SentTrailer[t.Key] = append(rq.v.SentTrailer[t.Key], v)
		lines = append(append(append(append(lines, t.Name...), ": "...), v...), "\r\n"...)
	}
	rq.wire.SetTrailer(lines)
}

// spelling is a response header's name as sent and its canonical key.
type spelling struct{ name, key string }

// wireNames are the headers nginx itself spells other than net/http's
// canonical form.
var wireNames = [...]spelling{{"ETag", "Etag"}, {"WWW-Authenticate", "Www-Authenticate"}}

// respell renames, in h, the canonical keys of spell and wireNames to the
// names the response must send (it reports whether it renamed any);
// unspell undoes it.
func respell(h http.Header, spell []spelling) (renamed bool) {
	for _, list := range [2][]spelling{spell, wireNames[:]} {
		for _, sp := range list {
			if vs, ok := h[sp.key]; ok {
				delete(h, sp.key)
				h[sp.name] = append(h[sp.name], vs...)
				renamed = true
			}
		}
	}
	return renamed
}

// unspell gives back to h the canonical keys respell renamed.
func unspell(h http.Header, spell []spelling) {
	for _, list := range [2][]spelling{spell, wireNames[:]} {
		for _, sp := range list {
			if vs, ok := h[sp.name]; ok {
				delete(h, sp.name)
				h[sp.key] = vs
			}
		}
	}
}

// setExpires adds Expires and Cache-Control as nginx's headers filter does;
// it reports whether it did.
func setExpires(h http.Header, e *nginxconf.Expires, v *vars.Request, now time.Time) bool {
	kind, off := e.Kind, e.Offset
	if kind == nginxconf.ExpiresVar {
		val := e.Value.Eval(v)
		// nginx reads epoch, max and off as words only without
		// "modified"; with it they, and a time of day, are invalid.
		switch {
		case val == "" || val == "off" && !e.Modified:
			return false
		case val == "epoch" && !e.Modified:
			kind = nginxconf.ExpiresEpoch
		case val == "max" && !e.Modified:
			kind = nginxconf.ExpiresMax
		case e.Modified && strings.HasPrefix(val, "@"):
			return false
		default:
			t, ok := nginxconf.ParseExpires(val)
			if !ok {
				return false
			}
			kind, off = nginxconf.ExpiresAfter, t
			if strings.HasPrefix(val, "@") {
				kind = nginxconf.ExpiresDaily
			}
		}
	}
	const httpTime = "Mon, 02 Jan 2006 15:04:05 GMT"
	switch kind {
	case nginxconf.ExpiresEpoch:
		h.Set("Expires", "Thu, 01 Jan 1970 00:00:01 GMT")
		h.Set("Cache-Control", "no-cache")
		return true
	case nginxconf.ExpiresMax:
		h.Set("Expires", "Thu, 31 Dec 2037 23:55:55 GMT")
		h.Set("Cache-Control", "max-age=315360000")
		return true
	}
	if off == 0 && kind != nginxconf.ExpiresDaily {
		h.Set("Expires", now.UTC().Format(httpTime))
		h.Set("Cache-Control", "max-age=0")
		return true
	}
	base := now
	if e.Modified {
		if lm, err := http.ParseTime(h.Get("Last-Modified")); err == nil {
			base = lm
		}
	}
	var at time.Time
	if kind == nginxconf.ExpiresDaily {
		day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.Local)
		at = day.Add(off)
		if !at.After(now) {
			at = at.Add(24 * time.Hour)
		}
	} else {
		at = base.Add(off)
	}
	h.Set("Expires", at.UTC().Format(httpTime))
	maxAge := int64(at.Sub(now) / time.Second)
	if off < 0 || maxAge < 0 {
		h.Set("Cache-Control", "no-cache")
	} else {
		h.Set("Cache-Control", "max-age="+strconv.FormatInt(maxAge, 10))
	}
	return true
}
