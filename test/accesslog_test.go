package test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestAccessLogLikeNginx sends the same requests to nginx and ngxsockify
// and compares their access-log lines (combined and a custom format): "-"
// for empty values, \xXX escapes, status and body sizes.
func TestAccessLogLikeNginx(t *testing.T) {
	body := `log_format custom '$request_method|$uri|$args|$status|$body_bytes_sent|$http_x_test|$remote_user|$host';
server {
    listen 127.0.0.1:{{PORT}};
    access_log {{DIR}}/combined.log combined;
    access_log {{DIR}}/custom.log custom;
    location / { return 200 "hello"; }
    location /missing { return 404; }
}`
	a := startServer(t, "nginx", ServerOptions{HTTP: body})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: body})
	reqs := []string{
		"GET /?a=1 HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n",
		"GET /missing HTTP/1.1\r\nHost: x.test\r\nUser-Agent: agent \"q\" \\ \xe2\x82\xac\r\nReferer: http://r/\r\nConnection: close\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: x.test\r\nX-Test: a\tb\r\nAuthorization: Basic dTpwdw==\r\nConnection: close\r\n\r\n",
	}
	for _, raw := range reqs {
		for _, s := range []*Server{a, b} {
			if _, err := rawRequest(s.Addr, raw, routingTimeout); err != nil {
				t.Fatalf("%s: %v", s.Kind, err)
			}
		}
	}
	stamp := regexp.MustCompile(`\[\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]`)
	read := func(s *Server, name string) []string {
		var lines []string
		waitFor(t, func() bool {
			data, _ := os.ReadFile(filepath.Join(s.Dir, name))
			lines = strings.Split(strings.TrimSpace(string(data)), "\n")
			return len(lines) == len(reqs)
		}, s.Kind+" "+name)
		for i, l := range lines {
			lines[i] = stamp.ReplaceAllString(l, "[TIME]")
		}
		return lines
	}
	for _, name := range []string{"combined.log", "custom.log"} {
		want, got := read(a, name), read(b, name)
		for i := range want {
			if want[i] != got[i] {
				t.Errorf("%s line %d:\n got %s\nwant %s (nginx)", name, i+1, got[i], want[i])
			}
		}
	}
}

// TestAccessLogParamsLikeNginx compares with nginx, file by file, what the
// access_log parameters and log_format escapes write: if= (off for "" and
// "0"), escape=default|json|none (a variable that is not found is "-" only
// under default; an empty one that is found, such as $uri of a bad request
// or $is_args, is written as nothing), gzip, and paths with variables:
// opened for every line without open_log_file_cache (a renamed directory
// loses the line), kept open with it, and nothing logged when the
// location's root does not exist.
func TestAccessLogParamsLikeNginx(t *testing.T) {
	body := `log_format test '$uri:$status';
log_format def  escape=default '$uri$arg_b$arg_c|$is_args|$http_x_e|$sent_http_x_none';
log_format json escape=json    '$uri$arg_b$arg_c|$is_args|$http_x_e|$sent_http_x_none';
log_format none escape=none    '$uri$arg_b$arg_c|$is_args|$http_x_e|$sent_http_x_none';
server {
    listen 127.0.0.1:{{PORT}};
    root {{DIR}};
    access_log {{DIR}}/server.log def;
    location /filtered {
        access_log {{DIR}}/filtered.log test if=$arg_logme$arg_too;
        access_log {{DIR}}/filtered.log test if=$arg_b;
        return 200 OK;
    }
    location /escape {
        access_log {{DIR}}/def.log def;
        access_log {{DIR}}/json.log json;
        access_log {{DIR}}/none.log none;
        return 200 OK;
    }
    location /gz {
        access_log {{DIR}}/gz.log test gzip=5 flush=1s;
        return 200 OK;
    }
    location /var {
        access_log {{DIR}}/d/var_$arg_n.log test;
        return 200 OK;
    }
    location /cached {
        open_log_file_cache max=4 min_uses=1 valid=1m;
        access_log {{DIR}}/d/cached_$arg_n.log test;
        return 200 OK;
    }
    location /noroot {
        root {{DIR}}/missing;
        access_log {{DIR}}/noroot_$arg_n.log test;
        return 200 OK;
    }
}`
	a := startServer(t, "nginx", ServerOptions{HTTP: body})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: body})
	get := func(target string, headers ...string) func(*Server) {
		raw := "GET " + target + " HTTP/1.1\r\nHost: x.test\r\n" + strings.Join(headers, "") + "Connection: close\r\n\r\n"
		return func(s *Server) {
			if _, err := rawRequest(s.Addr, raw, routingTimeout); err != nil {
				t.Fatalf("%s: %v", s.Kind, err)
			}
		}
	}
	rename := func(from, to string) func(*Server) {
		return func(s *Server) {
			if err := os.Rename(filepath.Join(s.Dir, from), filepath.Join(s.Dir, to)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// the servers log after the reply: wait for a line before moving its directory
	waitLog := func(name, substr string, n int) func(*Server) {
		return func(s *Server) {
			waitFor(t, func() bool {
				data, _ := os.ReadFile(filepath.Join(s.Dir, name))
				return strings.Count(string(data), substr) >= n
			}, s.Kind+" "+name)
		}
	}
	steps := []func(*Server){
		func(s *Server) { os.Mkdir(filepath.Join(s.Dir, "d"), 0o755) },
		get("/filtered/none"), get("/filtered/empty?logme="), get("/filtered/zero?logme=0"),
		get("/filtered/one?logme=1"), get("/filtered/zeros?logme=0&too=0"), get("/filtered/b?b=x"),
		get("/escape/%221%20%1B%1C%0A%09%20%22%5C%C3%A9?c=2", "X-E: \r\n"),
		get("/escape/args?b=%22&c=\\", "X-E: a\"b\r\n"),
		get("/../bad"),
		get("/gz"), get("/gz?x"),
		get("/var?n=a"), get("/cached?n=a"),
		waitLog("d/var_a.log", "/var:200", 1), waitLog("d/cached_a.log", "/cached:200", 1),
		rename("d", "moved"),
		get("/var?n=a"), get("/cached?n=a"), get("/cached?n=b"),
		waitLog("error.log", `var_a.log" failed`, 1), waitLog("error.log", `cached_b.log" failed`, 1),
		waitLog("moved/cached_a.log", "/cached:200", 2),
		rename("moved", "d"),
		get("/noroot?n=a"),
		waitLog("error.log", `testing "`, 1),
	}
	for _, step := range steps {
		step(a)
		step(b)
	}
	a.Stop()
	b.Stop()
	read := func(s *Server, name string) string {
		data, err := os.ReadFile(filepath.Join(s.Dir, name))
		if err != nil {
			return err.Error()[strings.LastIndex(err.Error(), ":")+1:]
		}
		if strings.HasSuffix(name, "gz.log") {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				return "gzip: " + err.Error()
			}
			plain, err := io.ReadAll(zr)
			if err != nil {
				return "gzip: " + err.Error()
			}
			return string(plain)
		}
		return string(data)
	}
	for _, name := range []string{"server.log", "filtered.log", "def.log", "json.log", "none.log", "gz.log",
		"d/var_a.log", "d/cached_a.log", "d/cached_b.log", "noroot_a.log"} {
		if want, got := read(a, name), read(b, name); got != want {
			t.Errorf("%s:\n got %q\nwant %q (nginx)", name, got, want)
		}
	}
}

// TestAccessLogPipeLikeNginx: $pipe is "p" for a request that was
// already buffered when the one before it on the connection ended, "."
// otherwise (nginx-tests access_log_variables.t).
func TestAccessLogPipeLikeNginx(t *testing.T) {
	body := `log_format pipe '$uri $pipe';
server {
    listen 127.0.0.1:{{PORT}};
    root {{DIR}};
    access_log {{DIR}}/pipe.log pipe;
    location / { return 200 "x"; }
}`
	var logs [2]string
	for i, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: body})
		c, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		read := func() {
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			io.ReadAll(res.Body)
		}
		io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
		read()
		read()
		io.WriteString(c, "GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		read()
		c.Close()
		// nginx logs the last request once its lingering close ends
		path := filepath.Join(s.Dir, "pipe.log")
		waitFor(t, func() bool {
			data, _ := os.ReadFile(path)
			logs[i] = string(data)
			return strings.Count(logs[i], "\n") >= 3
		}, kind+"'s log line of the third request")
		s.Stop()
	}
	if logs[0] != logs[1] || logs[0] != "/1 .\n/2 p\n/3 .\n" {
		t.Errorf("pipe.log: nginx %q, ngxsockify %q", logs[0], logs[1])
	}
}
