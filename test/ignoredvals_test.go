package test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"ngxsockify/nginxconf"
)

// TestIgnoredValuesDifferential is generated from nginxconf's table of
// Ignored directives with typed values (sizes, numbers, times, buffers,
// enums, ...): each sample line, valid or not, and a second occurrence in
// one block go through `nginx -t` and `ngxsockify -t`, which must agree on
// the outcome and on the message with its line.
func TestIgnoredValuesDifferential(t *testing.T) {
	samples := nginxconf.IgnoredValueSamples()
	sort.Slice(samples, func(i, j int) bool { return samples[i].Name < samples[j].Name })
	if len(samples) < 100 {
		t.Fatalf("only %d Ignored directives with typed values", len(samples))
	}
	nginx := requireNginx(t)
	ngx := requireNgxsockify(t)
	for _, s := range samples {
		if s.Context == "" {
			t.Errorf("%s: no context to try it in", s.Name)
			continue
		}
		for i, line := range s.Lines {
			t.Run(fmt.Sprintf("%s/%d", s.Name, i), func(t *testing.T) {
				t.Parallel()
				port := freePort(t)
				conf := ivConfig(s.Context, line, port)
				run := func(bin string) string {
					dir := t.TempDir()
					main := filepath.Join(dir, "nginx.conf")
					text := strings.ReplaceAll(conf, "{{DIR}}", dir)
					if err := os.WriteFile(main, []byte(text), 0o644); err != nil {
						t.Fatal(err)
					}
					out, exit := checkConf(t, bin, main)
					return synOutcome(out, exit, dir, port)
				}
				want, got := run(nginx), run(ngx)
				if why, ok := ivDeviations[line]; ok {
					// recorded: nginx must still refuse it, ngxsockify loads it
					if want == "ok" || got != "ok" {
						t.Errorf("%s: the deviation (%s) no longer holds:\nnginx:      %s\nngxsockify: %s", line, why, want, got)
					}
					return
				}
				if got != want {
					t.Errorf("%s in %s:\nnginx:      %s\nngxsockify: %s", line, s.Context, want, got)
				}
			})
		}
	}
}

// ivDeviations are samples nginx refuses only when it builds its hash
// tables after reading the config, with no file and line to point at;
// ngxsockify builds no such tables and loads them.
var ivDeviations = map[string]string{
	"variables_hash_max_size 0;":    "variables_hash is built at startup",
	"variables_hash_bucket_size 0;": "variables_hash is built at startup",
}

func init() {
	// Two cache paths are compared with each other once all are read.
	for _, mod := range []string{"proxy", "fastcgi", "uwsgi", "scgi"} {
		d := mod + "_cache_path /tmp/ngxsockify-iv keys_zone=z:1m;"
		ivDeviations[d+" "+d] = "the same path twice is found after reading the http block"
	}
}

// ivConfig places line in context ctx of a config that loads the dynamic
// modules some of the directives belong to.
func ivConfig(ctx, line string, port int) string {
	at := map[string]string{ctx: line}
	return fmt.Sprintf(`load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
load_module /usr/lib/nginx/modules/ngx_http_image_filter_module.so;
pid {{DIR}}/nginx.pid;
error_log {{DIR}}/error.log;
events {
%s
}
http {
    upstream u { server 127.0.0.1:1; }
    server {
        listen 127.0.0.1:%d;
        location / {
%s
        }
        %s
    }
    %s
    upstream v { server 127.0.0.1:1;
        %s
    }
}
%s
`, at["events"], port, at["location"], at["server"], at["http"], at["upstream"], at["main"])
}
