package proxy

import (
	"net/http/httptest"
	"testing"
)

// TestPhases runs requests through the phase engine: the access checker
// under satisfy all and any (fail-closed directives first, the last
// refusal answering under any), limit_except, try_files in pre-content, and
// the rewrite cycle limit. The client is 192.0.2.1 (httptest's).
func TestPhases(t *testing.T) {
	tests := []struct {
		name, loc, method string
		want              int
		wantAuth          bool // a WWW-Authenticate challenge
	}{
		{name: "all/deny", loc: `deny all; try_files /none =204;`, want: 403},
		{name: "all/allow", loc: `allow 192.0.2.1; deny all; try_files /none =204;`, want: 204},
		{name: "all/allow then auth", loc: `allow all; auth_basic x; try_files /none =204;`, want: 401, wantAuth: true},
		{name: "any/deny then auth", loc: `satisfy any; deny all; auth_basic x; try_files /none =204;`, want: 401, wantAuth: true},
		{name: "any/allow grants", loc: `satisfy any; allow all; auth_basic x; try_files /none =204;`, want: 204},
		{name: "any/deny only", loc: `satisfy any; deny all; try_files /none =204;`, want: 403},
		{name: "any/lua grants", loc: `satisfy any; deny all; access_by_lua_block { return } try_files /none =204;`, want: 204},
		{name: "all/lua after deny", loc: `deny all; access_by_lua_block { return } try_files /none =204;`, want: 403},
		{name: "limit_except/other method", loc: `limit_except GET { deny all; } try_files /none =204;`, method: "POST", want: 403},
		{name: "limit_except/listed method", loc: `limit_except GET { deny all; } try_files /none =204;`, want: 204},
		{name: "limit_except/no rewrite", loc: `limit_except GET { deny all; } return 200;`, method: "POST", want: 403},
		{name: "rewrite last cycle", loc: `rewrite ^/(.*)$ /x$1 last;`, want: 500},
		{name: "content handler", loc: `proxy_pass http://127.0.0.1:1;`, want: 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ctx := newBenchServer(t, "server {\n listen 127.0.0.1:18080;\n location / { "+tt.loc+" }\n}")
			defer s.Close()
			method := tt.method
			if method == "" {
				method = "GET"
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest(method, "http://localhost/a", nil).WithContext(ctx))
			if w.Code != tt.want {
				t.Errorf("status %d, want %d", w.Code, tt.want)
			}
			if got := w.Header().Get("WWW-Authenticate") != ""; got != tt.wantAuth {
				t.Errorf("WWW-Authenticate present: %v, want %v", got, tt.wantAuth)
			}
		})
	}
}

// TestModulesRegister checks the engine the modules table built: the
// engine-owned phases have no handlers, fail-closed directives come first
// in the access phase, and the Server header is the first filter.
func TestModulesRegister(t *testing.T) {
	for _, p := range []phase{phaseFindConfig, phasePostRewrite, phasePostAccess} {
		if n := len(handlers.phases[p]); n != 0 {
			t.Errorf("phase %d: %d handlers, want none", p, n)
		}
	}
	if len(handlers.phases[phaseAccess]) < 4 {
		t.Fatalf("access phase: %d handlers, want fail-closed, allow/deny, auth_basic, Lua", len(handlers.phases[phaseAccess]))
	}
	if len(handlers.filters) != 13 {
		t.Errorf("%d header filters, want 13 (Server, limit_rate, headers-more, header_filter_by_lua, gunzip, charset, sub, ssi, addition, headers, userid, body_filter_by_lua's start, gzip)", len(handlers.filters))
	}
}
