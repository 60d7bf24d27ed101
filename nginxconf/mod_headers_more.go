package nginxconf

import (
	"slices"

	"ngxsockify/nginxconf/vars"
)

// headersMoreModule is OpenResty's headers-more module (ngx_http_headers_
// more_filter_module, v0.34): more_set_headers and more_clear_headers
// change the response headers in a header filter, more_set_input_headers
// and more_clear_input_headers the request headers at the end of the
// rewrite phase. Each occurrence is one command, kept in configuration
// order; a nested level that has commands of its own runs its parent's
// first, then its own (the module's merge), whatever kind they are.
//
// The module reports its configuration errors through the error log
// without a file and line, and so do we (failAt with no position).
var headersMoreModule = module{
	name: "ngx_http_headers_more_filter_module",
	directives: []directive{
		{name: "more_set_headers", set: func(c *compiler, lv *level, d *Directive) { c.moreHeaders(lv, d, false, false) }},
		{name: "more_clear_headers", set: func(c *compiler, lv *level, d *Directive) { c.moreHeaders(lv, d, false, true) }},
		{name: "more_set_input_headers", set: func(c *compiler, lv *level, d *Directive) { c.moreHeaders(lv, d, true, false) }},
		{name: "more_clear_input_headers", set: func(c *compiler, lv *level, d *Directive) { c.moreHeaders(lv, d, true, true) }},
	},
}

// HeadersMoreConf is the headers-more module's part of a location's
// settings.
type HeadersMoreConf struct {
	// MoreHeaders are the commands in effect, the inherited ones first.
	// A level never appends to the slice it inherited (it copies), so
	// sibling blocks do not share what they add.
	MoreHeaders []*MoreCmd
	// MoreOutput and MoreInput report whether any command of the level
	// changes the response, or the request, headers.
	MoreOutput, MoreInput bool
}

// MoreCmd is one more_*_headers directive.
type MoreCmd struct {
	Input bool
	// Types (-t) are the content types the command applies to, compared
	// byte for byte with the type (without its parameters); nil: any.
	Types []string
	// Statuses (-s, output only) the response statuses; nil: any.
	Statuses []int
	// Replace (-r, input only): set only the headers the request has.
	Replace bool
	Headers []MoreHeader
}

// MoreHeader is one "Name: value" argument. Value is nil where the value
// is empty (every clear): the header is removed.
type MoreHeader struct {
	Name string // as written
	// Wildcard: Name ended in "*" and matches every name that begins
	// with Prefix (compared without case).
	Wildcard bool
	Prefix   string
	Value    *vars.Template
}

// moreHeaders compiles one occurrence of a headers-more directive.
func (c *compiler) moreHeaders(lv *level, d *Directive, input, clear bool) {
	cmd := &MoreCmd{Input: input}
	name := d.Name
	for i := 0; i < len(d.Args); i++ {
		a := d.Args[i]
		if a == "" {
			continue
		}
		if a[0] != '-' {
			cmd.Headers = append(cmd.Headers, c.moreHeader(d, a, clear))
			continue
		}
		opt := byte(0)
		if len(a) == 2 {
			opt = a[1]
		}
		switch {
		case opt == 't' || opt == 's' && !input:
			if i == len(d.Args)-1 {
				c.failAt("", 0, name+": option -"+string(opt)+" takes an argument.")
				return
			}
			i++
			if opt == 't' {
				cmd.Types = append(cmd.Types, moreTypes(d.Args[i])...)
			} else {
				cmd.Statuses = append(cmd.Statuses, c.moreStatuses(name, d.Args[i])...)
			}
		case opt == 'r' && input:
			cmd.Replace = true
		default:
			c.failAt("", 0, name+`: invalid option name: "`+a+`"`)
			return
		}
	}
	if lv.conf == nil {
		return
	}
	lv.conf.MoreHeaders = append(slices.Clip(lv.conf.MoreHeaders), cmd)
	if input {
		lv.conf.MoreInput = true
	} else {
		lv.conf.MoreOutput = true
	}
}

// moreHeader parses "Name: value" as the module does: the name starts at
// the first byte that is not a space (but is taken from the argument's
// start, the module's way, so leading spaces shift it) and ends at a
// colon or space; the value starts after the colons and spaces that
// follow.
func (c *compiler) moreHeader(d *Directive, raw string, clear bool) MoreHeader {
	keyLen, valStart := 0, -1
	endOfKey := false
	for i := 0; i < len(raw); i++ {
		ch := raw[i]
		switch {
		case keyLen == 0:
			if !isCSpace(ch) {
				keyLen = 1
			}
		case !endOfKey:
			if ch == ':' || isCSpace(ch) {
				endOfKey = true
			} else {
				keyLen++
			}
		case valStart < 0:
			if ch != ':' && !isCSpace(ch) {
				valStart = i
			}
		}
	}
	if keyLen == 0 {
		c.failAt("", 0, d.Name+": no key found in the header argument: "+raw)
		return MoreHeader{}
	}
	h := MoreHeader{Name: raw[:keyLen]}
	if h.Name[keyLen-1] == '*' {
		if keyLen < 2 {
			c.failAt("", 0, d.Name+": wildcard key too short: "+raw)
		}
		h.Wildcard, h.Prefix = true, h.Name[:keyLen-1]
	}
	if clear || valStart < 0 {
		return h
	}
	h.Value = c.template(d, raw[valStart:])
	return h
}

// isCSpace is C's isspace in the C locale.
func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// moreTypes splits a -t list at spaces and semicolons.
func moreTypes(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || isCSpace(s[i]) || s[i] == ';' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	return out
}

// moreStatuses parses a -s list: decimal numbers separated by spaces.
func (c *compiler) moreStatuses(name, s string) []int {
	var out []int
	in := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case isCSpace(ch):
			in = false
		case ch >= '0' && ch <= '9':
			if !in {
				out = append(out, 0)
				in = true
			}
			n := &out[len(out)-1]
			*n = *n*10 + int(ch-'0')
		default:
			c.failAt("", 0, name+`: invalid digit "`+string(ch)+`" found in the status code list "`+s+`"`)
		}
	}
	return out
}
