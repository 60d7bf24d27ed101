package nginxconf

import "ngxsockify/nginxconf/vars"

// subModule is ngx_http_sub_filter_module: sub_filter replaces strings in
// the response bodies of the sub_filter_types (text/html by default),
// compared without ASCII case, each pair once unless sub_filter_once off.
var subModule = module{
	name: "ngx_http_sub_filter_module",
	create: func(lc *LocConf) {
		lc.SubFilterOnce = true
	},
	directives: []directive{
		{name: "sub_filter", inherit: inheritReplace, field: "SubFilters", set: func(c *compiler, lv *level, d *Directive) {
			if d.Args[0] == "" {
				c.fail(d, "empty search pattern")
			}
			if len(lv.conf.SubFilters) == 255 {
				c.fail(d, "number of search patterns exceeds 255")
			}
			// nginx lowers the whole pattern before compiling it, so
			// the text around variables compares without case too
			match := c.template(d, LowerASCII(d.Args[0]))
			lv.conf.SubFilters = append(lv.conf.SubFilters, SubFilter{Match: match, Value: c.template(d, d.Args[1])})
		}},
		{name: "sub_filter_types", inherit: inheritReplace, field: "SubFilterTypes", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.SubFilterTypes = c.mimeTypes(d, lv.conf.SubFilterTypes, "text/html")
		}},
		{name: "sub_filter_once", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.SubFilterOnce = d.Args[0] == "on"
		}},
		{name: "sub_filter_last_modified", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.SubFilterLastModified = d.Args[0] == "on"
		}},
	},
}

// SubConf is the sub filter module's part of a location's settings.
type SubConf struct {
	// SubFilters are the sub_filter pairs in configuration order; a level
	// that has its own replaces its parent's.
	SubFilters []SubFilter
	// SubFilterTypes are the MIME types (lower case) filtered; nil means
	// text/html alone, and ["*"] any response, even one without a type.
	SubFilterTypes []string
	// SubFilterOnce: each pair replaces its first match only (default on).
	SubFilterOnce bool
	// SubFilterLastModified keeps Last-Modified (and a weak ETag); off,
	// both are removed from filtered responses.
	SubFilterLastModified bool
}

// SubFilter is one `sub_filter match replacement` pair. Match is lower
// case where it is not a variable's value.
type SubFilter struct {
	Match, Value *vars.Template
}

// mimeTypes adds a types directive's arguments to list, as nginx's
// ngx_http_types_slot does: the first occurrence in a block starts with the
// module's default type, "*" stands for any type (and makes the rest of
// the block's occurrences void), and a type listed twice is a warning.
func (c *compiler) mimeTypes(d *Directive, list []string, def string) []string {
	if len(list) == 1 && list[0] == "*" {
		return list
	}
	if list == nil {
		list = []string{def}
	}
	for _, a := range d.Args {
		if a == "*" {
			return []string{"*"}
		}
		a = LowerASCII(a)
		dup := false
		for _, t := range list {
			dup = dup || t == a
		}
		if dup {
			c.warn(d, `duplicate MIME type "%s"`, a)
			continue
		}
		list = append(list, a)
	}
	return list
}

// LowerASCII is nginx's ngx_strlow: ASCII letters only.
func LowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
