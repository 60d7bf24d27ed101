package test

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestErrorLogLevelsLikeNginx compares with nginx the error_log directives
// of the http, server and location levels: which file receives a
// request's error lines (a level's own error_log replaces the inherited
// ones, nested locations inherit), the level filter of each target, and
// one line per target when two targets name the same file; log_not_found
// off keeps the lines of missing files and index directories out.
func TestErrorLogLevelsLikeNginx(t *testing.T) {
	body := `error_log {{DIR}}/http.log;
server {
    listen 127.0.0.1:{{PORT}};
    root {{DIR}};
    error_log {{DIR}}/server.log info;
    location /low {
        error_log {{DIR}}/low.log warn;
        error_log {{DIR}}/low.log;
    }
    location /high {
        error_log {{DIR}}/high.log emerg;
        error_log {{DIR}}/high.log;
    }
    location /alert {
        error_log {{DIR}}/alert.log alert;
        error_log {{DIR}}/crit.log crit;
        error_log {{DIR}}/error.log error;
    }
    location /outer {
        error_log {{DIR}}/outer.log;
        location /outer/inner { }
        location /outer/own {
            error_log {{DIR}}/own.log notice;
        }
    }
    location /deny {
        deny all;
    }
    location /inherit { }
    location /nf/ {
        error_log {{DIR}}/nf.log;
        location /nf/off/ {
            error_log {{DIR}}/nfoff.log;
            log_not_found off;
        }
    }
}
server {
    listen 127.0.0.1:{{PORT2}};
    root {{DIR}};
    location / { }
}`
	a := startServer(t, "nginx", ServerOptions{HTTP: body})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: body})
	targets := []string{"/low", "/high", "/alert", "/outer/x", "/outer/inner/x", "/outer/own/x", "/deny", "/inherit", "@2/other",
		"/nf/x.html", "/nf/dir/", "/nf/off/x.html", "/nf/off/dir/"}
	for _, s := range []*Server{a, b} {
		for _, target := range targets {
			addr := s.Addr
			if rest, ok := strings.CutPrefix(target, "@2"); ok {
				addr, target = "127.0.0.1:"+strconv.Itoa(s.Ports[1]), rest
			}
			raw := "GET " + target + " HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n"
			if _, err := rawRequest(addr, raw, routingTimeout); err != nil {
				t.Fatalf("%s: %v", s.Kind, err)
			}
		}
		s.Stop()
	}
	// "2026/12/04 19:54:24 [error] 123#123: *5 msg" -> "[error] msg"
	stamp := regexp.MustCompile(`(?m)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (\[\w+\]) \d+#\d+: (\*\d+ )?`)
	read := func(s *Server, name string) []string {
		data, err := os.ReadFile(filepath.Join(s.Dir, name))
		if err != nil {
			return []string{"(" + strings.TrimPrefix(err.Error(), "open "+filepath.Join(s.Dir, name)+": ") + ")"}
		}
		var lines []string
		for _, l := range strings.Split(string(data), "\n") {
			// only request lines: the servers' start and stop notes differ
			if strings.Contains(l, "request: ") {
				l = stamp.ReplaceAllString(l, "$1 ")
				lines = append(lines, strings.ReplaceAll(l, s.Dir, "{{DIR}}"))
			}
		}
		return lines
	}
	for _, name := range []string{"http.log", "server.log", "low.log", "high.log", "alert.log", "crit.log",
		"error.log", "outer.log", "own.log", "nf.log", "nfoff.log"} {
		want, got := read(a, name), read(b, name)
		if strings.Join(want, "\n") != strings.Join(got, "\n") {
			t.Errorf("%s:\n got %q\nwant %q (nginx)", name, got, want)
		}
	}
}

// TestErrorLogDebugLikeNginx: ngxsockify is built --with-debug, as
// Debian's nginx: an error_log at level debug receives debug lines of a
// request (nginx's many, ngxsockify's log handler line, which nginx writes
// too), one at level info none (nginx-tests error_log.t 1-3).
func TestErrorLogDebugLikeNginx(t *testing.T) {
	body := `server {
    listen 127.0.0.1:{{PORT}};
    root {{DIR}};
    location / {
        error_log {{DIR}}/debug.log debug;
        error_log {{DIR}}/info.log info;
    }
}`
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: body})
		if _, err := rawRequest(s.Addr, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", routingTimeout); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		s.Stop()
		debug, _ := os.ReadFile(filepath.Join(s.Dir, "debug.log"))
		info, _ := os.ReadFile(filepath.Join(s.Dir, "info.log"))
		if !regexp.MustCompile(`(?m)\[debug\] \d+#\d+: \*\d+ http log handler$`).Match(debug) {
			t.Errorf("%s: debug.log lacks the log handler's debug line:\n%s", kind, debug)
		}
		if strings.Contains(string(info), "[debug]") {
			t.Errorf("%s: info.log has debug lines:\n%s", kind, info)
		}
	}
}

// TestDebugConnectionLikeNginx: the requests of a client debug_connection
// names write every line, debug ones too, to error logs of any level;
// other clients' lines keep the levels (nginx-tests debug_connection.t).
func TestDebugConnectionLikeNginx(t *testing.T) {
	body := `server {
    listen 127.0.0.1:{{PORT}};
    root {{DIR}};
    error_log {{DIR}}/alert.log alert;
}`
	main := strings.Replace(wrapHTTP(body), "events {}", "events { debug_connection 127.0.0.2; }", 1)
	stamp := regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (\[\w+\]) \d+#\d+: (\*\d+ )?`)
	var logs [2][]string
	for i, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{Main: main})
		for _, from := range []string{"127.0.0.1", "127.0.0.2"} {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
			c, err := d.Dial("tcp", s.Addr)
			if err != nil {
				t.Fatalf("%s from %s: %v", kind, from, err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "GET /from-"+from+" HTTP/1.0\r\n\r\n")
			io.ReadAll(c)
			c.Close()
		}
		s.Stop()
		data, _ := os.ReadFile(filepath.Join(s.Dir, "alert.log"))
		debug := 0
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if !stamp.MatchString(l) {
				continue // the rest of a debug line of many (nginx's headers)
			}
			l = stamp.ReplaceAllString(l, "$1 ")
			if strings.HasPrefix(l, "[debug] ") {
				debug++
			} else if l != "" {
				logs[i] = append(logs[i], strings.ReplaceAll(l, s.Dir, "{{DIR}}"))
			}
		}
		if debug == 0 {
			t.Errorf("%s: alert.log has no debug line:\n%s", kind, data)
		}
	}
	if d := cmp.Diff(logs[0], logs[1]); d != "" {
		t.Errorf("alert.log's lines but debug ones (-nginx +ngxsockify):\n%s", d)
	}
}

// TestErrorLogRequestPartLikeNginx: the request part of an error-log line
// names the Host header as sent (none without one, not the request line's
// host) and the Referer header (ngx_http_log_error_handler).
func TestErrorLogRequestPartLikeNginx(t *testing.T) {
	body := `server {
    listen 127.0.0.1:{{PORT}};
    root {{DIR}};
    error_log {{DIR}}/e.log;
}`
	logs := errorLogsLikeNginx(t, ServerOptions{HTTP: body},
		"GET /no-host HTTP/1.0\r\n\r\n",
		"GET /empty-host HTTP/1.0\r\nHost:\r\n\r\n",
		"GET /host HTTP/1.1\r\nHost: a.test\r\nReferer: http://r.test/x\r\nConnection: close\r\n\r\n",
		"GET http://b.test/absolute HTTP/1.1\r\nHost: c.test\r\nConnection: close\r\n\r\n",
		"GET http://b.test/absolute-no-host HTTP/1.0\r\n\r\n",
	)
	if d := cmp.Diff(logs[0], logs[1]); d != "" {
		t.Errorf("e.log (-nginx +ngxsockify):\n%s", d)
	}
}
