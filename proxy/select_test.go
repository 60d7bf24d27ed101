package proxy

import (
	"fmt"
	"strings"
	"testing"

	"ngxsockify/nginxconf"
)

func loadServer(tb testing.TB, body string) *nginxconf.Server {
	tb.Helper()
	cfg, err := nginxconf.LoadString("/t/nginx.conf", "events {}\nhttp {\nserver {\n"+body+"\n}\n}\n", nginxconf.LoadOptions{Prefix: "/t"})
	if err != nil {
		tb.Fatal(err)
	}
	return cfg.HTTP.Servers[0]
}

// TestFindLocation checks nginx's location precedence, including the cases
// where nested locations and regexes interact.
func TestFindLocation(t *testing.T) {
	srv := loadServer(t, `
location = / { return 200 exact-root; }
location / { return 200 root; }
location /a/ { return 200 a; }
location /a/b/ { return 200 ab;
    location ~ \.txt$ { return 200 ab-txt; }
}
location ^~ /img/ { return 200 img; }
location ~ \.(png|jpg)$ { return 200 png; }
location ~* \.PHP$ { return 200 php; }
location /n/ { return 200 n;
    location ^~ /n/deep/ { return 200 n-deep; }
}
location ~ ^/n/deep/.*\.png$ { return 200 n-deep-png; }
location ~ ^/r/ { return 200 r;
    location ~ ^/r/x { return 200 rx; }
}
`)
	cases := map[string]string{
		"/":             "= /",
		"/x":            "/",
		"/a/":           "/a/",
		"/a/b/c":        "/a/b/",
		"/a/b/c.txt":    "\\.txt$",
		"/img/a.png":    "/img/",
		"/other/a.png":  "\\.(png|jpg)$",
		"/a/index.php":  "\\.PHP$",
		"/n/deep/x":     "/n/deep/",
		"/n/deep/x.png": "\\.(png|jpg)$", // checked on nginx 1.22: a nested ^~ does not stop outer regexes
		"/r/y":          "^/r/",
		"/r/x":          "^/r/x",
	}
	for uri, want := range cases {
		loc, _ := findLocation(srv.Root, uri)
		got := "<nil>"
		if loc != nil {
			got = loc.Path
			if loc.Modifier == nginxconf.ModExact {
				got = "= " + got
			}
		}
		if got != want {
			t.Errorf("%s: location %q, want %q", uri, got, want)
		}
	}
}

// BenchmarkFindLocation200 measures location choice on a server with 200
// locations: 150 prefixes, 40 regexes, 10 exact.
func BenchmarkFindLocation200(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 150; i++ {
		fmt.Fprintf(&sb, "location /app%d/section%d/ { return 200; }\n", i, i%7)
	}
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&sb, "location ~ ^/api/v%d/(users|groups)/(\\d+)$ { return 200; }\n", i)
	}
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&sb, "location = /exact%d { return 200; }\n", i)
	}
	srv := loadServer(b, sb.String())
	uris := []string{"/app77/section0/page", "/api/v39/users/42", "/exact5", "/nothing/here", "/app149/section2/x"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		findLocation(srv.Root, uris[i%len(uris)])
	}
}
