package nginxconf

// flvModule is nginx's ngx_http_flv_module: `flv` makes the location's
// content handler serve files, and with a start=N argument the file from
// byte N behind the 13-byte FLV header (pseudo-streaming).
var flvModule = module{name: "ngx_http_flv_module", directives: []directive{
	{name: "flv", inherit: inheritNone, field: "Flv",
		set: func(_ *compiler, lv *level, _ *Directive) { lv.conf.Flv = true }},
}}

// FlvConf is the flv module's part of a location's settings.
type FlvConf struct {
	Flv bool // flv: the location's content handler
}
