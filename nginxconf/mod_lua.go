package nginxconf

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// luaModule is lua-nginx-module (0.10.23): the phase hooks, the http-level
// Lua settings, and the hooks ngxsockify does not run, each classed by
// what ignoring it would do.
var luaModule = module{name: "ngx_http_lua_module", create: func(lc *LocConf) {
	lc.LuaSSLVerifyDepth = 1
}, directives: concat(
	luaHooks("rewrite", func(lc *LocConf, code *LuaCode) { lc.RewriteLua = code }),
	luaHooks("access", func(lc *LocConf, code *LuaCode) { lc.AccessLua = code }),
	luaHooks("content", func(lc *LocConf, code *LuaCode) { lc.ContentLua = code }),
	luaHooks("header_filter", func(lc *LocConf, code *LuaCode) { lc.HeaderFilterLua = code }),
	luaHooks("init", nil),
	luaHooks("init_worker", nil),
	// exit_worker_by_lua_block and _file (no plain form): run when the
	// server stops or a reload retires the configuration (proxy/lua.go).
	luaHooks("exit_worker", nil),
	luaHooks("body_filter", func(lc *LocConf, code *LuaCode) { lc.BodyFilterLua = code }),
	luaHooks("log", func(lc *LocConf, code *LuaCode) { lc.LogLua = code }),
	[]directive{
		{name: "lua_package_path", dup: "lua_package_path", set: func(c *compiler, _ *level, d *Directive) { c.cfg.HTTP.Lua.PackagePath = d.Args[0] }},
		{name: "lua_package_cpath", dup: "lua_package_cpath", set: func(c *compiler, _ *level, d *Directive) { c.cfg.HTTP.Lua.PackageCPath = d.Args[0] }},
		{name: "lua_max_pending_timers", dup: "lua_max_pending_timers", set: func(c *compiler, _ *level, d *Directive) {
			c.cfg.HTTP.Lua.MaxPendingTimers = c.luaCount(d)
		}},
		{name: "lua_max_running_timers", dup: "lua_max_running_timers", set: func(c *compiler, _ *level, d *Directive) {
			c.cfg.HTTP.Lua.MaxRunningTimers = c.luaCount(d)
		}},
		// ngx.run_worker_thread's Lua states (luahooks/worker_thread.go)
		{name: "lua_worker_thread_vm_pool_size", dup: "lua_worker_thread_vm_pool_size", set: func(c *compiler, _ *level, d *Directive) {
			c.cfg.HTTP.Lua.WorkerThreadVMPoolSize = c.luaCount(d)
			c.cfg.HTTP.Lua.WorkerThreadVMPoolSet = true
		}},
		{name: "rewrite_by_lua_no_postpone", dup: "rewrite_by_lua_no_postpone", set: func(c *compiler, _ *level, d *Directive) {
			c.cfg.HTTP.Lua.RewriteNoPostpone = d.Args[0] == "on"
		}},
		{name: "access_by_lua_no_postpone", dup: "access_by_lua_no_postpone", set: func(c *compiler, _ *level, d *Directive) {
			c.cfg.HTTP.Lua.AccessNoPostpone = d.Args[0] == "on"
		}},
		{name: "lua_code_cache", set: func(c *compiler, _ *level, d *Directive) {
			c.cfg.HTTP.Lua.CodeCache = d.Args[0] == "on"
			if !c.cfg.HTTP.Lua.CodeCache {
				c.logWarn(d, true, "lua_code_cache is off; this will hurt performance")
			}
		}},
		{name: "lua_shared_dict", set: func(c *compiler, _ *level, d *Directive) {
			size, err := ParseSize(d.Args[1])
			if err != nil {
				c.fail(d, `invalid lua shared dict size "%s"`, d.Args[1])
			}
			if _, dup := c.cfg.HTTP.Lua.SharedDicts[d.Args[0]]; dup {
				c.fail(d, `lua_shared_dict "%s" is already defined as "%s"`, d.Args[0], d.Args[0])
			}
			c.cfg.HTTP.Lua.SharedDicts[d.Args[0]] = size
		}},
		{name: "lua_transform_underscores_in_response_headers", dup: "lua_transform_underscores_in_response_headers", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.LuaKeepUnderscores = d.Args[0] == "off"
		}},
		// off: HTTP/1.0 output is sent as it comes, without a length.
		{name: "lua_http10_buffering", dup: "lua_http10_buffering", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.LuaNoHTTP10Buffering = d.Args[0] == "off"
		}},
		// off: Lua output gets no default_type Content-Type.
		{name: "lua_use_default_type", dup: "lua_use_default_type", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.LuaNoDefaultType = d.Args[0] == "off"
		}},
		{name: "lua_need_request_body", set: func(c *compiler, lv *level, d *Directive) { lv.conf.NeedRequestBody = d.Args[0] == "on" }},
		// ngx.on_abort, and 499 for a client that goes away while Lua waits
		{name: "lua_check_client_abort", dup: "lua_check_client_abort", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.LuaCheckClientAbort = d.Args[0] == "on"
		}},
		timed("lua_socket_connect_timeout", func(lc *LocConf) *time.Duration { return &lc.LuaSocket.ConnectTimeout }),
		timed("lua_socket_send_timeout", func(lc *LocConf) *time.Duration { return &lc.LuaSocket.SendTimeout }),
		timed("lua_socket_read_timeout", func(lc *LocConf) *time.Duration { return &lc.LuaSocket.ReadTimeout }),
		timed("lua_socket_keepalive_timeout", func(lc *LocConf) *time.Duration { return &lc.LuaSocket.KeepaliveTimeout }),
		{name: "lua_socket_pool_size", dup: "lua_socket_pool_size", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.LuaSocket.PoolSize = c.luaCount(d)
		}},
		{name: "lua_socket_buffer_size", dup: "lua_socket_buffer_size", set: func(c *compiler, lv *level, d *Directive) {
			n, err := ParseSize(d.Args[0])
			if err != nil || n <= 0 {
				c.fail(d, `"lua_socket_buffer_size" directive invalid value`)
			}
			lv.conf.LuaSocket.BufferSize = int(n)
		}},
		{name: "lua_socket_log_errors", dup: "lua_socket_log_errors", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.LuaSocket.QuietErrors = d.Args[0] == "off"
		}},
		// Cosockets' sslhandshake(..., true) verifies against it.
		{name: "lua_ssl_trusted_certificate", dup: "lua_ssl_trusted_certificate", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.LuaSSLTrustedCertificate = c.confName(d.Args[0])
		}},
		// Cosockets' sslhandshake: the versions and the TLS 1.2 suites
		// offered. A bitmask: repeats in one block add up.
		{name: "lua_ssl_protocols", inherit: inheritReplace, field: "LuaSSLProtocols", set: func(c *compiler, lv *level, d *Directive) {
			for _, a := range d.Args {
				if !protocolName(a) {
					c.fail(d, `invalid value "%s"`, a)
				}
				if slices.ContainsFunc(lv.conf.LuaSSLProtocols, func(p string) bool { return strings.EqualFold(p, a) }) {
					c.warn(d, `duplicate value "%s"`, a)
				}
				lv.conf.LuaSSLProtocols = append(lv.conf.LuaSSLProtocols, a)
			}
		}},
		{name: "lua_ssl_ciphers", dup: "lua_ssl_ciphers", set: func(c *compiler, lv *level, d *Directive) {
			ids, ok := ParseCipherList(d.Args[0])
			if !ok {
				c.failAt("", 0, `SSL_CTX_set_cipher_list("`+d.Args[0]+`") failed (SSL: error:0A0000B9:SSL routines::no cipher match)`) // at merge: no position
			}
			lv.conf.LuaSSLCiphers = ids
		}},
		{name: "lua_ssl_verify_depth", dup: "lua_ssl_verify_depth", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.LuaSSLVerifyDepth = c.luaCount(d)
		}},
		// Cosockets' verification checks every certificate of the chain
		// against a CRL of its issuer.
		{name: "lua_ssl_crl", dup: "lua_ssl_crl", set: func(c *compiler, lv *level, d *Directive) {
			lv.conf.LuaSSLCRL = c.confName(d.Args[0])
		}},
		// resty.core is built in and always loaded; lua-nginx-module
		// accepts the flag with a deprecation warning either way.
		{name: "lua_load_resty_core", flagRepeats: true, set: func(c *compiler, _ *level, d *Directive) {
			c.logWarn(d, false, "lua_load_resty_core is deprecated (the lua-resty-core library is required since ngx_lua v0.10.16)")
		}},
		// read by upstream with its block (Upstream.BalancerLua)
		{name: "balancer_by_lua_block", dup: "balancer_by_lua", needsCode: true, set: readByUpstream},
		{name: "balancer_by_lua_file", dup: "balancer_by_lua", needsCode: true, set: readByUpstream},
	},
	// server_rewrite_by_lua_block and _file (no plain form): run in the
	// server rewrite phase (http and server levels).
	luaHooks("server_rewrite", func(lc *LocConf, code *LuaCode) { lc.ServerRewriteLua = code })[1:],
	// ssl_certificate_by_lua_block and _file (there is no plain form):
	// the handshake hook of the server's TLS context (luahooks/ssl_cert.go).
	luaHooks("ssl_certificate", func(lc *LocConf, code *LuaCode) { lc.SSLCertLua = code })[1:],
	refusedLuaTLS("ssl_session_fetch_by_lua", "ssl_session_store_by_lua", "ssl_client_hello_by_lua"),
)}

// LuaConf is the Lua module's part of a location's settings.
type LuaConf struct {
	RewriteLua      *LuaCode
	AccessLua       *LuaCode
	ContentLua      *LuaCode
	HeaderFilterLua *LuaCode
	LogLua          *LuaCode
	BodyFilterLua   *LuaCode
	SSLCertLua      *LuaCode // ssl_certificate_by_lua*: used at the server level
	// ServerRewriteLua is server_rewrite_by_lua*: used at the server level.
	ServerRewriteLua *LuaCode
	NeedRequestBody  bool
	// LuaCheckClientAbort: lua_check_client_abort on.
	LuaCheckClientAbort bool
	// LuaNoDefaultType: lua_use_default_type off.
	LuaNoDefaultType bool
	// LuaNoHTTP10Buffering: lua_http10_buffering off.
	LuaNoHTTP10Buffering bool
	// LuaKeepUnderscores: lua_transform_underscores_in_response_headers
	// off (ngx.header names keep their '_').
	LuaKeepUnderscores bool
	// LuaSSLTrustedCertificate is the PEM file of CAs for cosockets'
	// sslhandshake verification ("" trusts none).
	LuaSSLTrustedCertificate string
	// LuaSSLProtocols and LuaSSLCiphers are lua_ssl_protocols (nil: the
	// default, see ProtocolRange) and lua_ssl_ciphers' suites (nil:
	// DEFAULT, every suite of ParseCipherList's table).
	LuaSSLProtocols []string
	LuaSSLCiphers   []uint16
	// LuaSSLVerifyDepth is lua_ssl_verify_depth: how many intermediate
	// certificates a verified chain may have (OpenSSL 1.1+'s meaning).
	LuaSSLVerifyDepth int
	// LuaSSLCRL is lua_ssl_crl's file ("" none).
	LuaSSLCRL string
	// LuaSocket holds the lua_socket_* settings; zero values mean
	// lua-nginx-module's defaults (luahooks applies them).
	LuaSocket LuaSocketConf
}

// LuaSocketConf is a location's cosocket settings.
type LuaSocketConf struct {
	ConnectTimeout, SendTimeout, ReadTimeout, KeepaliveTimeout time.Duration
	PoolSize, BufferSize                                       int
	QuietErrors                                                bool // lua_socket_log_errors off
}

// balancerLua reads balancer_by_lua_block or _file in an upstream block.
func (c *compiler) balancerLua(u *Upstream, d *Directive) {
	u.BalancerLua = c.luaCode(d, "balancer", d.Args[0])
}

// luaCount is a non-negative number argument (ngx_conf_set_num_slot).
func (c *compiler) luaCount(d *Directive) int {
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < 0 || strings.HasPrefix(d.Args[0], "+") {
		c.fail(d, `"%s" directive invalid number`, d.Name)
	}
	return n
}

// luaHooks declares PHASE_by_lua, _block and _file. They share one slot
// (one hook per phase and block), and refuse empty code, except
// init_worker and exit_worker. The init and exit hooks (store nil) live
// in the http block's Lua
// settings; the others in the location's, inherited by nested blocks.
func luaHooks(phase string, store func(*LocConf, *LuaCode)) []directive {
	base := phase + "_by_lua"
	set := func(c *compiler, lv *level, d *Directive) {
		code := c.luaCode(d, phase, d.Args[0])
		switch phase {
		case "init":
			c.cfg.HTTP.Lua.Init = code
		case "init_worker":
			c.cfg.HTTP.Lua.InitWorker = code
		case "exit_worker":
			c.cfg.HTTP.Lua.ExitWorker = code
		default:
			store(lv.conf, code)
		}
	}
	var out []directive
	names := []string{base, base + "_block", base + "_file"}
	if phase == "exit_worker" {
		names = names[1:] // lua-nginx-module has no exit_worker_by_lua
	}
	for _, name := range names {
		out = append(out, directive{name: name, dup: base, needsCode: phase != "init_worker" && phase != "exit_worker", set: set})
	}
	return out
}

// unsupportedLuaHooks declares the three forms of a hook ngxsockify does
// not run.
func unsupportedLuaHooks(phase string, support Support, note string) []directive {
	base := phase + "_by_lua"
	var out []directive
	for _, name := range []string{base, base + "_block", base + "_file"} {
		out = append(out, directive{name: name, support: support, note: note, dup: base, needsCode: true})
	}
	return out
}

// refusedLuaTLS declares TLS handshake hooks (_block and _file): refused,
// because a certificate or session chosen by a script cannot be ignored.
func refusedLuaTLS(bases ...string) []directive {
	var out []directive
	for _, b := range bases {
		for _, name := range []string{b + "_block", b + "_file"} {
			out = append(out, directive{name: name, support: Refused, note: "TLS handshakes are not scripted"})
		}
	}
	return out
}

func concat(lists ...[]directive) []directive {
	var out []directive
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func (c *compiler) luaCode(d *Directive, phase, arg string) *LuaCode {
	// lua-nginx-module names a chunk after the line where its directive
	// ends, except that a *_by_lua_block is named after the line where the
	// block starts (checked on nginx 1.22).
	line := d.EndLine
	if strings.HasSuffix(d.Name, "_block") {
		line = d.Line
	}
	h := c.cfg.HTTP
	code := &LuaCode{ID: len(h.LuaCodes), Directive: d.Name, Phase: phase, File: d.File, Line: line}
	h.LuaCodes = append(h.LuaCodes, code)
	if strings.HasSuffix(d.Name, "_file") {
		code.Path = arg
		code.PathTmpl = c.template(d, arg)
	} else {
		code.Source = arg
	}
	return code
}
