package nginxconf

// mirrorModule is ngx_http_mirror_module: in the pre-content phase a main
// request starts one background subrequest per mirror URI (with the
// request's method and arguments), whose response is discarded; with
// mirror_request_body on (the default) the client's body is read first and
// handed to them.
var mirrorModule = module{
	name:   "ngx_http_mirror_module",
	create: func(lc *LocConf) { lc.MirrorRequestBody = true },
	directives: []directive{
		{name: "mirror", inherit: inheritReplace, field: "Mirrors", set: func(c *compiler, lv *level, d *Directive) {
			// nginx's ngx_http_mirror: `off` and URIs do not mix in one
			// block; a second `off` is a duplicate too
			off := d.Args[0] == "off"
			if lv.conf.Mirrors != nil && (off || len(lv.conf.Mirrors) == 0) {
				c.fail(d, `"mirror" directive is duplicate`)
				return
			}
			if off {
				lv.conf.Mirrors = []string{}
				return
			}
			lv.conf.Mirrors = append(lv.conf.Mirrors, d.Args[0])
		}},
		onOff("mirror_request_body", func(lc *LocConf) *bool { return &lc.MirrorRequestBody }),
	},
}

// MirrorConf is the mirror module's part of a location's settings.
type MirrorConf struct {
	// Mirrors are the mirror URIs, taken as they are written (nginx
	// neither decodes them nor reads variables in them); empty: off.
	Mirrors           []string
	MirrorRequestBody bool
}
