package nginxconf

import (
	"strings"
	"testing"
)

// slString describes merged secure_link settings: "hash|md5|secret" with
// "-" for what is unset.
func slString(lc *LocConf) string {
	s := lc.SecureLink
	if s == nil {
		return "-|-|-"
	}
	out := []string{"-", "-", "-"}
	if s.Hash != nil {
		out[0] = s.Hash.String()
	}
	if s.MD5 != nil {
		out[1] = s.MD5.String()
	}
	if s.HasSecret {
		out[2] = s.Secret
	}
	return strings.Join(out, "|")
}

func TestSecureLinkMerge(t *testing.T) {
	cfg, err := loadHTTP(t, `
		secure_link_secret top;
		secure_link $arg_h;
		server {
			listen 127.0.0.1:81;
			location /a { }
			location /b { secure_link_md5 m; }
			location /c { secure_link_secret c;
				location /c/in { }
				location /c/h { secure_link $arg_x; }
			}
		}
		server {
			listen 127.0.0.1:82;
			secure_link_secret srv;
			location /d { if ($arg_a) { return 403; } }
			location /e { secure_link_md5 e; }
		}
		server {
			listen 127.0.0.1:83;
			secure_link_md5 f;
			location /g { secure_link_secret g; }
		}`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers
	loc := func(s int, path string) *Location {
		for _, l := range srv[s].Root.Prefix {
			if l.Path == path {
				return l
			}
			if l.Nested != nil {
				for _, n := range l.Nested.Prefix {
					if n.Path == path {
						return n
					}
				}
			}
		}
		t.Fatalf("no location %s", path)
		return nil
	}
	cases := []struct {
		name string
		lc   *LocConf
		want string
	}{
		// a server that sets nothing: the http level's hash, no secret
		{"server 1", srv[0].Conf, "$arg_h|-|-"},
		{"/a", loc(0, "/a").Conf, "$arg_h|-|-"},
		{"/b", loc(0, "/b").Conf, "$arg_h|m|-"},
		{"/c", loc(0, "/c").Conf, "-|-|c"},
		{"/c/in", loc(0, "/c/in").Conf, "-|-|c"},
		{"/c/h", loc(0, "/c/h").Conf, "$arg_x|-|-"},
		{"server 2", srv[1].Conf, "-|-|srv"},
		{"/d", loc(1, "/d").Conf, "-|-|srv"},
		{"/e", loc(1, "/e").Conf, "-|e|-"},
		{"server 3", srv[2].Conf, "$arg_h|f|-"},
		{"/g", loc(2, "/g").Conf, "-|-|g"},
	}
	for _, c := range cases {
		if got := slString(c.lc); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestSecureLinkMixed(t *testing.T) {
	body := "server {\nlocation / {\nsecure_link_secret s;\nsecure_link_md5 m;\n}\n}"
	_, err := loadHTTP(t, body)
	// the line that closes the http block, as nginx names it
	want := `"secure_link_secret" cannot be mixed with "secure_link" and "secure_link_md5" in /etc/ngx/nginx.conf:9`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}
