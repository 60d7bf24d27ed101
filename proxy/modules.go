package proxy

import "ngxsockify/nginxconf"

// modules lists the modules in the order their handlers run within a
// phase, their header filters run, and they claim a level's content
// handler (the first one wins, so an unsupported content directive answers
// 502 before websockify_pass, and websockify_pass wins over content_by_lua).
// What each one builds at load runs in this order too: upstream{} blocks
// before the websockify_pass targets that name them.
//
// A module that needs another's runtime objects must come after it.
var modules = []*module{
	&coreModule,        // Server header; fail-closed directives (first in access); unsupported content
	&sslModule,         // load: certificates
	&upstreamModule,    // load: upstream{} blocks, resolvers
	&realipModule,      // post-read, pre-access
	&limitReqModule,    // pre-access (after realip), load: limit_req and limit_conn zones
	&limitConnModule,   // pre-access (after limit_req)
	&limitRateModule,   // header filter: paces the body (limit_rate)
	&rewriteModule,     // server rewrite, rewrite
	&headersMoreModule, // header filter (the first after core's and limit_rate's); rewrite (after the rewrite module's)
	&luaFilterModule,   // header filter: header_filter_by_lua (next, before add_header's, as nginx's)
	&accessModule,      // access: allow/deny
	&authBasicModule,   // access: auth_basic
	&authRequestModule, // access: auth_request (after auth_basic, as in nginx)
	&websockifyModule,  // content handler
	&proxyModule,       // content handler: proxy_pass
	&luaBalancerModule, // load: refuses balancer_by_lua for websockify_pass
	&statusModule,      // content handlers: stub_status, prometheus_metrics
	&emptyGifModule,    // content handler: empty_gif
	&flvModule,         // content handler: flv
	&gunzipModule,      // header filter: gunzip (before the filters that read the body)
	&charsetModule,     // header filter
	&subModule,         // header filter: sub_filter (its body filter runs before charset recoding)
	&ssiModule,         // header filter: ssi (its body filter wraps sub_filter's and charset's)
	&additionModule,    // header filter: add_before_body, add_after_body (its body filter wraps ssi's)
	&headersModule,     // header filter: expires, add_header
	&useridModule,      // header filter: the userid cookie (after add_header, as in nginx)
	&luaModule,         // rewrite, access (after the others), content handler, body_filter_by_lua's start
	&gzipModule,        // header filter (last: its body step is the last one); content: gzip_static (before static)
	&randomIndexModule, // content: random_index (before dav and static, as in nginx)
	&davModule,         // content: DELETE and MOVE (before static, as in nginx)
	&staticModule,      // pre-content: try_files; content: index, autoindex, static
	&mirrorModule,      // pre-content (after try_files, as nginx runs them)
	&logModule,         // log
}

// flagContent declares a module whose directive, a flag of the location,
// makes h the location's content handler (unless an earlier module's
// handler is already set there).
func flagContent(name string, on func(lc *nginxconf.LocConf) bool, h contentHandler) module {
	return module{
		name: name,
		provision: func(_ *Server, st *state) error {
			for _, lc := range st.cfg.HTTP.Confs {
				if rt := &st.confs[lc.ID]; rt.content == nil && on(lc) {
					rt.content = h
				}
			}
			return nil
		},
	}
}
