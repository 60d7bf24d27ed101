package nginxconf

import (
	"fmt"
	"sort"
	"strings"

	crossplane "github.com/nginxinc/nginx-go-crossplane"
)

// Bits of a directive mask, with nginx's values (NGX_CONF_* and the
// module context flags), as crossplane spells them.
const (
	confNoArgs = 0x00000001
	confTake1  = 0x00000002
	confTake2  = 0x00000004
	confTake3  = 0x00000008
	confTake4  = 0x00000010
	confTake5  = 0x00000020
	confTake6  = 0x00000040
	confTake7  = 0x00000080
	confBlock  = 0x00000100
	confFlag   = 0x00000400
	confAny    = 0x00000800
	conf1More  = 0x00001000
	conf2More  = 0x00002000

	ctxMain       = 0x000040000
	ctxEvent      = 0x000080000
	ctxMailMain   = 0x000100000
	ctxMailSrv    = 0x000200000
	ctxStreamMain = 0x000400000
	ctxStreamSrv  = 0x000800000
	ctxStreamUps  = 0x001000000
	ctxHTTPMain   = 0x002000000
	ctxHTTPSrv    = 0x004000000
	ctxHTTPLoc    = 0x008000000
	ctxHTTPUps    = 0x010000000
	ctxHTTPSif    = 0x020000000
	ctxHTTPLif    = 0x040000000
	ctxHTTPLmt    = 0x080000000

	ctxHTTPAll = ctxHTTPMain | ctxHTTPSrv | ctxHTTPLoc
)

// Support says what ngxsockify does with a directive.
type Support int

const (
	// Implemented directives are acted on.
	Implemented Support = iota
	// Ignored directives are tuning that cannot change who gets in or what
	// they receive; Parse warns once per occurrence.
	Ignored
	// FailClosed directives are access checks ngxsockify cannot perform:
	// Parse warns and the compiler makes every request under them answer
	// 500 and log why, so nobody gets in unchecked.
	FailClosed
	// UnsupportedContent directives produce content ngxsockify cannot
	// produce (proxy_pass, fastcgi_pass, ...): Parse warns and the location
	// answers 502 with an error log line.
	UnsupportedContent
	// Refused directives would let people in or weaken TLS silently if they
	// were ignored: they are configuration errors.
	Refused
)

func (s Support) String() string {
	switch s {
	case Implemented:
		return "implemented"
	case Ignored:
		return "ignored"
	case FailClosed:
		return "fail-closed"
	case UnsupportedContent:
		return "unsupported"
	case Refused:
		return "refused"
	}
	return fmt.Sprintf("Support(%d)", int(s))
}

// DirectiveInfo describes one directive: where it may appear, how many
// arguments it takes, and what ngxsockify does with it.
type DirectiveInfo struct {
	Name string
	// Masks are nginx-style bitmasks (contexts | arity | block | flag), one
	// per module that defines the name (e.g. http's server{} and
	// upstream's server).
	Masks   []uint
	Support Support
	// Note says why, for -T and warnings; may be empty.
	Note string
}

// Block reports whether the directive takes a { } block in any context.
func (i DirectiveInfo) Block() bool {
	for _, m := range i.Masks {
		if m&confBlock != 0 {
			return true
		}
	}
	return false
}

// Flag reports whether the directive takes one on/off argument.
func (i DirectiveInfo) Flag() bool {
	for _, m := range i.Masks {
		if m&confFlag != 0 {
			return true
		}
	}
	return false
}

func (i DirectiveInfo) maskFor(ctx uint) (uint, bool) {
	for _, m := range i.Masks {
		if m&ctx != 0 {
			return m, true
		}
	}
	return 0, false
}

// Lookup returns what ngxsockify knows about the directive name: nginx
// 1.22's directives, lua-nginx-module 0.10.23's, those whose registry
// entries carry their own masks (the websockify module's and ngxsockify's),
// and `http2` (nginx 1.25 syntax, accepted).
func Lookup(name string) (DirectiveInfo, bool) {
	return lookup(name)
}

// Directives returns every known directive name, sorted (for -T and docs).
func Directives() []string {
	names := make([]string, 0, len(table))
	for n := range table {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func lookup(name string) (DirectiveInfo, bool) {
	i, ok := table[name]
	return i, ok
}

// argNumber is nginx's argument_number[]: the bit for n arguments.
var argNumber = [...]uint{confNoArgs, confTake1, confTake2, confTake3, confTake4, confTake5, confTake6, confTake7}

// arityOK is the argument count check of ngx_conf_handler(); n does not
// count the directive name.
func arityOK(mask uint, n int) bool {
	switch {
	case mask&confAny != 0:
		return true
	case mask&confFlag != 0:
		return n == 1
	case mask&conf1More != 0:
		return n >= 1
	case mask&conf2More != 0:
		return n >= 2
	case n >= len(argNumber):
		return false
	}
	return mask&argNumber[n] != 0
}

// table is built once from crossplane's nginx 1.24 and lua-nginx-module
// tables, minus what the Debian nginx 1.22.1 + lua-nginx-module 0.10.23
// build does not know (found by running `nginx -t` on every name), plus the
// websockify module's directives and `http2`.
var table map[string]DirectiveInfo // built by init in registry.go, after the registry

// notIn122 are names in crossplane's tables that nginx 1.22.1 with
// lua-nginx-module 0.10.23 rejects as unknown for reasons of version, not of
// an optional module left out of the build.
var notIn122 = []string{
	"balancer_keepalive", "lua_ssl_certificate", "lua_ssl_certificate_key", "lua_ssl_key_log",
	"lua_upstream_skip_openssl_default_verify", "precontent_by_lua_block", "precontent_by_lua_file",
	"precontent_by_lua_no_postpone", "proxy_ssl_certificate_by_lua_block",
	"proxy_ssl_certificate_by_lua_file", "proxy_ssl_verify_by_lua_block", "proxy_ssl_verify_by_lua_file",
}

func buildTable() map[string]DirectiveInfo {
	t := map[string]DirectiveInfo{}
	drop := map[string]bool{}
	for _, n := range notIn122 {
		drop[n] = true
	}
	add := func(name string, masks []uint) {
		if drop[name] {
			return
		}
		if strings.HasSuffix(name, "_by_lua_block") {
			// crossplane folds the Lua body into one argument; for nginx
			// it is a block directive without arguments (set_by_lua_block
			// takes the variable).
			args := uint(confNoArgs)
			if name == "set_by_lua_block" {
				args = confTake1
			}
			fixed := make([]uint, len(masks))
			for i, m := range masks {
				fixed[i] = m&^(confTake1|confTake2|confNoArgs|conf1More|confAny) | confBlock | args
			}
			masks = fixed
		}
		sup, note := classify(name)
		t[name] = DirectiveInfo{Name: name, Masks: masks, Support: sup, Note: note}
	}
	for _, name := range crossplaneNames {
		if m, ok := crossplane.MatchOss124(name); ok {
			add(name, m)
		} else if m, ok := crossplane.MatchLuaLatest(name); ok {
			add(name, m)
		}
	}
	// Directives crossplane does not know (the websockify module's, ours)
	// carry their masks in their registry entries.
	for name, sp := range registry {
		if sp.masks != nil {
			add(name, sp.masks)
		}
	}
	// nginx 1.25.1's `http2 on;`, common in current configs.
	add("http2", []uint{ctxHTTPMain | ctxHTTPSrv | confFlag})
	// headers-more (bundled with OpenResty; implemented, mod_headers_more.go)
	// and nginx-upload-progress: third-party modules seen in real configs.
	for _, n := range []string{"more_set_headers", "more_clear_headers", "more_set_input_headers", "more_clear_input_headers"} {
		if m, ok := crossplane.MatchHeadersMoreLatest(n); ok {
			add(n, m)
		}
	}
	add("upload_progress", []uint{ctxHTTPMain | confTake2})
	for _, n := range []string{"track_uploads", "report_uploads", "upload_progress_content_type", "upload_progress_header",
		"upload_progress_jsonp_parameter", "upload_progress_json_output", "upload_progress_jsonp_output",
		"upload_progress_template", "upload_progress_java_output"} {
		add(n, []uint{ctxHTTPAll | ctxHTTPLif | conf1More})
	}
	return t
}

// crossplaneNames are the names in crossplane's nginx 1.24 and
// lua-nginx-module tables (its tables are keyed by name but do not export
// the names); buildTable asks crossplane for each one's masks.
var crossplaneNames = strings.Fields(`
	absolute_redirect accept_mutex accept_mutex_delay access_by_lua access_by_lua_block
	access_by_lua_file access_by_lua_no_postpone access_log add_after_body add_before_body add_header
	add_trailer addition_types aio aio_write alias allow ancient_browser ancient_browser_value
	auth_basic auth_basic_user_file auth_delay auth_http auth_http_header auth_http_pass_client_cert
	auth_http_timeout auth_request auth_request_set autoindex autoindex_exact_size autoindex_format
	autoindex_localtime balancer_by_lua_block balancer_by_lua_file balancer_keepalive
	body_filter_by_lua body_filter_by_lua_block body_filter_by_lua_file break charset charset_map
	charset_types chunked_transfer_encoding client_body_buffer_size client_body_in_file_only
	client_body_in_single_buffer client_body_temp_path client_body_timeout client_header_buffer_size
	client_header_timeout client_max_body_size connection_pool_size content_by_lua
	content_by_lua_block content_by_lua_file create_full_put_path daemon dav_access dav_methods
	debug_connection debug_points default_type deny directio directio_alignment disable_symlinks
	empty_gif env error_log error_page etag events exit_worker_by_lua_block exit_worker_by_lua_file
	expires fastcgi_bind fastcgi_buffer_size fastcgi_buffering fastcgi_buffers
	fastcgi_busy_buffers_size fastcgi_cache fastcgi_cache_background_update fastcgi_cache_bypass
	fastcgi_cache_key fastcgi_cache_lock fastcgi_cache_lock_age fastcgi_cache_lock_timeout
	fastcgi_cache_max_range_offset fastcgi_cache_methods fastcgi_cache_min_uses fastcgi_cache_path
	fastcgi_cache_revalidate fastcgi_cache_use_stale fastcgi_cache_valid fastcgi_catch_stderr
	fastcgi_connect_timeout fastcgi_force_ranges fastcgi_hide_header fastcgi_ignore_client_abort
	fastcgi_ignore_headers fastcgi_index fastcgi_intercept_errors fastcgi_keep_conn fastcgi_limit_rate
	fastcgi_max_temp_file_size fastcgi_next_upstream fastcgi_next_upstream_timeout
	fastcgi_next_upstream_tries fastcgi_no_cache fastcgi_param fastcgi_pass fastcgi_pass_header
	fastcgi_pass_request_body fastcgi_pass_request_headers fastcgi_read_timeout
	fastcgi_request_buffering fastcgi_send_lowat fastcgi_send_timeout fastcgi_socket_keepalive
	fastcgi_split_path_info fastcgi_store fastcgi_store_access fastcgi_temp_file_write_size
	fastcgi_temp_path flv geo geoip_city geoip_country geoip_org geoip_proxy geoip_proxy_recursive
	google_perftools_profiles grpc_bind grpc_buffer_size grpc_connect_timeout grpc_hide_header
	grpc_ignore_headers grpc_intercept_errors grpc_next_upstream grpc_next_upstream_timeout
	grpc_next_upstream_tries grpc_pass grpc_pass_header grpc_read_timeout grpc_send_timeout
	grpc_set_header grpc_socket_keepalive grpc_ssl_certificate grpc_ssl_certificate_key
	grpc_ssl_ciphers grpc_ssl_conf_command grpc_ssl_crl grpc_ssl_name grpc_ssl_password_file
	grpc_ssl_protocols grpc_ssl_server_name grpc_ssl_session_reuse grpc_ssl_trusted_certificate
	grpc_ssl_verify grpc_ssl_verify_depth gunzip gunzip_buffers gzip gzip_buffers gzip_comp_level
	gzip_disable gzip_http_version gzip_min_length gzip_proxied gzip_static gzip_types gzip_vary hash
	header_filter_by_lua header_filter_by_lua_block header_filter_by_lua_file http
	http2_body_preread_size http2_chunk_size http2_idle_timeout http2_max_concurrent_pushes
	http2_max_concurrent_streams http2_max_field_size http2_max_header_size http2_max_requests
	http2_push http2_push_preload http2_recv_buffer_size http2_recv_timeout if if_modified_since
	ignore_invalid_headers image_filter image_filter_buffer image_filter_interlace
	image_filter_jpeg_quality image_filter_sharpen image_filter_transparency image_filter_webp_quality
	imap_auth imap_capabilities imap_client_buffer include index init_by_lua init_by_lua_block
	init_by_lua_file init_worker_by_lua init_worker_by_lua_block init_worker_by_lua_file internal
	ip_hash keepalive keepalive_disable keepalive_requests keepalive_time keepalive_timeout
	large_client_header_buffers least_conn limit_conn limit_conn_dry_run limit_conn_log_level
	limit_conn_status limit_conn_zone limit_except limit_rate limit_rate_after limit_req
	limit_req_dry_run limit_req_log_level limit_req_status limit_req_zone lingering_close
	lingering_time lingering_timeout listen load_module location lock_file log_by_lua log_by_lua_block
	log_by_lua_file log_format log_not_found log_subrequest lua_capture_error_log
	lua_check_client_abort lua_code_cache lua_http10_buffering lua_load_resty_core lua_malloc_trim
	lua_max_pending_timers lua_max_running_timers lua_need_request_body lua_package_cpath
	lua_package_path lua_regex_cache_max_entries lua_regex_match_limit lua_sa_restart lua_shared_dict
	lua_socket_buffer_size lua_socket_connect_timeout lua_socket_keepalive_timeout
	lua_socket_log_errors lua_socket_pool_size lua_socket_read_timeout lua_socket_send_lowat
	lua_socket_send_timeout lua_ssl_certificate lua_ssl_certificate_key lua_ssl_ciphers
	lua_ssl_conf_command lua_ssl_crl lua_ssl_key_log lua_ssl_protocols lua_ssl_trusted_certificate
	lua_ssl_verify_depth lua_thread_cache_max_entries lua_transform_underscores_in_response_headers
	lua_upstream_skip_openssl_default_verify lua_use_default_type lua_worker_thread_vm_pool_size mail
	map map_hash_bucket_size map_hash_max_size master_process max_errors max_ranges memcached_bind
	memcached_buffer_size memcached_connect_timeout memcached_gzip_flag memcached_next_upstream
	memcached_next_upstream_timeout memcached_next_upstream_tries memcached_pass
	memcached_read_timeout memcached_send_timeout memcached_socket_keepalive merge_slashes
	min_delete_depth mirror mirror_request_body modern_browser modern_browser_value mp4
	mp4_buffer_size mp4_max_buffer_size mp4_start_key_frame msie_padding msie_refresh multi_accept
	open_file_cache open_file_cache_errors open_file_cache_min_uses open_file_cache_valid
	open_log_file_cache output_buffers override_charset pcre_jit perl perl_modules perl_require
	perl_set pid pop3_auth pop3_capabilities port_in_redirect postpone_output precontent_by_lua_block
	precontent_by_lua_file precontent_by_lua_no_postpone preread_buffer_size preread_timeout protocol
	proxy_bind proxy_buffer proxy_buffer_size proxy_buffering proxy_buffers proxy_busy_buffers_size
	proxy_cache proxy_cache_background_update proxy_cache_bypass proxy_cache_convert_head
	proxy_cache_key proxy_cache_lock proxy_cache_lock_age proxy_cache_lock_timeout
	proxy_cache_max_range_offset proxy_cache_methods proxy_cache_min_uses proxy_cache_path
	proxy_cache_revalidate proxy_cache_use_stale proxy_cache_valid proxy_connect_timeout
	proxy_cookie_domain proxy_cookie_flags proxy_cookie_path proxy_download_rate proxy_force_ranges
	proxy_half_close proxy_headers_hash_bucket_size proxy_headers_hash_max_size proxy_hide_header
	proxy_http_version proxy_ignore_client_abort proxy_ignore_headers proxy_intercept_errors
	proxy_limit_rate proxy_max_temp_file_size proxy_method proxy_next_upstream
	proxy_next_upstream_timeout proxy_next_upstream_tries proxy_no_cache proxy_pass
	proxy_pass_error_message proxy_pass_header proxy_pass_request_body proxy_pass_request_headers
	proxy_protocol proxy_protocol_timeout proxy_read_timeout proxy_redirect proxy_request_buffering
	proxy_requests proxy_responses proxy_send_lowat proxy_send_timeout proxy_set_body proxy_set_header
	proxy_smtp_auth proxy_socket_keepalive proxy_ssl proxy_ssl_certificate
	proxy_ssl_certificate_by_lua_block proxy_ssl_certificate_by_lua_file proxy_ssl_certificate_key
	proxy_ssl_ciphers proxy_ssl_conf_command proxy_ssl_crl proxy_ssl_name proxy_ssl_password_file
	proxy_ssl_protocols proxy_ssl_server_name proxy_ssl_session_reuse proxy_ssl_trusted_certificate
	proxy_ssl_verify proxy_ssl_verify_by_lua_block proxy_ssl_verify_by_lua_file proxy_ssl_verify_depth
	proxy_store proxy_store_access proxy_temp_file_write_size proxy_temp_path proxy_timeout
	proxy_upload_rate random random_index read_ahead real_ip_header real_ip_recursive
	recursive_error_pages referer_hash_bucket_size referer_hash_max_size request_pool_size
	reset_timedout_connection resolver resolver_timeout return rewrite rewrite_by_lua
	rewrite_by_lua_block rewrite_by_lua_file rewrite_by_lua_no_postpone rewrite_log root satisfy
	scgi_bind scgi_buffer_size scgi_buffering scgi_buffers scgi_busy_buffers_size scgi_cache
	scgi_cache_background_update scgi_cache_bypass scgi_cache_key scgi_cache_lock scgi_cache_lock_age
	scgi_cache_lock_timeout scgi_cache_max_range_offset scgi_cache_methods scgi_cache_min_uses
	scgi_cache_path scgi_cache_revalidate scgi_cache_use_stale scgi_cache_valid scgi_connect_timeout
	scgi_force_ranges scgi_hide_header scgi_ignore_client_abort scgi_ignore_headers
	scgi_intercept_errors scgi_limit_rate scgi_max_temp_file_size scgi_next_upstream
	scgi_next_upstream_timeout scgi_next_upstream_tries scgi_no_cache scgi_param scgi_pass
	scgi_pass_header scgi_pass_request_body scgi_pass_request_headers scgi_read_timeout
	scgi_request_buffering scgi_send_timeout scgi_socket_keepalive scgi_store scgi_store_access
	scgi_temp_file_write_size scgi_temp_path secure_link secure_link_md5 secure_link_secret send_lowat
	send_timeout sendfile sendfile_max_chunk server server_name server_name_in_redirect
	server_names_hash_bucket_size server_names_hash_max_size server_rewrite_by_lua_block
	server_rewrite_by_lua_file server_tokens set set_by_lua set_by_lua_block set_by_lua_file
	set_real_ip_from slice smtp_auth smtp_capabilities smtp_client_buffer smtp_greeting_delay
	source_charset split_clients ssi ssi_last_modified ssi_min_file_chunk ssi_silent_errors ssi_types
	ssi_value_length ssl ssl_alpn ssl_buffer_size ssl_certificate ssl_certificate_by_lua_block
	ssl_certificate_by_lua_file ssl_certificate_key ssl_ciphers ssl_client_certificate
	ssl_client_hello_by_lua_block ssl_client_hello_by_lua_file ssl_conf_command ssl_crl ssl_dhparam
	ssl_early_data ssl_ecdh_curve ssl_engine ssl_handshake_timeout ssl_ocsp ssl_ocsp_cache
	ssl_ocsp_responder ssl_password_file ssl_prefer_server_ciphers ssl_preread ssl_protocols
	ssl_reject_handshake ssl_session_cache ssl_session_fetch_by_lua_block
	ssl_session_fetch_by_lua_file ssl_session_store_by_lua_block ssl_session_store_by_lua_file
	ssl_session_ticket_key ssl_session_tickets ssl_session_timeout ssl_stapling ssl_stapling_file
	ssl_stapling_responder ssl_stapling_verify ssl_trusted_certificate ssl_verify_client
	ssl_verify_depth starttls stream stub_status sub_filter sub_filter_last_modified sub_filter_once
	sub_filter_types subrequest_output_buffer_size tcp_nodelay tcp_nopush thread_pool timeout
	timer_resolution try_files types types_hash_bucket_size types_hash_max_size underscores_in_headers
	uninitialized_variable_warn upstream use user userid userid_domain userid_expires userid_flags
	userid_mark userid_name userid_p3p userid_path userid_service uwsgi_bind uwsgi_buffer_size
	uwsgi_buffering uwsgi_buffers uwsgi_busy_buffers_size uwsgi_cache uwsgi_cache_background_update
	uwsgi_cache_bypass uwsgi_cache_key uwsgi_cache_lock uwsgi_cache_lock_age uwsgi_cache_lock_timeout
	uwsgi_cache_max_range_offset uwsgi_cache_methods uwsgi_cache_min_uses uwsgi_cache_path
	uwsgi_cache_revalidate uwsgi_cache_use_stale uwsgi_cache_valid uwsgi_connect_timeout
	uwsgi_force_ranges uwsgi_hide_header uwsgi_ignore_client_abort uwsgi_ignore_headers
	uwsgi_intercept_errors uwsgi_limit_rate uwsgi_max_temp_file_size uwsgi_modifier1 uwsgi_modifier2
	uwsgi_next_upstream uwsgi_next_upstream_timeout uwsgi_next_upstream_tries uwsgi_no_cache
	uwsgi_param uwsgi_pass uwsgi_pass_header uwsgi_pass_request_body uwsgi_pass_request_headers
	uwsgi_read_timeout uwsgi_request_buffering uwsgi_send_timeout uwsgi_socket_keepalive
	uwsgi_ssl_certificate uwsgi_ssl_certificate_key uwsgi_ssl_ciphers uwsgi_ssl_conf_command
	uwsgi_ssl_crl uwsgi_ssl_name uwsgi_ssl_password_file uwsgi_ssl_protocols uwsgi_ssl_server_name
	uwsgi_ssl_session_reuse uwsgi_ssl_trusted_certificate uwsgi_ssl_verify uwsgi_ssl_verify_depth
	uwsgi_store uwsgi_store_access uwsgi_temp_file_write_size uwsgi_temp_path valid_referers
	variables_hash_bucket_size variables_hash_max_size worker_aio_requests worker_connections
	worker_cpu_affinity worker_priority worker_processes worker_rlimit_core worker_rlimit_nofile
	worker_shutdown_timeout working_directory xclient xml_entities xslt_last_modified xslt_param
	xslt_string_param xslt_stylesheet xslt_types zone`)

func (i DirectiveInfo) allowedIn(ctx uint) bool {
	_, ok := i.maskFor(ctx)
	return ok
}
