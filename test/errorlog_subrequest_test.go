package test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestErrorLogSubrequestLikeNginx: a line written while a subrequest is
// served (auth_request, SSI include, ngx.location.capture, nested, after
// a rewrite in the subrequest) names the main request's line and headers,
// then ", subrequest: "<the subrequest's URI>"" before the upstream
// (ngx_http_log_error_handler); the main request's own lines do not.
// After an upstream ended, lines say "while sending to client" (the
// connection log's action) until a request, subrequest or internal
// redirect starts (a named location's keep it); log-phase lines say
// "while logging request". The upstream is named by its URL.
func TestErrorLogSubrequestLikeNginx(t *testing.T) {
	body := `server {
    listen 127.0.0.1:{{PORT}};
    root {{DIR}};
    error_log {{DIR}}/e.log;
    location /auth/ {
        auth_request /check;
    }
    location = /check {
        internal;
        proxy_pass http://127.0.0.1:1;
    }
    location /ssi/ {
        ssi on;
    }
    location = /cap {
        content_by_lua_block {
            local r = ngx.location.capture("/sub", {args = "a=1"})
            ngx.log(ngx.ERR, "main after ", r.status)
            r = ngx.location.capture("/mid")
            r = ngx.location.capture("/old")
            ngx.log(ngx.ERR, "main after /new")
            r = ngx.location.capture("/check")
            ngx.log(ngx.ERR, "main after an upstream's end")
            ngx.say("ok")
        }
    }
    location = /mid {
        content_by_lua_block {
            ngx.log(ngx.ERR, "in mid")
            ngx.location.capture("/sub")
        }
    }
    location = /sub {
        content_by_lua_block { ngx.log(ngx.ERR, "in sub ", ngx.var.args) }
    }
    location = /old {
        rewrite ^ /new last;
    }
    location = /new {
        content_by_lua_block { ngx.log(ngx.ERR, "in new") }
    }
    location /ep/named {
        proxy_pass http://127.0.0.1:1;
        error_page 502 = @fallback;
    }
    location /ep/uri {
        proxy_pass http://127.0.0.1:1;
        error_page 502 = /fallback;
    }
    location @fallback {
        content_by_lua_block { ngx.log(ngx.ERR, "in @fallback") ngx.say("f") }
    }
    location /logby/proxied {
        proxy_pass http://127.0.0.1:1;
        log_by_lua_block { ngx.log(ngx.ERR, "in log_by_lua after a proxy_pass") }
    }
    location /logby/return {
        return 200;
        log_by_lua_block { ngx.log(ngx.ERR, "in log_by_lua") }
    }
    location = /fallback {
        content_by_lua_block { ngx.log(ngx.ERR, "in /fallback") ngx.say("f") }
    }
}`
	files := map[string]string{"auth/x": "x\n", "ssi/page.html": `a<!--# include virtual="/ssi/missing.txt?q=1" -->b`}
	logs := errorLogsLikeNginx(t, ServerOptions{HTTP: body, Files: files},
		"GET /auth/x?y=2 HTTP/1.1\r\nHost: a.test\r\nReferer: http://r.test/\r\nConnection: close\r\n\r\n",
		"GET /ssi/page.html HTTP/1.0\r\n\r\n",
		"GET /cap HTTP/1.1\r\nHost: c.test\r\nConnection: close\r\n\r\n",
		"GET /ep/named HTTP/1.0\r\n\r\n",
		"GET /ep/uri HTTP/1.0\r\n\r\n",
		"GET /logby/proxied HTTP/1.0\r\n\r\n",
		"GET /logby/return HTTP/1.0\r\n\r\n",
	)
	if !strings.Contains(logs[0], `, subrequest: "/check", upstream: "http://127.0.0.1:1/check"`) {
		t.Errorf("nginx's log lacks the auth subrequest's line:\n%s", logs[0])
	}
	if d := cmp.Diff(logs[0], logs[1]); d != "" {
		t.Errorf("e.log (-nginx +ngxsockify):\n%s", d)
	}
}

// errorLogsLikeNginx sends the raw requests to nginx, then to ngxsockify,
// each run with o, and returns what each wrote to {{DIR}}/e.log, without
// the time stamps and process numbers, the run's directory as {{DIR}}.
func errorLogsLikeNginx(t *testing.T, o ServerOptions, requests ...string) (logs [2]string) {
	t.Helper()
	stamp := regexp.MustCompile(`(?m)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (\[\w+\]) \d+#\d+: (\*\d+ )?`)
	for i, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, o)
		for _, raw := range requests {
			if _, err := rawRequest(s.Addr, raw, routingTimeout); err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
		}
		s.Stop()
		data, _ := os.ReadFile(filepath.Join(s.Dir, "e.log"))
		logs[i] = strings.ReplaceAll(stamp.ReplaceAllString(string(data), "$1 "), s.Dir, "{{DIR}}")
	}
	return logs
}
