package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestProxyWholeChunkedBody: with proxy_request_buffering off, nginx
// reads what has come of a chunked body before it makes the backend's
// request: a body that came whole with the head (an empty one too) goes
// with a Content-Length, one still coming is streamed chunked; one
// already bad is refused (400, nginx's one error line) before a backend
// is contacted, buffered or not. What the backend gets, the statuses and
// the error log's lines about the body are compared with nginx's.
func TestProxyWholeChunkedBody(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	var mu sync.Mutex
	var got []string
	backend := serveConns(t, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		var head []string
		chunked := false
		length := -1
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			l = strings.TrimRight(l, "\r\n")
			if l == "" {
				break
			}
			lower := strings.ToLower(l)
			switch {
			case strings.HasPrefix(lower, "transfer-encoding:"):
				chunked = true
				head = append(head, l)
			case strings.HasPrefix(lower, "content-length:"):
				fmt.Sscan(strings.TrimSpace(l[len("content-length:"):]), &length)
				head = append(head, l)
			}
		}
		var body []byte
		switch {
		case chunked:
			// the raw chunks, up to the last one
			for !strings.HasSuffix(string(body), "0\r\n\r\n") {
				b, err := br.ReadByte()
				if err != nil {
					break
				}
				body = append(body, b)
			}
		case length > 0:
			body = make([]byte, length)
			io.ReadFull(br, body)
		}
		mu.Lock()
		got = append(got, fmt.Sprintf("%q %q", head, body))
		mu.Unlock()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	})
	conf := fmt.Sprintf(`server {
    listen 127.0.0.1:{{PORT}};
    proxy_request_buffering off;
    proxy_http_version 1.1;
    location / { proxy_pass http://%[1]s; }
    location /buf { proxy_pass http://%[1]s; proxy_request_buffering on; }
}`, backend)
	head := "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
	sends := [][]string{
		{head + "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"},
		{head + "0\r\n\r\n"},
		{head, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"},
		{head + "5\r\nhello\r\n", "6\r\n world\r\n0\r\n\r\n"},
		{head + "5\r\nhello\r\n;x\r\n"},
		{strings.Replace(head, "/x", "/buf", 1) + "5\r\nhello\r\n;x\r\n"},
	}
	results := map[string]string{}
	for _, kind := range []string{"nginx", "ngxsockify"} {
		mu.Lock()
		got = nil
		mu.Unlock()
		s := startServer(t, kind, ServerOptions{HTTP: conf})
		for _, parts := range sends {
			c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range parts {
				if i > 0 {
					time.Sleep(200 * time.Millisecond)
				}
				io.WriteString(c, p)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			answer, _ := io.ReadAll(c)
			c.Close()
			status, _, _ := strings.Cut(string(answer), "\r\n")
			mu.Lock()
			got = append(got, status)
			mu.Unlock()
		}
		s.Stop()
		mu.Lock()
		results[kind] = strings.Join(got, "\n")
		mu.Unlock()
		for _, l := range strings.Split(s.ErrorLog(), "\n") {
			if strings.Contains(l, "chunked body") || strings.Contains(l, "prematurely") {
				_, msg, _ := strings.Cut(l, "] ")
				_, msg, _ = strings.Cut(msg, ": ") // the pid
				_, msg, _ = strings.Cut(msg, " ")  // the connection's number
				results[kind] += "\n" + msg
			}
		}
	}
	if results["nginx"] != results["ngxsockify"] {
		t.Errorf("the backend got, from nginx:\n%s\nfrom ngxsockify:\n%s", results["nginx"], results["ngxsockify"])
	}
}
