package test

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSyslogLikeNginx: error_log and access_log to syslog: targets send
// the same datagrams as nginx's (header "<PRI>Mmm dd hh:mm:ss host tag: ",
// facility=, severity= for access logs only, tag=, nohostname, the error
// line's own severity), times and pids aside (nginx-tests syslog.t).
func TestSyslogLikeNginx(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	addr := pc.LocalAddr().String()
	body := `log_format f "$uri:$status";
server {
    listen 127.0.0.1:{{PORT}};
    root {{DIR}};
    location /e { error_log syslog:server=` + addr + `; }
    location /ef { error_log syslog:server=` + addr + `,facility=user,severity=emerg,tag=T1 warn; }
    location /a { access_log syslog:server=` + addr + `,severity=alert f; }
    location /an { access_log syslog:server=` + addr + `,nohostname,facility=daemon f; }
}`
	stamp := regexp.MustCompile(`\b[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\b`)
	errStamp := regexp.MustCompile(`\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: \*\d+ `)
	run := func(kind string) []string {
		s := startServer(t, kind, ServerOptions{HTTP: body})
		var got []string
		for _, path := range []string{"/e", "/ef", "/a", "/an"} {
			if _, err := rawRequest(s.Addr, "GET "+path+" HTTP/1.0\r\n\r\n", routingTimeout); err != nil {
				t.Fatalf("%s %s: %v", kind, path, err)
			}
			buf := make([]byte, 4096)
			for {
				pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					break
				}
				m := stamp.ReplaceAllString(string(buf[:n]), "TIME")
				m = errStamp.ReplaceAllString(m, "DATE [$1] PID: ")
				got = append(got, path+" "+strings.ReplaceAll(m, s.Dir, "{{DIR}}"))
			}
		}
		return got
	}
	ng := run("nginx")
	if d := cmp.Diff(ng, run("ngxsockify")); d != "" {
		t.Errorf("datagrams (-nginx +ngxsockify):\n%s", d)
	}
	if len(ng) != 4 {
		t.Errorf("nginx sent %d datagrams, want 4: %q", len(ng), ng)
	}
}

// TestSyslogOnlyErrorLogKeepsDefaultFile: when the main level's error_log
// directives name no file (only syslog: or memory: targets), nginx also
// writes error-level lines to its default error log, -e's file here
// (lua-nginx-module's 106-timer.t TEST 32, 124-init-worker.t TEST 18).
func TestSyslogOnlyErrorLogKeepsDefaultFile(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, target := range []string{"syslog:server=" + pc.LocalAddr().String(), "memory:64k"} {
		conf := "pid {{DIR}}/nginx.pid;\nerror_log " + target + " info;\nevents {}\n" +
			"http {\n    server {\n        listen 127.0.0.1:{{PORT}};\n        root {{DIR}};\n" +
			"        location /w { return 200; error_log {{DIR}}/w.log; }\n    }\n}\n"
		errStamp := regexp.MustCompile(`\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: (\*\d+ )?`)
		run := func(kind string) []string {
			s := startServer(t, kind, ServerOptions{Main: conf, Args: []string{"-e", "e.log"}})
			for _, path := range []string{"/missing", "/w"} {
				if _, err := rawRequest(s.Addr, "GET "+path+" HTTP/1.0\r\n\r\n", routingTimeout); err != nil {
					t.Fatalf("%s %s: %v", kind, path, err)
				}
			}
			var got []string
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				b, _ := os.ReadFile(filepath.Join(s.Dir, "e.log"))
				got = got[:0]
				for _, l := range strings.Split(string(b), "\n") {
					if strings.Contains(l, "[error]") || strings.Contains(l, "[info]") {
						got = append(got, errStamp.ReplaceAllString(strings.ReplaceAll(l, s.Dir, "{{DIR}}"), "DATE [$1] PID: "))
					}
				}
				if len(got) > 0 {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			return got
		}
		ng := run("nginx")
		if d := cmp.Diff(ng, run("ngxsockify")); d != "" {
			t.Errorf("%s: -e file's lines (-nginx +ngxsockify):\n%s", target, d)
		}
		if len(ng) != 1 {
			t.Errorf("%s: nginx wrote %d lines to the -e file, want 1: %q", target, len(ng), ng)
		}
	}
}
