package nginxconf

import (
	"strconv"
)

// http2Module is ngx_http_v2_module: HTTP/2 on the addresses whose listen
// has `http2` (or whose server says `http2 on;`, nginx 1.25's spelling),
// through ALPN under TLS and by prior knowledge on a plain port. The
// connection's settings are those of the address's default server, as in
// nginx, where they are per server. Since nginx 1.19.7 the HTTP/1.x
// directives bound HTTP/2 connections too: keepalive_timeout (idle),
// keepalive_requests (streams before GOAWAY), client_header_timeout and
// large_client_header_buffers (a header field, and the whole header list:
// size times number); the http2_* directives they replaced are obsolete
// and only warn.
var http2Module = module{name: "ngx_http_v2_module", create: func(lc *LocConf) {
	lc.HTTP2MaxConcurrentStreams = 128
	lc.HTTP2BodyPrereadSize = 64 << 10
	lc.HTTP2ChunkSize = 8 << 10
}, directives: []directive{
	// nginx 1.25.1's `http2 on;`: the server's addresses speak HTTP/2 as
	// with `listen ... http2` (nginx 1.22 does not know the directive).
	{name: "http2", dup: "http2", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.HTTP2On = d.Args[0] == "on"
	}},
	{name: "http2_max_concurrent_streams", dup: "http2_max_concurrent_streams",
		set: func(c *compiler, lv *level, d *Directive) {
			n, err := strconv.Atoi(d.Args[0])
			if err != nil || n < 0 {
				c.fail(d, `"%s" directive invalid number`, d.Name)
			}
			lv.conf.HTTP2MaxConcurrentStreams = n
		}},
	{name: "http2_body_preread_size", dup: "http2_body_preread_size", set: func(c *compiler, lv *level, d *Directive) {
		n := http2Size(c, d)
		if n > 1<<31-1 {
			c.fail(d, "the maximum body preread buffer size is %d", 1<<31-1)
		}
		lv.conf.HTTP2BodyPrereadSize = n
	}},
	{name: "http2_chunk_size", dup: "http2_chunk_size", set: func(c *compiler, lv *level, d *Directive) {
		n := http2Size(c, d)
		if n == 0 {
			c.fail(d, "the http2 chunk size cannot be zero")
		}
		lv.conf.HTTP2ChunkSize = n
	}},
	http2Obsolete("http2_max_requests", "keepalive_requests"),
	http2Obsolete("http2_idle_timeout", "keepalive_timeout"),
	http2Obsolete("http2_recv_timeout", "client_header_timeout"),
	http2Obsolete("http2_max_field_size", "large_client_header_buffers"),
	http2Obsolete("http2_max_header_size", "large_client_header_buffers"),
}}

// HTTP2Conf is the HTTP/2 module's part of the settings. nginx keeps them
// per server: the connection takes its address's default server's.
type HTTP2Conf struct {
	HTTP2On                   bool  // http2 on (nginx 1.25)
	HTTP2MaxConcurrentStreams int   // http2_max_concurrent_streams: SETTINGS_MAX_CONCURRENT_STREAMS
	HTTP2BodyPrereadSize      int64 // http2_body_preread_size: a stream's initial window
	HTTP2ChunkSize            int64 // http2_chunk_size: the largest DATA frame of a response (per location)
}

// http2Obsolete declares a directive nginx 1.19.7 made obsolete: it warns
// as nginx does and has no effect (use names the directive that rules).
func http2Obsolete(name, use string) directive {
	return directive{name: name, set: func(c *compiler, _ *level, d *Directive) {
		c.warn(d, `the "%s" directive is obsolete, use the "%s" directive instead`, name, use)
	}}
}

// http2Size reads a size as ngx_conf_set_size_slot does (k and m, no g).
func http2Size(c *compiler, d *Directive) int64 {
	n, err := ParseSize(d.Args[0])
	if err != nil {
		c.fail(d, `"%s" directive invalid value`, d.Name)
	}
	return n
}
