package nginxconf

import "ngxsockify/nginxconf/vars"

// authBasicModule is ngx_http_auth_basic_module.
var authBasicModule = module{name: "ngx_http_auth_basic_module", directives: []directive{
	{name: "auth_basic", dup: "auth_basic", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.AuthBasic = nil
		if d.Args[0] != "off" {
			lv.conf.AuthBasic = c.template(d, d.Args[0])
		}
	}},
	{name: "auth_basic_user_file", dup: "auth_basic_user_file", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.AuthUserFile = c.template(d, d.Args[0])
	}},
}}

// AuthBasicConf is the auth_basic module's part of a location's settings.
type AuthBasicConf struct {
	AuthBasic    *vars.Template // the realm; nil: off
	AuthUserFile *vars.Template
}
