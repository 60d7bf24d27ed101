package nginxconf

import (
	"os"
	"strconv"
	"strings"
)

// davModule is ngx_http_dav_module: the WebDAV methods dav_methods lists
// (PUT, DELETE, MKCOL, COPY, MOVE), the modes of the files and
// directories they create (dav_access), PUT's creation of missing
// directories (create_full_put_path) and DELETE's minimum depth.
var davModule = module{name: "ngx_http_dav_module",
	create: func(lc *LocConf) { lc.DavAccess = 0o600 },
	directives: []directive{
		{name: "dav_methods", dup: "dav_methods", set: func(c *compiler, lv *level, d *Directive) {
			var m DavMethods
			for _, a := range d.Args {
				switch strings.ToUpper(a) {
				case "OFF":
				case "PUT":
					m |= DavPut
				case "DELETE":
					m |= DavDelete
				case "MKCOL":
					m |= DavMkcol
				case "COPY":
					m |= DavCopy
				case "MOVE":
					m |= DavMove
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
		{name: "dav_access", dup: "dav_access", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.DavAccess = c.access(d)
		}},
		onOff("create_full_put_path", func(lc *LocConf) *bool { return &lc.CreateFullPutPath }),
	}}

// DavMethods is a set of dav_methods.
type DavMethods uint8

// The WebDAV methods.
const (
	DavDelete DavMethods = 1 << iota
	DavMove
	DavPut
	DavMkcol
	DavCopy
)

// DavConf is the dav module's part of a location's settings.
type DavConf struct {
	DavMethods        DavMethods  // dav_methods
	MinDeleteDepth    int         // min_delete_depth
	DavAccess         os.FileMode // dav_access: the mode of created files (0600)
	CreateFullPutPath bool        // create_full_put_path
}
