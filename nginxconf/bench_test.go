package nginxconf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkLoadLarge loads a generated config of 50 servers with 40
// locations each (2,000 locations, maps, regexes, Lua blocks, includes).
func BenchmarkLoadLarge(b *testing.B) {
	dir := b.TempDir()
	var sb strings.Builder
	sb.WriteString("events {}\nhttp {\n  map $http_x_tenant $tenant { default none; ~^t(\\d+)$ t$1; }\n  include servers/*.conf;\n}\n")
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "servers"), 0o755)
	for s := 0; s < 50; s++ {
		var srv strings.Builder
		fmt.Fprintf(&srv, "server {\n  listen 127.0.0.1:%d;\n  server_name s%d.example.com *.s%d.example.org;\n  root /var/www/s%d;\n", 20000+s, s, s, s)
		for l := 0; l < 30; l++ {
			fmt.Fprintf(&srv, "  location /p%d/ { set $x \"$host-$uri-%d\"; return 200 \"$x|$tenant\"; }\n", l, l)
		}
		for l := 0; l < 8; l++ {
			fmt.Fprintf(&srv, "  location ~ ^/r%d/(?<id>\\d+)$ { websockify_pass 127.0.0.1:59%02d; }\n", l, l)
		}
		srv.WriteString("  location /ws { access_by_lua_block { if ngx.var.arg_t ~= \"}\" then return end } websockify_pass $arg_h; }\n")
		srv.WriteString("  location = /x { if ($arg_a = \"1\") { return 403; } return 204; }\n}\n")
		os.WriteFile(filepath.Join(dir, "servers", fmt.Sprintf("s%02d.conf", s)), []byte(srv.String()), 0o644)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Load(filepath.Join(dir, "nginx.conf"), LoadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
