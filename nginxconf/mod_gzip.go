package nginxconf

import "ngxsockify/nginxconf/vars"

// gzipModule is ngx_http_gzip_filter_module and ngx_http_gzip_static_module,
// with the gzip settings nginx keeps in its core module (gzip_vary,
// gzip_http_version, gzip_proxied, gzip_disable: ngx_http_gzip_ok, shared
// by both). The filter compresses responses of the gzip_types (text/html
// always) for clients that accept gzip; gzip_static serves file.gz in
// place of file.
var gzipModule = module{
	name: "ngx_http_gzip_filter_module",
	create: func(lc *LocConf) {
		lc.GzipMinLength = 20
		lc.GzipCompLevel = 1
		lc.GzipHTTPVersion = 11
		lc.GzipProxied = GzipProxiedOff
		lc.GzipBufNum, lc.GzipBufSize = 32, 4096
	},
	directives: []directive{
		{name: "gzip", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.Gzip = d.Args[0] == "on"
		}},
		{name: "gzip_types", inherit: inheritReplace, field: "GzipTypes", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.GzipTypes = c.mimeTypes(d, lv.conf.GzipTypes, "text/html")
		}},
		sized("gzip_min_length", func(lc *LocConf) *int64 { return &lc.GzipMinLength }),
		{name: "gzip_comp_level", dup: "gzip_comp_level", set: func(c *compiler, lv *level, d *Directive) {
			n, err := atoiNginx(d.Args[0])
			if err != nil {
				c.fail(d, `"gzip_comp_level" directive invalid number`)
				return
			}
			if n < 1 || n > 9 {
				c.fail(d, "value must be between 1 and 9")
				return
			}
			lv.conf.GzipCompLevel = n
		}},
		{name: "gzip_buffers", dup: "gzip_buffers", set: func(c *compiler, lv *level, d *Directive) {
			n, err := atoiNginx(d.Args[0])
			size, serr := ParseSize(d.Args[1])
			if err != nil || n == 0 || serr != nil || size == 0 {
				c.fail(d, `"gzip_buffers" directive invalid value`)
				return
			}
			lv.conf.GzipBufNum, lv.conf.GzipBufSize = n, int(size)
		}},
		{name: "gzip_http_version", dup: "gzip_http_version", set: func(c *compiler, lv *level, d *Directive) {
			switch d.Args[0] {
			case "1.0":
				lv.conf.GzipHTTPVersion = 10
			case "1.1":
				lv.conf.GzipHTTPVersion = 11
			default:
				c.fail(d, `invalid value "%s"`, d.Args[0])
			}
		}},
		// a bit mask: the occurrences of one level add up (a value
		// given twice is a warning), a level with its own drops its
		// parent's
		{name: "gzip_proxied", inherit: inheritReplace, field: "GzipProxied", set: func(c *compiler, lv *level, d *Directive) {
			for _, a := range d.Args {
				bit, ok := gzipProxiedNames[a]
				if !ok {
					c.fail(d, `invalid value "%s"`, a)
					return
				}
				if lv.conf.GzipProxied&bit != 0 {
					c.warn(d, `duplicate value "%s"`, a)
				}
				lv.conf.GzipProxied |= bit
			}
		}},
		{name: "gzip_vary", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.GzipVary = d.Args[0] == "on"
		}},
		{name: "gzip_disable", inherit: inheritReplace, field: "GzipDisable", set: func(c *compiler, lv *level, d *Directive) {
			if lv.conf.GzipDisable == nil {
				lv.conf.GzipDisable = []*vars.Regex{} // this level has its own list
			}
			for i, a := range d.Args {
				if a == "msie6" {
					lv.conf.GzipDisableMSIE6 = true
					continue
				}
				if re := c.regex(d, i, a, true); re != nil {
					lv.conf.GzipDisable = append(lv.conf.GzipDisable, re)
				}
			}
		}},
		// nginx's undocumented tuning of the deflate stream (window and
		// memory sizes, how much to buffer before compressing): checked
		// as nginx checks them; Go's compressor has its own sizes, and
		// its output decompresses to the same body
		{name: "gzip_window", masks: []uint{ctxHTTPAll | confTake1}, dup: "gzip_window", set: func(c *compiler, lv *level, d *Directive) {
			if !powerOfTwoSize(d.Args[0], 512, 32<<10) {
				c.fail(d, `"gzip_window" directive must be 512, 1k, 2k, 4k, 8k, 16k, or 32k`)
			}
		}},
		{name: "gzip_hash", masks: []uint{ctxHTTPAll | confTake1}, dup: "gzip_hash", set: func(c *compiler, lv *level, d *Directive) {
			if !powerOfTwoSize(d.Args[0], 512, 128<<10) {
				c.fail(d, `"gzip_hash" directive must be 512, 1k, 2k, 4k, 8k, 16k, 32k, 64k, or 128k`)
			}
		}},
		{name: "postpone_gzipping", masks: []uint{ctxHTTPAll | confTake1}, dup: "postpone_gzipping", set: func(c *compiler, lv *level, d *Directive) {
			if _, err := ParseSize(d.Args[0]); err != nil {
				c.fail(d, `"postpone_gzipping" directive invalid value`)
			}
		}},
		{name: "gzip_no_buffer", masks: []uint{ctxHTTPAll | confFlag}, set: func(c *compiler, lv *level, d *Directive) {}},
		// ngx_http_gunzip_filter_module: gzip responses are decompressed
		// for clients that do not accept gzip
		{name: "gunzip", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.Gunzip = d.Args[0] == "on"
		}},
		{name: "gunzip_buffers", dup: "gunzip_buffers", set: func(c *compiler, lv *level, d *Directive) {
			n, err := atoiNginx(d.Args[0])
			size, serr := ParseSize(d.Args[1])
			if err != nil || n == 0 || serr != nil || size == 0 {
				c.fail(d, `"gunzip_buffers" directive invalid value`)
			}
		}},
		{name: "gzip_static", dup: "gzip_static", set: func(c *compiler, lv *level, d *Directive) {
			switch d.Args[0] {
			case "off":
				lv.conf.GzipStatic = GzipStaticOff
			case "on":
				lv.conf.GzipStatic = GzipStaticOn
			case "always":
				lv.conf.GzipStatic = GzipStaticAlways
			default:
				c.fail(d, `invalid value "%s"`, d.Args[0])
			}
		}},
	},
}

// gzip_proxied's bits (nginx's NGX_HTTP_GZIP_PROXIED_*).
const (
	GzipProxiedOff     uint = 1 << 1
	GzipProxiedExpired uint = 1 << 2
	GzipProxiedNoCache uint = 1 << 3
	GzipProxiedNoStore uint = 1 << 4
	GzipProxiedPrivate uint = 1 << 5
	GzipProxiedNoLM    uint = 1 << 6
	GzipProxiedNoETag  uint = 1 << 7
	GzipProxiedAuth    uint = 1 << 8
	GzipProxiedAny     uint = 1 << 9
)

var gzipProxiedNames = map[string]uint{
	"off": GzipProxiedOff, "expired": GzipProxiedExpired, "no-cache": GzipProxiedNoCache,
	"no-store": GzipProxiedNoStore, "private": GzipProxiedPrivate, "no_last_modified": GzipProxiedNoLM,
	"no_etag": GzipProxiedNoETag, "auth": GzipProxiedAuth, "any": GzipProxiedAny,
}

// gzip_static's values.
const (
	GzipStaticOff = iota
	GzipStaticOn
	GzipStaticAlways
)

// GzipConf is the gzip modules' part of a location's settings.
type GzipConf struct {
	// Gzip turns the filter on.
	Gzip bool
	// GzipTypes are the MIME types (lower case) compressed besides
	// text/html; nil means text/html alone, ["*"] any response.
	GzipTypes []string
	// GzipMinLength: a response whose Content-Length is below it is sent
	// as it is (default 20; a response of unknown length is compressed).
	GzipMinLength int64
	// GzipCompLevel is the deflate level, 1..9 (default 1).
	GzipCompLevel int
	// GzipBufNum and GzipBufSize are gzip_buffers (default 32 4k): they
	// bound the compressed bytes held before they are written.
	GzipBufNum, GzipBufSize int
	// GzipHTTPVersion is the lowest request version compressed: 10 or 11.
	GzipHTTPVersion int
	// GzipProxied is the gzip_proxied bit set, for requests with a Via.
	GzipProxied uint
	// GzipVary adds "Vary: Accept-Encoding" where compression was
	// considered.
	GzipVary bool
	// GzipDisable are gzip_disable's regexes (matched, without case,
	// against the User-Agent); a level with its own replaces its parent's.
	GzipDisable []*vars.Regex
	// GzipDisableMSIE6: gzip_disable msie6.
	GzipDisableMSIE6 bool
	// GzipStatic is gzip_static: GzipStaticOff, On or Always.
	GzipStatic int
	// Gunzip decompresses gzip responses for clients that do not accept
	// gzip (gunzip_buffers is accepted: the output goes as it comes).
	Gunzip bool
}

// powerOfTwoSize reports whether the size v is a power of two from lo to
// hi (gzip_window's and gzip_hash's values).
func powerOfTwoSize(v string, lo, hi int64) bool {
	n, err := ParseSize(v)
	return err == nil && n >= lo && n <= hi && n&(n-1) == 0
}
