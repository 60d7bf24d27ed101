package nginxconf

import (
	"strconv"
	"time"
)

// http2Module is ngx_http_v2_module: HTTP/2 on the addresses whose listen
// has `http2` (or whose server says `http2 on;`, nginx 1.25's spelling),
// through ALPN under TLS and by prior knowledge on a plain port. The
// connection's settings are those of the address's default server, as in
// nginx, where they are per server.
var http2Module = module{name: "ngx_http_v2_module", create: func(lc *LocConf) {
	lc.HTTP2MaxConcurrentStreams = 128
	lc.HTTP2IdleTimeout = 3 * time.Minute
	lc.HTTP2MaxFieldSize, lc.HTTP2MaxHeaderSize = 4<<10, 16<<10
	lc.HTTP2MaxRequests = 1000
	lc.HTTP2BodyPrereadSize = 64 << 10
}, directives: []directive{
	// nginx 1.25.1's `http2 on;`: the server's addresses speak HTTP/2 as
	// with `listen ... http2` (nginx 1.22 does not know the directive).
	{name: "http2", dup: "http2", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.HTTP2On = d.Args[0] == "on"
	}},
	http2Number("http2_max_concurrent_streams", func(lc *LocConf) *int { return &lc.HTTP2MaxConcurrentStreams }),
	http2Number("http2_max_requests", func(lc *LocConf) *int { return &lc.HTTP2MaxRequests }),
	timed("http2_idle_timeout", func(lc *LocConf) *time.Duration { return &lc.HTTP2IdleTimeout }),
	http2Size("http2_max_field_size", func(lc *LocConf) *int64 { return &lc.HTTP2MaxFieldSize }),
	http2Size("http2_max_header_size", func(lc *LocConf) *int64 { return &lc.HTTP2MaxHeaderSize }),
	http2Size("http2_body_preread_size", func(lc *LocConf) *int64 { return &lc.HTTP2BodyPrereadSize }),
}}

// HTTP2Conf is the HTTP/2 module's part of the settings. nginx keeps them
// per server: the connection takes its address's default server's.
type HTTP2Conf struct {
	HTTP2On                   bool          // http2 on (nginx 1.25)
	HTTP2MaxConcurrentStreams int           // http2_max_concurrent_streams: SETTINGS_MAX_CONCURRENT_STREAMS
	HTTP2MaxRequests          int           // http2_max_requests: streams on a connection before GOAWAY
	HTTP2IdleTimeout          time.Duration // http2_idle_timeout
	HTTP2MaxFieldSize         int64         // http2_max_field_size: one header field
	HTTP2MaxHeaderSize        int64         // http2_max_header_size: the whole header list
	HTTP2BodyPrereadSize      int64         // http2_body_preread_size: a stream's initial window
}

// http2Number declares a directive with a number (ngx_conf_set_num_slot).
func http2Number(name string, field func(lc *LocConf) *int) directive {
	return directive{name: name, dup: name, set: func(c *compiler, lv *level, d *Directive) {
		n, err := strconv.Atoi(d.Args[0])
		if err != nil || n < 0 {
			c.fail(d, `"%s" directive invalid number`, d.Name)
		}
		*field(lv.conf) = n
	}}
}

// http2Size declares a directive with a size (ngx_conf_set_size_slot).
func http2Size(name string, field func(lc *LocConf) *int64) directive {
	return directive{name: name, dup: name, set: func(c *compiler, lv *level, d *Directive) {
		n, err := ParseSize(d.Args[0])
		if err != nil {
			c.fail(d, `"%s" directive invalid value`, d.Name)
		}
		if name == "http2_body_preread_size" && n > 1<<31-1 {
			c.fail(d, "the maximum body preread buffer size is %d", 1<<31-1)
		}
		*field(lv.conf) = n
	}}
}
