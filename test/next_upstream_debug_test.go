package test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestNextUpstreamDebugLine: each failed attempt at an upstream server
// logs nginx's debug line "http next upstream, <NGX_HTTP_UPSTREAM_FT_* in
// hex>": 2 for a refused connect, 10 for a 500 that proxy_next_upstream
// names (only when another server is tried), 40000000 for "no live
// upstreams"; and the attempts balancer_by_lua's set_more_tries grants
// (lua-nginx-module's 138-balancer.t TEST 16).
func TestNextUpstreamDebugLine(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	conf := "pid {{DIR}}/nginx.pid;\nerror_log {{DIR}}/error.log debug;\n" + luaModules + "events {}\nhttp {\n" + `
    access_log off;
    upstream refused { server 127.0.0.1:{{PORT2}}; server 127.0.0.1:{{PORT3}}; }
    upstream fivehundred { server 127.0.0.1:{{PORT4}}; server 127.0.0.1:{{PORT5}}; }
    upstream lua {
        server 0.0.0.1;
        balancer_by_lua_block {
            local balancer = require "ngx.balancer"
            if not ngx.ctx.tried then
                ngx.ctx.tried = true
                local _, err = balancer.set_more_tries(3)
                if err then ngx.log(ngx.ERR, "set_more_tries: ", err) end
            end
            balancer.set_current_peer("127.0.0.1", {{PORT2}})
        }
    }
    server { listen 127.0.0.1:{{PORT4}}; listen 127.0.0.1:{{PORT5}}; location / { return 500; } }
    server {
        listen 127.0.0.1:{{PORT}};
        proxy_next_upstream_tries 0;
        location /refused { proxy_pass http://refused; }
        location /status { proxy_pass http://fivehundred; proxy_next_upstream error http_500; }
        location /lua { proxy_pass http://lua; }
    }
}
`
	line := regexp.MustCompile(`\[(?:debug|error)\] \d+#\d+: \*\d+ (http next upstream, [0-9a-f]+|connect\(\) failed[^,]*|no live upstreams[^,]*)`)
	run := func(kind string) []string {
		s := startServer(t, kind, ServerOptions{Main: conf})
		var got []string
		seen := 0
		for _, path := range []string{"/refused", "/refused", "/status", "/status", "/lua"} {
			resp, err := rawRequest(s.Addr, "GET "+path+" HTTP/1.0\r\n\r\n", routingTimeout)
			if err != nil {
				t.Fatalf("%s %s: %v", kind, path, err)
			}
			got = append(got, fmt.Sprintf("%s %d", path, resp.Status))
			time.Sleep(50 * time.Millisecond) // the lines of a request, then the next's
			log := s.ErrorLog()
			for _, m := range line.FindAllStringSubmatch(log[seen:], -1) {
				got = append(got, "  "+m[1])
			}
			seen = len(log)
		}
		return got
	}
	ng := run("nginx")
	if d := cmp.Diff(ng, run("ngxsockify")); d != "" {
		t.Errorf("status lines and upstream log lines (-nginx +ngxsockify):\n%s", d)
	}
	if !strings.Contains(strings.Join(ng, "\n"), "http next upstream, 40000000") {
		t.Errorf("nginx logged no \"no live upstreams\" attempt:\n%s", strings.Join(ng, "\n"))
	}
}
