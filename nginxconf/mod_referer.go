package nginxconf

import "ngxsockify/nginxconf/vars"

// refererModule is ngx_http_referer_module: valid_referers sets what
// $invalid_referer tests (deny with `if ($invalid_referer) { return 403; }`).
// referer_hash_* size nginx's hash only and stay ignored.
var refererModule = module{name: "ngx_http_referer_module", directives: []directive{
	{name: "valid_referers", dup: "valid_referers", set: func(c *compiler, lv *level, d *Directive) {
		var names []string
		if lv.srv != nil {
			for _, n := range lv.srv.Names {
				names = append(names, n.Name)
			}
		}
		rf, err := vars.NewReferers(d.Args, names)
		if err != nil {
			c.fail(d, "%s", err.Error())
		}
		lv.conf.ValidReferers = rf
	}},
}}

// RefererConf is the referer module's part of a location's settings.
type RefererConf struct {
	ValidReferers *vars.Referers // nil: $invalid_referer is always ""
}
