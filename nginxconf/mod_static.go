package nginxconf

import "ngxsockify/nginxconf/vars"

// staticModule is ngx_http_index_module, ngx_http_autoindex_module and
// ngx_http_static_module: what the content phase does when no content
// handler is set. It also holds max_ranges, which nginx declares in
// ngx_http_core_module but which only the range filter reads, and
// ngxsockify's range filter lives with its static files.
var staticModule = module{name: "ngx_http_static_module", create: func(lc *LocConf) {
	lc.AutoindexExactSize = true
	lc.MaxRanges = -1 // no limit
}, directives: []directive{
	{name: "index", inherit: inheritReplace, field: "Index", set: func(c *compiler, lv *level, d *Directive) {
		for _, v := range d.Args {
			if v == "" {
				c.fail(d, `index "" in "index" directive is invalid`)
			}
			lv.conf.Index = append(lv.conf.Index, c.template(d, v))
		}
	}},
	{name: "autoindex", set: func(c *compiler, lv *level, d *Directive) { lv.conf.Autoindex = d.Args[0] == "on" }},
	{name: "autoindex_format", dup: "autoindex_format", set: func(c *compiler, lv *level, d *Directive) {
		switch d.Args[0] {
		case "html", "xml", "json", "jsonp":
			lv.conf.AutoindexFormat = d.Args[0]
		default:
			c.fail(d, `invalid value "%s"`, d.Args[0])
		}
	}},
	{name: "autoindex_exact_size", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.AutoindexExactSize = d.Args[0] == "on"
	}},
	{name: "autoindex_localtime", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.AutoindexLocaltime = d.Args[0] == "on"
	}},
	{name: "if_modified_since", dup: "if_modified_since", set: func(c *compiler, lv *level, d *Directive) {
		switch d.Args[0] {
		case "exact":
			lv.conf.IfModifiedSince = IMSExact
		case "before":
			lv.conf.IfModifiedSince = IMSBefore
		case "off":
			lv.conf.IfModifiedSince = IMSOff
		default:
			c.fail(d, `invalid value "%s"`, d.Args[0])
		}
	}},
	{name: "max_ranges", dup: "max_ranges", set: func(c *compiler, lv *level, d *Directive) {
		n, ok := atoi(d.Args[0])
		if !ok {
			c.fail(d, `"max_ranges" directive invalid number`)
		}
		lv.conf.MaxRanges = n
	}},
}}

// IMS is if_modified_since: how If-Modified-Since is compared with a
// response's Last-Modified.
type IMS uint8

const (
	IMSExact  IMS = iota // 304 when they are equal (nginx's default)
	IMSBefore            // 304 when it is at or after Last-Modified
	IMSOff               // never 304 for it
)

// StaticConf is the index, autoindex and static modules' part of a
// location's settings.
type StaticConf struct {
	Index     []*vars.Template
	Autoindex bool
	// AutoindexFormat is html (the default, ""), xml, json or jsonp.
	AutoindexFormat    string
	AutoindexExactSize bool // nginx's default: on
	AutoindexLocaltime bool
	MaxRanges          int // -1 (the default): no limit; 0: ranges off
	IfModifiedSince    IMS // if_modified_since
}

// atoi is nginx's ngx_atoi: decimal digits only, no sign, no overflow.
func atoi(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' || n > (1<<62)/10 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
