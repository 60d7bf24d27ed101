package nginxconf

// ssiModule is ngx_http_ssi_filter_module: `ssi on` parses the bodies of
// the ssi_types responses (text/html by default) for SSI commands
// (include, echo, set, config) and runs them as the body streams.
var ssiModule = module{
	name: "ngx_http_ssi_filter_module",
	create: func(lc *LocConf) {
		lc.SSIValueLength = 256
	},
	directives: []directive{
		{name: "ssi", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.SSI = d.Args[0] == "on"
		}},
		{name: "ssi_silent_errors", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.SSISilentErrors = d.Args[0] == "on"
		}},
		{name: "ssi_last_modified", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.SSILastModified = d.Args[0] == "on"
		}},
		{name: "ssi_types", inherit: inheritReplace, field: "SSITypes", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.SSITypes = c.mimeTypes(d, lv.conf.SSITypes, "text/html")
		}},
		sized("ssi_value_length", func(lc *LocConf) *int { return &lc.SSIValueLength }),
		// the smallest file part sent from disk rather than memory:
		// tuning only, the body is the same
		{name: "ssi_min_file_chunk", set: func(c *compiler, lv *level, d *Directive) {
			if _, err := ParseSize(d.Args[0]); err != nil {
				c.fail(d, `"ssi_min_file_chunk" directive invalid value`)
			}
		}},
	},
}

// SSIConf is the SSI filter module's part of a location's settings.
type SSIConf struct {
	// SSI turns the filter on.
	SSI bool
	// SSISilentErrors: a failed command outputs nothing instead of the
	// error message.
	SSISilentErrors bool
	// SSILastModified keeps Last-Modified (and a weak ETag).
	SSILastModified bool
	// SSITypes are the MIME types (lower case) parsed; nil means
	// text/html alone, ["*"] any response.
	SSITypes []string
	// SSIValueLength is the longest parameter value (default 256).
	SSIValueLength int
}
