package test

import (
	"regexp"
	"strings"
	"testing"
)

// TestRefererCheckStops: valid_referers that allow only "none" or
// "blocked" are refused when nginx merges the levels, and nginx stops at
// the first level that fails: -t prints one error, whatever the levels
// after it hold (ngxsockify's -t lists every error it finds elsewhere,
// but these come from a merge nginx does not finish).
func TestRefererCheckStops(t *testing.T) {
	nginx := requireNginx(t)
	bin := requireNgxsockify(t)
	conf := `pid {{DIR}}/nginx.pid;
error_log {{DIR}}/error.log;
events {}
http {
    server { listen 127.0.0.1:{{PORT}}; valid_referers none;
        location / { valid_referers blocked;
            location /in { valid_referers none; }
        }
    }
    server { listen 127.0.0.1:{{PORT2}}; server_name q.com; valid_referers q.com server_names; }
}
`
	emerg := regexp.MustCompile(`\[emerg\] (?:\d+#\d+: )?(.*)`)
	errs := func(out string) string {
		var msgs []string
		for _, m := range emerg.FindAllStringSubmatch(out, -1) {
			msgs = append(msgs, m[1])
		}
		return strings.Join(msgs, "\n")
	}
	wantOut, wantExit := checkConf(t, nginx, conf)
	gotOut, gotExit := checkConf(t, bin, conf)
	if want, got := errs(wantOut), errs(gotOut); want != got || wantExit != gotExit {
		t.Errorf("-t: exit %d, errors:\n%s\nnginx: exit %d, errors:\n%s", gotExit, got, wantExit, want)
	}
}
