package nginxconf

// authRequestModule is ngx_http_auth_request_module: a subrequest decides
// access (2xx allows; 401 and 403 refuse; anything else is 500), and
// auth_request_set copies values of the subrequest's variables.
var authRequestModule = module{name: "ngx_http_auth_request_module", directives: []directive{
	{name: "auth_request", dup: "auth_request", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.AuthRequest = d.Args[0]
		if d.Args[0] == "off" {
			lv.conf.AuthRequest = ""
		}
	}},
	{name: "auth_request_set", inherit: inheritReplace, field: "AuthRequestSet", set: func(c *compiler, lv *level, d *Directive) {
		name, ok := varName(d.Args[0])
		if !ok {
			c.fail(d, `invalid variable name "%s"`, d.Args[0])
			return
		}
		ref, err := c.reg.Var(name)
		if err != nil {
			c.fail(d, "%s", err.Error())
			return
		}
		lv.conf.AuthRequestSet = append(lv.conf.AuthRequestSet, SetStmt{Var: ref, Value: c.template(d, d.Args[1])})
	}},
}}

// AuthRequestConf is the auth_request module's part of a location's
// settings.
type AuthRequestConf struct {
	AuthRequest    string // the subrequest's URI; "": off
	AuthRequestSet []SetStmt
}
