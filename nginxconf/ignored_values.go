package nginxconf

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Ignored directives are not acted on, but nginx still reads their
// arguments with its slot handlers and refuses a config whose value does
// not parse. ignoredValues says, for each Ignored directive with a typed
// value, which handler nginx 1.22 uses, so that ngxsockify refuses the same
// configs with the same words (and the value is then dropped). Flags are
// checked by the parser for every directive; strings, paths of files and
// values with variables take anything and have no entry.
type valueKind int

const (
	vkSize    valueKind = iota + 1 // ngx_conf_set_size_slot: ngx_parse_size (k, m)
	vkOff                          // ngx_conf_set_off_slot: ngx_parse_offset (k, m, g)
	vkMsec                         // ngx_conf_set_msec_slot: ngx_parse_time, a bare number is ms
	vkSec                          // ngx_conf_set_sec_slot: ngx_parse_time, seconds (no ms)
	vkNum                          // ngx_conf_set_num_slot: ngx_atoi
	vkBufs                         // ngx_conf_set_bufs_slot: number and size, both non-zero
	vkEnum                         // ngx_conf_set_enum_slot: one of words
	vkBitmask                      // ngx_conf_set_bitmask_slot: any of words (no duplicate check)
	vkPath                         // ngx_conf_set_path_slot: a path, then up to three levels
	vkCustom                       // a handler of its own: check
)

// ignoredValue is one directive's entry: its handler kind, the words of an
// enum or bitmask, a post handler's extra check on the parsed number
// (post), or a custom handler (check). Every entry's slot refuses a second
// occurrence in a block ("is duplicate") unless noDup.
type ignoredValue struct {
	kind     valueKind
	words    string
	post     func(n int64) string // a post handler's complaint, or ""
	postBare bool                 // ... printed without the directive's name
	check    func(args []string) (msg string, bare bool)
	noDup    bool
}

// Masks of nginx's bitmask and enum slots (ngx_http_upstream_*_masks,
// ngx_http_proxy_next_upstream_masks, ...), compared without case.
const (
	cacheMethods   = "GET HEAD POST"
	proxyNextUps   = "error timeout invalid_header http_500 http_502 http_503 http_504 http_403 http_404 http_429 updating non_idempotent off"
	fastcgiNextUps = "error timeout invalid_header http_500 http_503 http_403 http_404 http_429 updating non_idempotent off"
	grpcNextUps    = "error timeout invalid_header http_500 http_502 http_503 http_504 http_403 http_404 http_429 non_idempotent off"
	memcachedNext  = "error timeout invalid_response not_found off"
	ignoreHeaders  = "X-Accel-Redirect X-Accel-Expires X-Accel-Limit-Rate X-Accel-Buffering X-Accel-Charset Expires Cache-Control Set-Cookie Vary"
	sslProtocols   = "SSLv2 SSLv3 TLSv1 TLSv1.1 TLSv1.2 TLSv1.3"
)

// ignoredValues is built on first use, after the registry and the table.
var ignoredValues = sync.OnceValue(buildIgnoredValues)

func buildIgnoredValues() map[string]ignoredValue {
	size, off, msec, sec, num := ignoredValue{kind: vkSize}, ignoredValue{kind: vkOff},
		ignoredValue{kind: vkMsec}, ignoredValue{kind: vkSec}, ignoredValue{kind: vkNum}
	bitmask := func(words string) ignoredValue { return ignoredValue{kind: vkBitmask, words: words, noDup: true} }
	custom := func(f func([]string) (string, bool)) ignoredValue { return ignoredValue{kind: vkCustom, check: f} }
	poolSize := ignoredValue{kind: vkSize, postBare: true, post: func(n int64) string {
		// ngx_http_core_pool_size: NGX_MIN_POOL_SIZE and NGX_POOL_ALIGNMENT
		// of a 64-bit build.
		if n < 112 {
			return "the pool size must be no less than 112"
		}
		if n%16 != 0 {
			return "the pool size must be a multiple of 16"
		}
		return ""
	}}
	m := map[string]ignoredValue{
		// core and events
		"timer_resolution":     msec,
		"worker_rlimit_core":   off,
		"worker_rlimit_nofile": num,
		"worker_priority":      custom(workerPriority),
		"debug_points":         {kind: vkEnum, words: "stop abort"},
		"accept_mutex_delay":   msec,
		"worker_aio_requests":  num,
		"worker_connections": custom(func(a []string) (string, bool) {
			if _, ok := ngxAtoi(a[0]); !ok {
				return fmt.Sprintf(`invalid number "%s"`, a[0]), true
			}
			return "", false
		}),
		"use": custom(func(a []string) (string, bool) {
			switch a[0] {
			case "epoll": // the only event module of Debian's build
				return "", false
			}
			return fmt.Sprintf(`invalid event type "%s"`, a[0]), true
		}),

		// http core
		"connection_pool_size": poolSize,
		"request_pool_size":    poolSize,
		"types_hash_max_size":  num, "types_hash_bucket_size": num,
		"variables_hash_max_size": num, "variables_hash_bucket_size": num,
		"server_names_hash_max_size": num, "server_names_hash_bucket_size": num,
		"map_hash_max_size": num, "map_hash_bucket_size": num,
		"referer_hash_max_size": num, "referer_hash_bucket_size": num,
		"proxy_headers_hash_max_size": num, "proxy_headers_hash_bucket_size": num,
		"send_lowat":         size,
		"sendfile_max_chunk": size,
		"read_ahead":         size,
		"output_buffers":     {kind: vkBufs},
		"directio_alignment": off,
		"directio": custom(func(a []string) (string, bool) {
			if a[0] == "off" {
				return "", false
			}
			if _, err := ngxParseOffset(a[0]); err != nil {
				return "invalid value", false
			}
			return "", false
		}),
		"aio":                      custom(aio),
		"open_file_cache":          custom(openFileCache),
		"open_file_cache_min_uses": num,
		"open_file_cache_valid":    sec,

		// other http modules
		"http2_max_concurrent_pushes": num,
		"http2_recv_buffer_size": {kind: vkSize, post: func(n int64) string {
			if n <= 2*16 { // NGX_HTTP_V2_STATE_BUFFER_SIZE
				return "value is too small"
			}
			return ""
		}},
		"ssl_buffer_size":     size,
		"slice":               size,
		"mp4_buffer_size":     size,
		"mp4_max_buffer_size": size,
		"image_filter_buffer": size,

		// lua-nginx-module
		"lua_regex_cache_max_entries":  num,
		"lua_regex_match_limit":        num,
		"lua_thread_cache_max_entries": num,
		"lua_socket_send_lowat":        size,
		"lua_malloc_trim": {kind: vkCustom, noDup: true, check: func(a []string) (string, bool) {
			if _, ok := ngxAtoi(a[0]); !ok {
				return "invalid number in the 1st argument", false
			}
			return "", false
		}},
		// Debian's nginx lacks the patch this directive needs, so its
		// handler refuses every use.
		"lua_capture_error_log": custom(func([]string) (string, bool) {
			return "not found: missing the capture error log patch for nginx", false
		}),

		"zone":                      {kind: vkCustom, check: upstreamZone, noDup: true},
		"worker_cpu_affinity":       custom(cpuAffinity),
		"image_filter_jpeg_quality": {kind: vkCustom, check: imageQuality, noDup: true},
		"image_filter_webp_quality": {kind: vkCustom, check: imageQuality, noDup: true},
	}

	// proxy_* and the same settings of the other upstream modules
	// (fastcgi, uwsgi, scgi, grpc, memcached), where they are Ignored.
	perUpstream := map[string]ignoredValue{
		"buffer_size": size, "buffers": {kind: vkBufs}, "busy_buffers_size": size,
		"limit_rate": size, "max_temp_file_size": size, "temp_file_write_size": size,
		"send_lowat":      size,
		"connect_timeout": msec, "read_timeout": msec, "send_timeout": msec,
		"next_upstream_timeout": msec, "next_upstream_tries": num,
		"cache_lock_age": msec, "cache_lock_timeout": msec,
		"cache_max_range_offset": off, "cache_min_uses": num,
		"cache_methods":    bitmask(cacheMethods),
		"ignore_headers":   bitmask(ignoreHeaders),
		"ssl_protocols":    bitmask(sslProtocols),
		"ssl_verify_depth": num,
		"cache_valid":      {kind: vkCustom, check: cacheValid, noDup: true},
		"temp_path":        {kind: vkPath},
		"store_access":     custom(storeAccess),
		"bind":             custom(bindAddr),
	}
	nextUpstream := map[string]string{"proxy": proxyNextUps, "fastcgi": fastcgiNextUps,
		"uwsgi": proxyNextUps, "scgi": proxyNextUps, "grpc": grpcNextUps, "memcached": memcachedNext}
	for _, mod := range []string{"proxy", "fastcgi", "uwsgi", "scgi", "grpc", "memcached"} {
		for suffix, v := range perUpstream {
			m[mod+"_"+suffix] = v
		}
		name := mod + "_cache_path"
		m[name] = ignoredValue{kind: vkCustom, noDup: true, check: func(a []string) (string, bool) { return cachePath(name, a) }}
		m[mod+"_next_upstream"] = bitmask(nextUpstream[mod])
		m[mod+"_cache_use_stale"] = bitmask(nextUpstream[mod])
	}
	bounded := ignoredValue{kind: vkNum, postBare: true, post: func(n int64) string {
		if n > 255 {
			return "value must be between 0 and 255"
		}
		return ""
	}}
	m["uwsgi_modifier1"], m["uwsgi_modifier2"] = bounded, bounded
	m["memcached_gzip_flag"] = num

	// Keep only what is Ignored: the others have handlers of their own.
	for name := range m {
		if sup, _ := classify(name); sup != Ignored {
			delete(m, name)
		} else if _, known := table[name]; !known {
			delete(m, name)
		}
	}
	return m
}

// checkIgnoredValue reads the arguments of d as nginx's handler does and
// returns its complaint: bare messages are printed as they are, others
// after `"name" directive `.
func checkIgnoredValue(d *Directive) (msg string, bare bool) {
	v, ok := ignoredValues()[d.Name]
	if !ok {
		return "", false
	}
	a := d.Args
	switch v.kind {
	case vkSize, vkOff:
		parse := ngxParseSize
		if v.kind == vkOff {
			parse = ngxParseOffset
		}
		n, err := parse(a[0])
		if err != nil {
			return "invalid value", false
		}
		if v.post != nil {
			if m := v.post(n); m != "" {
				return m, v.postBare
			}
		}
	case vkMsec, vkSec:
		if _, ok := ngxParseTime(a[0], v.kind == vkSec); !ok {
			return "invalid value", false
		}
	case vkNum:
		n, ok := ngxAtoi(a[0])
		if !ok {
			return "invalid number", false
		}
		if v.post != nil {
			if m := v.post(n); m != "" {
				return m, v.postBare
			}
		}
	case vkBufs:
		n, ok := ngxAtoi(a[0])
		if !ok || n == 0 {
			return "invalid value", false
		}
		if sz, err := ngxParseSize(a[1]); err != nil || sz == 0 {
			return "invalid value", false
		}
	case vkEnum, vkBitmask:
		words := strings.Fields(v.words)
	args:
		for _, x := range a {
			for _, w := range words {
				if strings.EqualFold(w, x) {
					continue args
				}
			}
			return fmt.Sprintf(`invalid value "%s"`, x), true
		}
	case vkPath:
		for _, x := range a[1:] {
			if n, ok := ngxAtoi(x); !ok || n == 0 {
				return "invalid value", false
			}
		}
	case vkCustom:
		return v.check(a)
	}
	return "", false
}

// ignoredDupSlot is the duplicate slot of an Ignored directive with a
// typed value ("" for none).
func ignoredDupSlot(name string) string {
	if v, ok := ignoredValues()[name]; ok && !v.noDup {
		return name
	}
	return ""
}

// ngxAtoi is ngx_atoi: decimal digits only, no sign, no overflow.
func ngxAtoi(s string) (int64, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// ngxParseSize is ngx_parse_size: digits with an optional k or m.
func ngxParseSize(s string) (int64, error) {
	if s != "" && strings.ContainsRune("gG", rune(s[len(s)-1])) {
		return 0, errBadValue
	}
	return ngxParseOffset(s)
}

// ngxParseOffset is ngx_parse_offset: digits with an optional k, m or g.
func ngxParseOffset(s string) (int64, error) {
	num := s
	if num != "" && strings.ContainsRune("kKmMgG", rune(num[len(num)-1])) {
		num = num[:len(num)-1]
	}
	if _, ok := ngxAtoi(num); !ok {
		return 0, errBadValue
	}
	return ParseOffset(s)
}

// ngxParseTime is ngx_parse_time: numbers with units in falling order
// (y M w d h m s ms; sec forbids ms, and milliseconds forbid y), a bare
// trailing number in the slot's own unit. It returns the value in the
// slot's unit.
func ngxParseTime(s string, sec bool) (int64, bool) {
	const maxInt = int64(^uint64(0) >> 1)
	const (
		stStart = iota
		stYear
		stMonth
		stWeek
		stDay
		stHour
		stMin
		stSec
		stMsec
		stLast
	)
	step := stStart
	if !sec {
		step = stMonth
	}
	var value, total int64
	valid := false
	for i := 0; i < len(s); {
		c := s[i]
		if c >= '0' && c <= '9' {
			if value > (maxInt-int64(c-'0'))/10 {
				return 0, false
			}
			value = value*10 + int64(c-'0')
			valid = true
			i++
			continue
		}
		i++
		var scale int64
		var next int
		switch c {
		case 'y':
			next, scale = stYear, 60*60*24*365
			if step > stStart {
				return 0, false
			}
		case 'M':
			next, scale = stMonth, 60*60*24*30
		case 'w':
			next, scale = stWeek, 60*60*24*7
		case 'd':
			next, scale = stDay, 60*60*24
		case 'h':
			next, scale = stHour, 60*60
		case 'm':
			if i < len(s) && s[i] == 's' {
				if sec || step >= stMsec {
					return 0, false
				}
				i++
				next, scale = stMsec, 1
				break
			}
			next, scale = stMin, 60
		case 's':
			next, scale = stSec, 1
		case ' ':
			if step >= stSec {
				return 0, false
			}
			next, scale = stLast, 1
		default:
			return 0, false
		}
		if c != 'y' && next != stMsec && next != stLast && step >= next {
			return 0, false
		}
		step = next
		maxV := maxInt / scale
		if step != stMsec && !sec {
			scale *= 1000
			maxV /= 1000
		}
		if value > maxV {
			return 0, false
		}
		value *= scale
		if total > maxInt-value {
			return 0, false
		}
		total += value
		value = 0
		for i < len(s) && s[i] == ' ' {
			i++
		}
	}
	if !valid || total > maxInt-value {
		return 0, false
	}
	return total + value, true
}

// workerPriority is ngx_set_priority: an optional sign, then a number.
func workerPriority(a []string) (string, bool) {
	v := a[0]
	if v != "" && (v[0] == '-' || v[0] == '+') {
		v = v[1:]
	}
	if _, ok := ngxAtoi(v); !ok {
		return "invalid number", false
	}
	return "", false
}

// aio is ngx_http_core_set_aio of a build with threads and without file
// AIO: off, threads or threads=pool (pools are checked by thread_pool).
func aio(a []string) (string, bool) {
	switch v := a[0]; {
	case v == "off", v == "threads", strings.HasPrefix(v, "threads="):
		return "", false
	case v == "on":
		return `"aio on" is unsupported on this platform`, true
	}
	return "invalid value", false
}

// openFileCache is ngx_http_core_open_file_cache: max=N (required, not 0),
// inactive=time, or off.
func openFileCache(a []string) (string, bool) {
	hasMax, isOff := false, false
	for _, p := range a {
		switch {
		case strings.HasPrefix(p, "max="):
			n, ok := ngxAtoi(p[len("max="):])
			if !ok || n == 0 {
				return fmt.Sprintf(`invalid "open_file_cache" parameter "%s"`, p), true
			}
			hasMax = true
		case strings.HasPrefix(p, "inactive="):
			if _, ok := ngxParseTime(p[len("inactive="):], true); !ok {
				return fmt.Sprintf(`invalid "open_file_cache" parameter "%s"`, p), true
			}
		case p == "off":
			isOff = true
		default:
			return fmt.Sprintf(`invalid "open_file_cache" parameter "%s"`, p), true
		}
	}
	if !isOff && !hasMax {
		return `"open_file_cache" must have the "max" parameter`, true
	}
	return "", false
}

// cacheValid is ngx_http_file_cache_valid_set_slot: status codes (or any)
// and a time in seconds last.
func cacheValid(a []string) (string, bool) {
	if _, ok := ngxParseTime(a[len(a)-1], true); !ok {
		return fmt.Sprintf(`invalid time value "%s"`, a[len(a)-1]), true
	}
	for _, c := range a[:len(a)-1] {
		if c == "any" {
			continue
		}
		if n, ok := ngxAtoi(c); !ok || n < 100 || n > 599 {
			return fmt.Sprintf(`invalid status "%s"`, c), true
		}
	}
	return "", false
}

// upstreamZone is ngx_http_upstream_zone: a name and an optional size of
// at least eight pages.
func upstreamZone(a []string) (string, bool) {
	if len(a) < 2 {
		return "", false
	}
	n, err := ngxParseSize(a[1])
	if err != nil {
		return fmt.Sprintf(`invalid zone size "%s"`, a[1]), true
	}
	if n < 8*4096 {
		return fmt.Sprintf(`zone "%s" is too small`, a[0]), true
	}
	return "", false
}

// IgnoredValueSample is a generated input for the differential test of
// Ignored values: Lines are fragments of config (directives with their
// ";") to place in Context (main, events, http, server, location or
// upstream), each tried on its own.
type IgnoredValueSample struct {
	Name, Context string
	Lines         []string
}

// customSamples are the inputs of the handlers of their own (in the table
// by name, or by suffix after an upstream module's prefix).
var customSamples = map[string][]string{
	"worker_priority":           {"-5", "+5", "x", "5x", "-"},
	"worker_connections":        {"512", "x", "-1"},
	"use":                       {"epoll", "poll", "select", "kqueue", "x"},
	"directio":                  {"off", "1g", "4k", "1x", "x"},
	"aio":                       {"threads", "off", "threads=default", "on", "x"},
	"open_file_cache":           {"max=10 inactive=30s", "off", "max=10 off", "max=x", "max=0", "inactive=10s", "max=10 inactive=500ms", "max=10 x", "max=10 min_uses=2"},
	"lua_malloc_trim":           {"1", "x"},
	"lua_capture_error_log":     {"1m"},
	"zone":                      {"z 64k", "z 1", "z x", "z 1g"},
	"worker_cpu_affinity":       {"auto", "0101 1010", "auto 01", "x", "auto x", "012"},
	"image_filter_jpeg_quality": {"75", "0", "x", "101"},
	"image_filter_webp_quality": {"75", "0", "x"},
	"store_access":              {"user:rw", "user:rw group:r all:r", "x", "user:x", "other:r"},
	"bind":                      {"127.0.0.1", "off", "127.0.0.1:0", "[::1]", "x", "127.0.0.1 transparent", "127.0.0.1 x", "256.0.0.1"},
	"cache_path": {"/tmp/ngxsockify-iv keys_zone=z:1m", "/tmp/ngxsockify-iv levels=1:2:2 keys_zone=z:1m max_size=1g min_free=1g inactive=1d use_temp_path=off loader_files=0 loader_sleep=50 loader_threshold=1s manager_files=10 manager_sleep=50ms manager_threshold=200",
		"/tmp/ngxsockify-iv levels=3 keys_zone=z:1m", "/tmp/ngxsockify-iv levels=1:2:2:2 keys_zone=z:1m", "/tmp/ngxsockify-iv levels=x keys_zone=z:1m", "/tmp/ngxsockify-iv levels=1: keys_zone=z:1m",
		"/tmp/ngxsockify-iv keys_zone=z", "/tmp/ngxsockify-iv keys_zone=z:x", "/tmp/ngxsockify-iv keys_zone=z:8191", "/tmp/ngxsockify-iv keys_zone=:1m", "/tmp/ngxsockify-iv levels=1:2",
		"/tmp/ngxsockify-iv keys_zone=z:1m inactive=x", "/tmp/ngxsockify-iv keys_zone=z:1m inactive=500ms", "/tmp/ngxsockify-iv keys_zone=z:1m max_size=x", "/tmp/ngxsockify-iv keys_zone=z:1m min_free=x",
		"/tmp/ngxsockify-iv keys_zone=z:1m use_temp_path=x", "/tmp/ngxsockify-iv keys_zone=z:1m loader_files=x", "/tmp/ngxsockify-iv keys_zone=z:1m loader_sleep=x", "/tmp/ngxsockify-iv keys_zone=z:1m manager_threshold=1y",
		"/tmp/ngxsockify-iv keys_zone=z:1m x=1", "/tmp/ngxsockify-iv keys_zone=z:1m purger=on"},
	"cache_valid": {"200 1m", "any 1m", "1m", "200 302 10m", "99 1m", "x 1m", "200 x", "500ms"},
}

// kindSamples are the valid and invalid inputs of each slot kind.
var kindSamples = map[valueKind][]string{
	vkSize: {"8k", "1M", "100", "1g", "x", "-1", "+1", "k", ""},
	vkOff:  {"1g", "8k", "100", "x", "1t", "-1"},
	vkMsec: {"500ms", "30s", "1h30m", "100", "1d", "x", "1m1h", "1y", "1M", "ms", "1s500"},
	vkSec:  {"30s", "1d", "1y", "1h 30m", "100", "500ms", "x", "1m1h", "s"},
	vkNum:  {"64", "0", "x", "-1", "+1", "1k"},
	vkBufs: {"4 8k", "1 1m", "0 8k", "4 1g", "4 0", "x 8k", "4 x"},
	vkPath: {"/tmp/ngxsockify-iv", "/tmp/ngxsockify-iv 1 2", "/tmp/ngxsockify-iv 0", "/tmp/ngxsockify-iv x"},
}

// IgnoredValueSamples returns, for every Ignored directive with a typed
// value, valid and invalid values and a second occurrence, placed in a
// context nginx allows them in.
func IgnoredValueSamples() []IgnoredValueSample {
	var out []IgnoredValueSample
	for name, v := range ignoredValues() {
		info, _ := lookup(name)
		s := IgnoredValueSample{Name: name}
		for _, c := range []struct {
			bit  uint
			name string
		}{{ctxHTTPLoc, "location"}, {ctxHTTPSrv, "server"}, {ctxHTTPMain, "http"},
			{ctxEvent, "events"}, {ctxMain, "main"}, {ctxHTTPUps, "upstream"}} {
			if _, ok := info.maskFor(c.bit); ok {
				s.Context = c.name
				break
			}
		}
		var vals []string
		switch v.kind {
		case vkEnum, vkBitmask:
			words := strings.Fields(v.words)
			vals = []string{words[0], strings.ToLower(words[len(words)-1]), words[0] + " x", "x"}
			if v.kind == vkBitmask {
				vals = append(vals, strings.Join(words[:min(3, len(words))], " "))
			}
		case vkCustom:
			vals = customSamples[name]
			if vals == nil {
				vals = customSamples[name[strings.IndexByte(name, '_')+1:]]
			}
		default:
			vals = kindSamples[v.kind]
		}
		if name == "http2_recv_buffer_size" {
			vals = append(vals, "32", "33")
		}
		if v.kind == vkNum && v.post != nil {
			vals = append(vals, "255", "256")
		}
		for _, x := range vals {
			if x == "" {
				x = `""`
			}
			s.Lines = append(s.Lines, name+" "+x+";")
		}
		if len(vals) > 0 {
			s.Lines = append(s.Lines, name+" "+vals[0]+"; "+name+" "+vals[0]+";")
		}
		out = append(out, s)
	}
	return out
}

// upstreamBuffers is what the merge of proxy's, fastcgi's, uwsgi's and
// scgi's location settings checks: the buffers against each other. A zero
// field is unset at this level (the parent's value, or the default).
type upstreamBuffers struct {
	bufferSize, bufsNum, bufsSize, busy, writeSize, maxTemp int64
	busySet, writeSet, maxTempSet                           bool
	bad                                                     bool // a value that does not parse: its directive says so
}

// upstreamBufferChecks checks the http block as nginx's merge of the
// server settings and of the upstream modules' location settings does once the block is read (every
// server, location, if and limit_except level), and returns the first
// complaint.
func upstreamBufferChecks(http *Directive) string {
	// The core module's merge comes first: a server's connection pool may
	// not be larger than a large header buffer.
	pool, large := poolSizes(http, 256, 8192)
	for _, srv := range http.Block {
		if srv.Name != "server" {
			continue
		}
		if p, l := poolSizes(srv, pool, large); l < p {
			return `the "large_client_header_buffers" size must be equal to or greater than "connection_pool_size"`
		}
	}
	for _, mod := range []string{"proxy", "fastcgi", "uwsgi", "scgi"} {
		top := readUpstreamBuffers(mod, http, upstreamBuffers{})
		for _, srv := range http.Block {
			if srv.Name != "server" {
				continue
			}
			if msg := walkUpstreamBuffers(mod, srv, top); msg != "" {
				return msg
			}
		}
	}
	return ""
}

func walkUpstreamBuffers(mod string, d *Directive, parent upstreamBuffers) string {
	b := readUpstreamBuffers(mod, d, parent)
	if msg := b.check(mod); msg != "" {
		return msg
	}
	for _, c := range d.Block {
		switch c.Name {
		case "location", "if", "limit_except":
			if msg := walkUpstreamBuffers(mod, c, b); msg != "" {
				return msg
			}
		}
	}
	return ""
}

// readUpstreamBuffers is parent with the settings of block d on top.
// Values that do not parse are left to the directives' own checks.
func readUpstreamBuffers(mod string, d *Directive, b upstreamBuffers) upstreamBuffers {
	for _, c := range d.Block {
		name, ok := strings.CutPrefix(c.Name, mod+"_")
		if !ok || len(c.Args) == 0 {
			continue
		}
		size := func(s string) int64 {
			n, err := ngxParseSize(s)
			if err != nil {
				b.bad = true
			}
			return n
		}
		switch name {
		case "buffer_size":
			b.bufferSize = size(c.Args[0])
		case "buffers":
			if len(c.Args) == 2 {
				n, ok := ngxAtoi(c.Args[0])
				b.bufsNum, b.bufsSize = n, size(c.Args[1])
				if !ok || n == 0 {
					b.bad = true
				}
			}
		case "busy_buffers_size":
			b.busy, b.busySet = size(c.Args[0]), true
		case "temp_file_write_size":
			b.writeSize, b.writeSet = size(c.Args[0]), true
		case "max_temp_file_size":
			b.maxTemp, b.maxTempSet = size(c.Args[0]), true
		}
	}
	return b
}

// check is the merge's test of one level, with nginx's defaults (a page
// of 4096 bytes).
func (b upstreamBuffers) check(mod string) string {
	const page = 4096
	if b.bad {
		return ""
	}
	bufferSize, num, bsize := b.bufferSize, b.bufsNum, b.bufsSize
	if bufferSize == 0 {
		bufferSize = page
	}
	if num == 0 {
		num, bsize = 8, page
	}
	if num < 2 {
		return fmt.Sprintf(`there must be at least 2 "%s_buffers"`, mod)
	}
	size := max(bufferSize, bsize)
	max := fmt.Sprintf(`the maximum of the value of "%s_buffer_size" and one of the "%s_buffers"`, mod, mod)
	busy := 2 * size
	if b.busySet {
		busy = b.busy
	}
	if busy < size {
		return fmt.Sprintf(`"%s_busy_buffers_size" must be equal to or greater than %s`, mod, max)
	}
	if busy > (num-1)*bsize {
		return fmt.Sprintf(`"%s_busy_buffers_size" must be less than the size of all "%s_buffers" minus one buffer`, mod, mod)
	}
	write := 2 * size
	if b.writeSet {
		write = b.writeSize
	}
	if write < size {
		return fmt.Sprintf(`"%s_temp_file_write_size" must be equal to or greater than %s`, mod, max)
	}
	if b.maxTempSet && b.maxTemp != 0 && b.maxTemp < size {
		return fmt.Sprintf(`"%s_max_temp_file_size" must be equal to zero to disable temporary files usage or must be equal to or greater than %s`, mod, max)
	}
	return ""
}

// poolSizes is connection_pool_size and the size of
// large_client_header_buffers in block d, or the parent's.
func poolSizes(d *Directive, pool, large int64) (int64, int64) {
	for _, c := range d.Block {
		switch {
		case c.Name == "connection_pool_size" && len(c.Args) == 1:
			if n, err := ngxParseSize(c.Args[0]); err == nil {
				pool = n
			}
		case c.Name == "large_client_header_buffers" && len(c.Args) == 2:
			if n, err := ngxParseSize(c.Args[1]); err == nil {
				large = n
			}
		}
	}
	return pool, large
}

// cpuAffinity is ngx_set_cpu_affinity: auto, then masks of 0 and 1.
func cpuAffinity(a []string) (string, bool) {
	if a[0] == "auto" {
		a = a[1:]
	}
	for _, m := range a {
		for _, ch := range m {
			if ch != '0' && ch != '1' && ch != ' ' {
				return fmt.Sprintf(`invalid character "%c" in "worker_cpu_affinity"`, ch), true
			}
		}
	}
	return "", false
}

// imageQuality is the image filter's quality: a positive number, or a
// value with variables (read per request).
func imageQuality(a []string) (string, bool) {
	if strings.Contains(a[0], "$") {
		return "", false
	}
	if n, ok := ngxAtoi(a[0]); !ok || n <= 0 {
		return fmt.Sprintf(`invalid value "%s"`, a[0]), true
	}
	return "", false
}

// storeAccess is ngx_conf_set_access_slot: user:, group: or all:, then r
// or rw.
func storeAccess(a []string) (string, bool) {
	for _, v := range a {
		rest, ok := strings.CutPrefix(v, "user:")
		if !ok {
			if rest, ok = strings.CutPrefix(v, "group:"); !ok {
				rest, ok = strings.CutPrefix(v, "all:")
			}
		}
		if !ok || rest != "r" && rest != "rw" {
			return fmt.Sprintf(`invalid value "%s"`, v), true
		}
	}
	return "", false
}

// bindAddr is ngx_http_upstream_bind_set_slot: off, an address (or a
// value with variables), and transparent.
func bindAddr(a []string) (string, bool) {
	if a[0] == "off" {
		return "", false
	}
	if !strings.Contains(a[0], "$") && ParseLocalAddr(a[0]) == nil {
		return fmt.Sprintf(`invalid address "%s"`, a[0]), true
	}
	if len(a) > 1 && a[1] != "transparent" {
		return fmt.Sprintf(`invalid parameter "%s"`, a[1]), true
	}
	return "", false
}

// cachePath is ngx_http_file_cache_set_slot: a path, then key=value
// parameters, keys_zone=name:size required.
func cachePath(name string, a []string) (string, bool) {
	zone := ""
	for _, p := range a[1:] {
		key, val, _ := strings.Cut(p, "=")
		bad := false
		switch key {
		case "levels":
			parts := strings.Split(val, ":")
			bad = len(parts) > 3
			for _, l := range parts {
				bad = bad || l != "1" && l != "2"
			}
			if bad {
				return fmt.Sprintf(`invalid "levels" "%s"`, p), true
			}
			continue
		case "use_temp_path":
			if val != "on" && val != "off" {
				return fmt.Sprintf(`invalid use_temp_path value "%s", it must be "on" or "off"`, p), true
			}
			continue
		case "keys_zone":
			name, size, ok := strings.Cut(val, ":")
			n, err := ngxParseSize(size)
			if !ok || err != nil {
				return fmt.Sprintf(`invalid keys zone size "%s"`, p), true
			}
			if n < 8192 {
				return fmt.Sprintf(`keys zone "%s" is too small`, p), true
			}
			zone = name
			continue
		case "inactive":
			_, ok := ngxParseTime(val, true)
			bad = !ok
		case "max_size", "min_free":
			_, err := ngxParseOffset(val)
			bad = err != nil
		case "loader_files", "manager_files":
			_, ok := ngxAtoi(val)
			bad = !ok
		case "loader_sleep", "loader_threshold", "manager_sleep", "manager_threshold":
			_, ok := ngxParseTime(val, false)
			bad = !ok
		default:
			return fmt.Sprintf(`invalid parameter "%s"`, p), true
		}
		if bad {
			return fmt.Sprintf(`invalid %s value "%s"`, key, p), true
		}
	}
	if zone == "" {
		return fmt.Sprintf(`"%s" must have "keys_zone" parameter`, name), true
	}
	return "", false
}
