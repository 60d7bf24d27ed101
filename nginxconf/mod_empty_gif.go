package nginxconf

// emptyGifModule is nginx's ngx_http_empty_gif_module: a content handler
// answering with a 1x1 transparent GIF.
var emptyGifModule = module{name: "ngx_http_empty_gif_module", directives: []directive{
	{name: "empty_gif", inherit: inheritNone, field: "EmptyGif",
		set: func(_ *compiler, lv *level, _ *Directive) { lv.conf.EmptyGif = true }},
}}

// EmptyGifConf is the empty_gif module's part of a location's settings.
type EmptyGifConf struct {
	EmptyGif bool // empty_gif: the location's content handler
}
