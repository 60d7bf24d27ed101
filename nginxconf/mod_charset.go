package nginxconf

// charsetModule is ngx_http_charset_module: `charset` adds the charset to
// the Content-Type of text responses (no recoding).
var charsetModule = module{name: "ngx_http_charset_module", directives: []directive{
	{name: "charset", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.Charset = d.Args[0]
		if d.Args[0] == "off" {
			lv.conf.Charset = ""
		}
	}},
	{name: "charset_map", support: Ignored, custom: true},
}}

// CharsetConf is the charset module's part of a location's settings.
type CharsetConf struct {
	Charset string // added to text types ("" for off)
}
