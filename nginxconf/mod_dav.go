package nginxconf

import (
	"strconv"
	"strings"
)

// davModule is ngx_http_dav_module for the methods that only remove or
// rename files: DELETE and MOVE. PUT, MKCOL and COPY (which create files,
// with dav_access and create_full_put_path) are refused, so a config that
// lets clients write files does not load; dav_access and
// create_full_put_path matter only to those and stay ignored.
var davModule = module{name: "ngx_http_dav_module", directives: []directive{
	{name: "dav_methods", dup: "dav_methods", set: func(c *compiler, lv *level, d *Directive) {
		var m DavMethods
		for _, a := range d.Args {
			switch strings.ToUpper(a) {
			case "OFF":
			case "DELETE":
				m |= DavDelete
			case "MOVE":
				m |= DavMove
			case "PUT", "MKCOL", "COPY":
				c.fail(d, `"dav_methods %s" is not supported by ngxsockify (only DELETE and MOVE)`, a)
			default:
				c.fail(d, `invalid value "%s"`, a)
			}
		}
		lv.conf.DavMethods = m
	}},
	{name: "min_delete_depth", dup: "min_delete_depth", set: func(c *compiler, lv *level, d *Directive) {
		n, err := strconv.Atoi(d.Args[0])
		if err != nil || n < 0 {
			c.fail(d, `"min_delete_depth" directive invalid number`)
		}
		lv.conf.MinDeleteDepth = n
	}},
}}

// DavMethods is a set of dav_methods.
type DavMethods uint8

// The WebDAV methods ngxsockify serves.
const (
	DavDelete DavMethods = 1 << iota
	DavMove
)

// DavConf is the dav module's part of a location's settings.
type DavConf struct {
	DavMethods     DavMethods // dav_methods
	MinDeleteDepth int        // min_delete_depth
}
