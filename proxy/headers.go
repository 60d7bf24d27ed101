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
	if conf.Expires == nil && len(conf.AddHeaders) == 0 {
		return code
	}
	ok := false
	switch code {
	case 200, 201, 204, 206, 301, 302, 303, 304, 307, 308:
		ok = true
	}
	h := rq.w.Header()
	if ok && conf.Expires != nil {
		setExpires(h, conf.Expires, rq.v, time.Now())
	}
	for _, ah := range conf.AddHeaders {
		if ok || ah.Always {
			if v := ah.Value.Eval(rq.v); v != "" {
				h.Add(ah.Name, v)
			}
		}
	}
	return code
}

// setExpires adds Expires and Cache-Control as nginx's headers filter does.
func setExpires(h http.Header, e *nginxconf.Expires, v *vars.Request, now time.Time) {
	kind, off := e.Kind, e.Offset
	if kind == nginxconf.ExpiresVar {
		val := e.Value.Eval(v)
		switch val {
		case "off", "":
			return
		case "epoch":
			kind = nginxconf.ExpiresEpoch
		case "max":
			kind = nginxconf.ExpiresMax
		default:
			t, ok := nginxconf.ParseExpires(val)
			if !ok {
				return
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
		return
	case nginxconf.ExpiresMax:
		h.Set("Expires", "Thu, 31 Dec 2037 23:55:55 GMT")
		h.Set("Cache-Control", "max-age=315360000")
		return
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
}
