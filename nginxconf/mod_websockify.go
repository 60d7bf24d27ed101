package nginxconf

import "time"

// websockifyModule is the websockify module (tg123/websockify-nginx-module):
// websockify_pass is a location's content handler, relaying WebSocket
// clients to a TCP target.
var websockifyModule = module{name: "ngx_http_websockify_module", create: func(lc *LocConf) {
	lc.WSBufferSize = 65543
	lc.WSConnectTimeout, lc.WSReadTimeout, lc.WSSendTimeout = 60*time.Second, 60*time.Second, 60*time.Second
}, directives: []directive{
	{name: "websockify_pass", dup: "websockify_pass", inherit: inheritNone, field: "Websockify", set: func(c *compiler, lv *level, d *Directive) {
		ws := &Websockify{Target: c.template(d, d.Args[0]), File: d.File, Line: d.EndLine}
		if v, ok := ws.Target.Const(); ok {
			ws.Upstream = c.cfg.HTTP.Upstreams[v]
		}
		lv.conf.Websockify = ws
	}},
	{name: "websockify_buffer_size", set: func(c *compiler, lv *level, d *Directive) {
		n, err := ParseSize(d.Args[0])
		if err != nil || n <= 0 {
			c.fail(d, `"websockify_buffer_size" directive invalid value`)
		}
		lv.conf.WSBufferSize = int(n)
	}},
	{name: "websockify_connect_timeout", set: func(c *compiler, lv *level, d *Directive) { lv.conf.WSConnectTimeout = c.duration(d, d.Args[0]) }},
	{name: "websockify_read_timeout", set: func(c *compiler, lv *level, d *Directive) { lv.conf.WSReadTimeout = c.duration(d, d.Args[0]) }},
	{name: "websockify_send_timeout", set: func(c *compiler, lv *level, d *Directive) { lv.conf.WSSendTimeout = c.duration(d, d.Args[0]) }},
}}

// WebsockifyConf is the websockify module's part of a location's settings.
type WebsockifyConf struct {
	Websockify                                     *Websockify // not inherited: a content handler
	WSBufferSize                                   int
	WSConnectTimeout, WSReadTimeout, WSSendTimeout time.Duration
}
