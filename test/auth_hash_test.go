package test

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
)

// Hashes of "secret" in every scheme Debian 12's crypt() (libxcrypt) takes,
// made with mkpasswd (whois), htpasswd and python3's crypt module.
var libxcryptHashes = map[string]string{
	"yescrypt":     "$y$j9T$GZnhBlO8RBjw1vJORG13t1$0vNRIVMj7lJjjYdPw/KjYizP1Q4U2.rX1cNgwJ/lyT3",
	"scrypt":       "$7$CU..../.....KHbrxODcE2SKWOtHr3tJ/$K6WeKObbkfH0cHn/RToP.hY9fK5/Y5.mMMKAYgFS/DD",
	"sunmd5":       "$md5,rounds=58090$RV2xTDgS$$I9tVEH99EtjN9BjInJjhB.",
	"bsdi":         "_J9..ZpYQwYBfO5TTQQQ",
	"nt":           "$3$$878d8014606cda29677a44efa1353fc7",
	"sha1crypt":    "$sha1$24680$Qh3dwGk1$zFsOMCXnKbHvIkw4kpe3GgGKfh4X",
	"bcrypt":       "$2b$05$P.vLseZcZgLC/B9TKovasuLi6XdRVAvztptZd3L4kALIG6P41mkNi",
	"sha512":       "$6$vmHl3g0xyaxleuiv$6G3Frw/UUc3yLXbYJ5rM3a..gNA25DkpIFso66IoDmI8B0MGzkvXLNQyXAxALkJpmaVLcsKnPzJcLeEb8L5WG0",
	"md5":          "$1$eLEfqgwc$b0k4FXCfNi9nrgDtovVuA0",
	"apr1":         "$apr1$IbhsEgCD$OmWpPAeN1s/nYDOrlmM5S1",
	"des":          "4atYHBVvTGshw",
	"gostyescrypt": "$gy$j9T$rpt60nhyuqkhUCYS7AYP9/$4y3tFM1LaQDcTvo36n59e4LM2xm5C9uHcLkx.0VVt0A",
}

// TestAuthBasicHashFormats sends the right and a wrong password for each
// scheme to nginx and ngxsockify serving the same htpasswd file: the
// answers agree, except gost-yescrypt, which ngxsockify cannot compute (no
// Go module implements its Streebog hash): there it answers 401 to both and
// logs "unsupported hash format" instead of "password mismatch".
func TestAuthBasicHashFormats(t *testing.T) {
	var file strings.Builder
	names := make([]string, 0, len(libxcryptHashes))
	for name, h := range libxcryptHashes {
		fmt.Fprintf(&file, "%s:%s\n", name, h)
		names = append(names, name)
	}
	sort.Strings(names)
	o := ServerOptions{
		HTTP: `server { listen 127.0.0.1:{{PORT}}; root {{DIR}}/www;
			location / { auth_basic "r"; auth_basic_user_file {{DIR}}/htpasswd; } }`,
		Files: map[string]string{"htpasswd": file.String(), "www/index.html": "in\n"},
	}
	nginx := startServer(t, "nginx", o)
	ours := startServer(t, "ngxsockify", o)
	status := func(s *Server, user, pass string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", s.URL("/"), nil)
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", s.Kind, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, name := range names {
		for _, pass := range []string{"secret", "wrong"} {
			n, g := status(nginx, name, pass), status(ours, name, pass)
			switch {
			case name == "gostyescrypt":
				if g != 401 {
					t.Errorf("%s/%s: ngxsockify %d, want 401 (unsupported, fails closed)", name, pass, g)
				}
			case n != g:
				t.Errorf("%s/%s: nginx %d, ngxsockify %d", name, pass, n, g)
			case pass == "secret" && n != 200:
				t.Errorf("%s: nginx refused the right password (%d): the recorded hash is wrong", name, n)
			}
		}
	}
	log := ours.ErrorLog()
	if !strings.Contains(log, `user "gostyescrypt": unsupported hash format in "`) {
		t.Errorf("no \"unsupported hash format\" line in the error log:\n%s", tail(log, 10))
	}
	if strings.Contains(log, `user "gostyescrypt": password mismatch`) {
		t.Errorf("gost-yescrypt logged as a password mismatch:\n%s", tail(log, 10))
	}
}

// TestAuthDelay: auth_delay holds a 401 of the access phase that long
// (auth_basic's, and satisfy any's when nothing granted), not a 403 or an
// authorized request, on both servers (nginx-tests auth_delay.t).
func TestAuthDelay(t *testing.T) {
	o := ServerOptions{
		HTTP: `server { listen 127.0.0.1:{{PORT}}; root {{DIR}}/www; auth_delay 600ms;
			location / { auth_basic "r"; auth_basic_user_file {{DIR}}/htpasswd; }
			location /deny { deny all; }
			location /any { satisfy any; deny all; auth_basic "r"; auth_basic_user_file {{DIR}}/htpasswd; } }`,
		Files: map[string]string{"htpasswd": "u:" + libxcryptHashes["apr1"] + "\n",
			"www/index.html": "in\n", "www/deny": "x\n", "www/any": "x\n"},
	}
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, o)
		for _, tc := range []struct {
			path, pass string
			status     int
			delayed    bool
		}{
			{"/", "wrong", 401, true},
			{"/", "secret", 200, false},
			{"/deny", "", 403, false},
			{"/any", "wrong", 401, true},
		} {
			req, _ := http.NewRequest("GET", s.URL(tc.path), nil)
			if tc.pass != "" {
				req.SetBasicAuth("u", tc.pass)
			}
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", kind, tc.path, err)
			}
			resp.Body.Close()
			took := time.Since(start)
			if resp.StatusCode != tc.status || (took >= 600*time.Millisecond) != tc.delayed {
				t.Errorf("%s %s (%q): %d after %v, want %d delayed %v", kind, tc.path, tc.pass, resp.StatusCode, took, tc.status, tc.delayed)
			}
		}
	}
}
