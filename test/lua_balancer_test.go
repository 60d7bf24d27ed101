package test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// balancer_by_lua is run for proxy_pass only (testdata/lua/balancer.case
// compares it with nginx). A websockify_pass to an upstream{} block with
// the hook is refused, at load when the block is named in the config and
// per request (502) when a variable names it: picking the tunnel's server
// without the hook would send clients elsewhere.

const luaBalancerUpstream = `
upstream hooked {
    server 127.0.0.1:1;
    balancer_by_lua_block {
        require("ngx.balancer").set_current_peer("127.0.0.1", 2)
    }
}
`

func TestLuaBalancerWebsockifyRefused(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	body := "events {}\nhttp {" + luaBalancerUpstream +
		"server { listen 127.0.0.1:1; location / { websockify_pass hooked; } }\n}\n"
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runBin(t, "-t", "-c", conf)
	if code == 0 || !strings.Contains(out, `balancer_by_lua_block of upstream "hooked" is not run for websockify_pass in `+conf+":") {
		t.Errorf("-t exited %d:\n%s", code, out)
	}

	s := startNgxsockify(t, luaBalancerUpstream+`
server {
    listen 127.0.0.1:{{PORT}};
    location /v { websockify_pass $arg_t; }
}`)
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+s.Addr+"/v?t=hooked", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("dial: %v, %+v", err, resp)
	}
	waitFor(t, func() bool {
		return strings.Contains(s.ErrorLog(), "[error]") &&
			strings.Contains(s.ErrorLog(), "balancer_by_lua is not run for websockify_pass, client: 127.0.0.1")
	}, "the error-log line")
}
