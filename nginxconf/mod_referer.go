package nginxconf

import (
	"errors"

	"ngxsockify/nginxconf/vars"
)

// refererModule is ngx_http_referer_module: valid_referers sets what
// $invalid_referer tests (deny with `if ($invalid_referer) { return 403; }`).
// A level may hold several valid_referers: their values add up. Once the
// http block is read, checkReferers adds the server's names (server_names)
// and refuses a level that allows only "none" or "blocked", as nginx's
// merge does. referer_hash_* size nginx's hash only and stay ignored.
var refererModule = module{name: "ngx_http_referer_module", directives: []directive{
	{name: "valid_referers", set: func(c *compiler, lv *level, d *Directive) {
		rf := lv.conf.ValidReferers
		if lv.conf.first("valid_referers") {
			rf = vars.NewReferers()
			// the levels below share this list, completed later
			lv.conf.ValidReferers = rf
			c.referers = append(c.referers, refererLevel{rf: rf, srv: lv.srv})
		}
		for _, a := range d.Args {
			if err := rf.Add(a); err != nil {
				c.fail(d, "%s", err.Error())
				return // (collecting errors: one a directive, as nginx)
			}
		}
	}},
}}

// RefererConf is the referer module's part of a location's settings.
type RefererConf struct {
	ValidReferers *vars.Referers // nil: $invalid_referer is always ""
}

// refererLevel is a level's valid_referers, completed by checkReferers.
type refererLevel struct {
	rf  *vars.Referers
	srv *Server
}

// checkReferers completes every level's valid_referers with its server's
// names, in the order nginx merges them. A name that conflicts is reported
// at the http block's end, the lack of any valid referer with no position,
// as nginx reports them. nginx's merge stops at the first level that
// fails, so even -t (which lists every error it finds) reports one of
// these: the levels after it are not checked.
func (c *compiler) checkReferers(block *Directive) {
	for _, l := range c.referers {
		var names []string
		if l.srv != nil {
			for _, n := range l.srv.Names {
				names = append(names, n.Name)
			}
		}
		nameErr, err := l.rf.Finish(names)
		switch {
		case nameErr != nil:
			c.failAt(block.File, block.CloseLine, nameErr.Error())
			return
		case errors.Is(err, vars.ErrNoValidReferer):
			c.failAt("", 0, err.Error())
			return
		}
	}
}
