package nginxconf

import (
	"strconv"
	"strings"

	"ngxsockify/nginxconf/vars"
)

// useridModule is ngx_http_userid_filter_module: a cookie identifying the
// client ($uid_got, $uid_set), set on the main request's response. Each
// directive is merged on its own, as nginx does: a level that sets one
// starts from a copy of what it inherited.
var useridModule = module{name: "ngx_http_userid_filter_module", directives: []directive{
	{name: "userid", dup: "userid", set: func(c *compiler, lv *level, d *Directive) {
		u := lv.conf.useridOwn()
		switch d.Args[0] {
		case "on":
			u.Enable = vars.UserIDOn
		case "v1":
			u.Enable = vars.UserIDV1
		case "log":
			u.Enable = vars.UserIDLog
		case "off":
			u.Enable = vars.UserIDOff
		default:
			c.fail(d, `invalid value "%s"`, d.Args[0])
		}
	}},
	{name: "userid_service", dup: "userid_service", set: func(c *compiler, lv *level, d *Directive) {
		n, err := strconv.ParseInt(d.Args[0], 10, 64)
		if err != nil || n < 0 || d.Args[0][0] == '+' {
			c.fail(d, `"userid_service" directive invalid number`)
		}
		lv.conf.useridOwn().Service = n
	}},
	{name: "userid_name", dup: "userid_name", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.useridOwn().Name = d.Args[0]
	}},
	{name: "userid_domain", dup: "userid_domain", set: func(c *compiler, lv *level, d *Directive) {
		v := d.Args[0]
		if v == "none" {
			v = ""
		}
		lv.conf.useridOwn().Domain = v
	}},
	{name: "userid_path", dup: "userid_path", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.useridOwn().Path = d.Args[0]
	}},
	{name: "userid_expires", dup: "userid_expires", set: func(c *compiler, lv *level, d *Directive) {
		u := lv.conf.useridOwn()
		switch d.Args[0] {
		case "max":
			u.Expires = -1
		case "off":
			u.Expires = 0
		default:
			t, err := ParseTime(d.Args[0])
			if err != nil {
				c.fail(d, `"userid_expires" directive invalid value`)
			}
			u.Expires = int64(t.Seconds())
		}
	}},
	{name: "userid_p3p", dup: "userid_p3p", set: func(c *compiler, lv *level, d *Directive) {
		v := d.Args[0]
		if v == "none" {
			v = ""
		}
		lv.conf.useridOwn().P3P = v
	}},
	{name: "userid_mark", dup: "userid_mark", set: func(c *compiler, lv *level, d *Directive) {
		v := d.Args[0]
		u := lv.conf.useridOwn()
		if v == "off" {
			u.Mark = 0
			return
		}
		if len(v) != 1 || !(v[0] == '=' || v[0] >= '0' && v[0] <= '9' || v[0] >= 'a' && v[0] <= 'z' || v[0] >= 'A' && v[0] <= 'Z') {
			c.fail(d, `"userid_mark" directive value must be "off" or a single letter, digit or "="`)
		}
		u.Mark = v[0]
	}},
	{name: "userid_flags", dup: "userid_flags", set: func(c *compiler, lv *level, d *Directive) {
		// the cookie names them in nginx's order, whatever the order written
		secure, httponly, samesite := false, false, ""
		for _, a := range d.Args {
			switch a {
			case "off":
			case "secure":
				secure = true
			case "httponly":
				httponly = true
			case "samesite=strict", "samesite=lax", "samesite=none":
				samesite = a
			default:
				c.fail(d, `invalid value "%s"`, a)
			}
		}
		var b strings.Builder
		if secure {
			b.WriteString("; secure")
		}
		if httponly {
			b.WriteString("; httponly")
		}
		if samesite != "" {
			b.WriteString("; " + samesite)
		}
		lv.conf.useridOwn().Flags = b.String()
	}},
}}

// useridOwn is the level's own userid settings, copied from what it
// inherited at the first of the module's directives there.
func (lc *LocConf) useridOwn() *vars.UserID {
	if !lc.set["userid:level"] {
		lc.set["userid:level"] = true
		n := vars.UserID{Service: -1, Name: "uid", Path: "/"}
		if lc.UserID != nil {
			n = *lc.UserID
		}
		lc.UserID = &n
	}
	return lc.UserID
}
