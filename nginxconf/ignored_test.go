package nginxconf

import (
	"strings"
	"testing"
)

// reviewedIgnored is the reviewed list the README's rule asks for: a
// directive may be Ignored only when ignoring it cannot change who gets in
// or what they receive. Each family says why. A directive that becomes
// Ignored (a new name in the tables, a module entry changed) fails
// TestIgnoredAreReviewed until it is added here with its reason, or
// implemented, refused or made to fail closed.
//
// Names ending in "_" stand for every directive with that prefix: the
// settings of a content handler ngxsockify answers 502 for.
var reviewedIgnored = []struct {
	reason string
	names  string
}{
	{"settings of content handlers ngxsockify does not have (their locations answer 502)",
		`fastcgi_ uwsgi_ scgi_ grpc_ memcached_ image_filter_ mp4_ xslt_ xml_entities
		 perl_modules perl_require slice
		 upload_progress upload_progress_ track_uploads`},
	{"proxy_pass tuning: buffers and temporary files, the response cache (without it every request reaches the backend), rates, the source address, TLS settings to backends where Go's defaults are no weaker, stored copies of responses, ranges the backend does not offer (the whole body is sent)",
		`proxy_busy_buffers_size proxy_cache_background_update
		 proxy_cache_bypass proxy_cache_convert_head proxy_cache_key proxy_cache_lock
		 proxy_cache_lock_age proxy_cache_lock_timeout proxy_cache_max_range_offset
		 proxy_cache_methods proxy_cache_min_uses proxy_cache_path proxy_cache_revalidate
		 proxy_cache_use_stale proxy_cache_valid proxy_no_cache
		 proxy_headers_hash_bucket_size proxy_headers_hash_max_size
		 proxy_max_temp_file_size proxy_send_lowat
		 proxy_socket_keepalive proxy_ssl_ciphers proxy_ssl_protocols
		 proxy_temp_file_write_size proxy_temp_path`},
	{"mail{} and stream{} contents: those blocks are refused, or dropped whole with --ignore-stream",
		`auth_http auth_http_header auth_http_pass_client_cert auth_http_timeout imap_auth
		 imap_capabilities imap_client_buffer pop3_auth pop3_capabilities smtp_auth smtp_capabilities
		 smtp_client_buffer smtp_greeting_delay starttls xclient protocol timeout max_errors
		 preread_buffer_size preread_timeout ssl_preread ssl_alpn ssl_handshake_timeout proxy_buffer proxy_download_rate
		 proxy_upload_rate proxy_half_close proxy_requests proxy_responses proxy_timeout
		 proxy_protocol proxy_protocol_timeout proxy_pass_error_message proxy_smtp_auth proxy_ssl`},
	{"process and event-loop tuning (one Go process, no workers)",
		`accept_mutex accept_mutex_delay multi_accept use worker_connections worker_aio_requests
		 worker_cpu_affinity worker_priority worker_rlimit_core worker_rlimit_nofile
		 working_directory lock_file timer_resolution pcre_jit
		 google_perftools_profiles load_module debug_points`},
	{"connection timeouts, buffers and keepalive: when a connection is closed, not what it is sent (WIRE, issue #12, implements them)",
		`client_body_timeout client_header_timeout client_header_buffer_size
		 large_client_header_buffers keepalive_disable keepalive_requests keepalive_time
		 lingering_close lingering_time lingering_timeout send_timeout send_lowat
		 reset_timedout_connection connection_pool_size request_pool_size`},
	{"request header parsing: ngxsockify drops invalid and underscored header names as nginx's defaults do; the non-default settings only show more headers to hooks (WIRE's HTTP layer, issue #12, implements them)",
		`underscores_in_headers`},
	{"buffers, files and I/O: the bytes sent are the same",
		`aio aio_write directio directio_alignment output_buffers read_ahead sendfile
		 sendfile_max_chunk tcp_nodelay tcp_nopush
		 client_body_in_single_buffer
		 open_file_cache open_file_cache_errors open_file_cache_min_uses open_file_cache_valid`},
	{"hash table sizing",
		`map_hash_bucket_size map_hash_max_size server_names_hash_bucket_size
		 server_names_hash_max_size types_hash_bucket_size types_hash_max_size
		 variables_hash_bucket_size variables_hash_max_size referer_hash_bucket_size
		 referer_hash_max_size`},
	{"HTTP/2 buffers: the read buffer's size; server push, which browsers dropped: clients fetch the resources themselves",
		`http2_recv_buffer_size http2_max_concurrent_pushes
		 http2_push http2_push_preload`},
	{"TLS tuning where Go's defaults are no weaker (tickets, curves, stapling; no DHE, no 0-RTT)",
		`ssl_buffer_size ssl_dhparam ssl_early_data ssl_engine ssl_session_ticket_key
`},
	{"an upstream's shared memory zone: one process holds the servers' state anyway",
		`zone`},
	{"logging only",
		`rewrite_log uninitialized_variable_warn
		 lua_capture_error_log`},
	{"variables only: their variables stay unknown, so a config that reads one fails to load",
		`geoip_city geoip_country geoip_org geoip_proxy geoip_proxy_recursive perl_set
		 modern_browser modern_browser_value ancient_browser ancient_browser_value`},
	{"Lua runtime tuning and cosocket TLS settings",
		`lua_malloc_trim
		 lua_regex_cache_max_entries lua_regex_match_limit lua_sa_restart lua_socket_send_lowat
		 lua_ssl_conf_command
		 lua_thread_cache_max_entries`},
}

// reviewedReason returns the reason the list gives for name, or "".
func reviewedReason(name string) string {
	for _, fam := range reviewedIgnored {
		for _, n := range strings.Fields(fam.names) {
			if n == name || strings.HasSuffix(n, "_") && strings.HasPrefix(name, n) {
				return fam.reason
			}
		}
	}
	return ""
}

// TestIgnoredAreReviewed enforces the README's rule over the whole
// directive table: every directive classed Ignored is on reviewedIgnored.
func TestIgnoredAreReviewed(t *testing.T) {
	for _, name := range Directives() {
		info, _ := Lookup(name)
		if info.Support != Ignored {
			continue
		}
		if reviewedReason(name) == "" {
			t.Errorf("%q is ignored but not on the reviewed list: if ignoring it cannot change who gets in or what they receive, add it to reviewedIgnored with the reason; else implement, refuse or fail closed", name)
		}
	}
	// Names the list holds that are no longer ignored (implemented since,
	// or refused) are only reported: the list is then longer than needed.
	for _, fam := range reviewedIgnored {
		for _, n := range strings.Fields(fam.names) {
			if strings.HasSuffix(n, "_") {
				continue
			}
			if info, ok := Lookup(n); !ok || info.Support != Ignored {
				t.Logf("%q is on the reviewed list but is %v now: remove it", n, info.Support)
			}
		}
	}
}
