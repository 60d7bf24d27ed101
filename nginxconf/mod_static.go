package nginxconf

import "ngxsockify/nginxconf/vars"

// staticModule is ngx_http_index_module, ngx_http_autoindex_module and
// ngx_http_static_module: what the content phase does when no content
// handler is set.
var staticModule = module{name: "ngx_http_static_module", directives: []directive{
	{name: "index", inherit: inheritReplace, field: "Index", set: func(c *compiler, lv *level, d *Directive) {
		for _, v := range d.Args {
			if v == "" {
				c.fail(d, `index "" in "index" directive is invalid`)
			}
			lv.conf.Index = append(lv.conf.Index, c.template(d, v))
		}
	}},
	{name: "autoindex", set: func(c *compiler, lv *level, d *Directive) { lv.conf.Autoindex = d.Args[0] == "on" }},
}}

// StaticConf is the index, autoindex and static modules' part of a
// location's settings.
type StaticConf struct {
	Index     []*vars.Template
	Autoindex bool
}
