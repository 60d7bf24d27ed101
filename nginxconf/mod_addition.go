package nginxconf

// additionModule is ngx_http_addition_filter_module: add_before_body and
// add_after_body name URIs whose subrequests' output goes before and after
// the body of a main request's 200 response of the addition_types
// (text/html by default). The URIs are plain strings (no variables, and a
// "?" is part of the path, as nginx passes them to its subrequest as they
// are); an empty one turns an inherited one off.
var additionModule = module{
	name: "ngx_http_addition_filter_module",
	directives: []directive{
		{name: "add_before_body", dup: "add_before_body", set: func(_ *compiler, lv *level, d *Directive) {
			lv.conf.AddBeforeBody = d.Args[0]
		}},
		{name: "add_after_body", dup: "add_after_body", set: func(_ *compiler, lv *level, d *Directive) {
			lv.conf.AddAfterBody = d.Args[0]
		}},
		{name: "addition_types", inherit: inheritReplace, field: "AdditionTypes", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.AdditionTypes = c.mimeTypes(d, lv.conf.AdditionTypes, "text/html")
		}},
	},
}

// AdditionConf is the addition module's part of a location's settings.
type AdditionConf struct {
	// AddBeforeBody and AddAfterBody are the URIs of the subrequests
	// whose output goes before and after the body ("": none).
	AddBeforeBody, AddAfterBody string
	// AdditionTypes are the MIME types (lower case) added to; nil means
	// text/html alone, and ["*"] any response.
	AdditionTypes []string
}

// randomIndexModule is ngx_http_random_index_module: a request for a
// directory ("/" at the end of the URI) is redirected internally to one of
// its files, picked at random.
var randomIndexModule = module{
	name: "ngx_http_random_index_module",
	directives: []directive{
		{name: "random_index", set: func(_ *compiler, lv *level, d *Directive) {
			lv.conf.RandomIndex = d.Args[0] == "on"
		}},
	},
}

// RandomIndexConf is the random index module's part of a location's
// settings.
type RandomIndexConf struct {
	RandomIndex bool // random_index on
}
