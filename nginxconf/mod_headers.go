package nginxconf

import (
	"net/textproto"
	"strings"
	"time"
)

// headersModule is ngx_http_headers_module: add_header and expires, applied
// by the header filter.
var headersModule = module{name: "ngx_http_headers_module", directives: []directive{
	{name: "add_header", inherit: inheritReplace, field: "AddHeaders", set: func(c *compiler, lv *level, d *Directive) {
		a := d.Args
		key := textproto.CanonicalMIMEHeaderKey(a[0])
		h := AddHeader{Name: a[0], Key: key, Value: c.template(d, a[1]), Replace: key == "Etag" || key == "Last-Modified"}
		if len(a) == 3 {
			if a[2] != "always" {
				c.fail(d, `invalid parameter "%s"`, a[2])
			}
			h.Always = true
		}
		lv.conf.AddHeaders = append(lv.conf.AddHeaders, h)
	}},
	{name: "add_trailer", inherit: inheritReplace, field: "AddTrailers", set: func(c *compiler, lv *level, d *Directive) {
		a := d.Args
		h := AddHeader{Name: a[0], Key: textproto.CanonicalMIMEHeaderKey(a[0]), Value: c.template(d, a[1])}
		if len(a) == 3 {
			if a[2] != "always" {
				c.fail(d, `invalid parameter "%s"`, a[2])
			}
			h.Always = true
		}
		lv.conf.AddTrailers = append(lv.conf.AddTrailers, h)
	}},
	{name: "expires", dup: "expires", set: func(c *compiler, lv *level, d *Directive) { lv.conf.Expires = c.expires(d) }},
}}

// HeadersConf is the headers module's part of a location's settings.
type HeadersConf struct {
	AddHeaders []AddHeader
	// AddTrailers: add_trailer's, sent after a chunked body (an HTTP/1.1
	// response whose Content-Length they drop, as nginx's chunked filter).
	AddTrailers []AddHeader
	Expires     *Expires // nil: expires off
}

// expires compiles `expires [modified] time | epoch | max | off | @time`.
func (c *compiler) expires(d *Directive) *Expires {
	a := d.Args
	e := &Expires{}
	if len(a) == 2 {
		if a[0] != "modified" {
			c.fail(d, `invalid value "%s"`, a[0])
		}
		e.Modified = true
		a = a[1:]
	}
	v := a[0]
	switch {
	case v == "off" && !e.Modified:
		return nil
	case v == "epoch" && !e.Modified:
		e.Kind = ExpiresEpoch
	case v == "max" && !e.Modified:
		e.Kind = ExpiresMax
	case strings.Contains(v, "$"):
		e.Kind, e.Value = ExpiresVar, c.template(d, v)
	default:
		t, ok := ParseExpires(v)
		if !ok {
			c.fail(d, `"expires" directive invalid value`)
		}
		e.Kind, e.Offset = ExpiresAfter, t
		if strings.HasPrefix(v, "@") {
			e.Kind = ExpiresDaily
		}
	}
	return e
}

// ParseExpires parses an expires time: "1h", "-1", "@15h30m" (a time of
// day, below 24h).
func ParseExpires(v string) (time.Duration, bool) {
	daily := strings.HasPrefix(v, "@")
	v = strings.TrimPrefix(v, "@")
	neg := false
	if !daily {
		if strings.HasPrefix(v, "-") {
			neg, v = true, v[1:]
		} else {
			v = strings.TrimPrefix(v, "+")
		}
	}
	t, err := ParseTime(v)
	if err != nil || (daily && t >= 24*time.Hour) {
		return 0, false
	}
	if neg {
		t = -t
	}
	return t, true
}
