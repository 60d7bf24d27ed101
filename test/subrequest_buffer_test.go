package test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSubrequestOutputBufferSize: SSI's include set= keeps the subrequest's
// body in memory, within subrequest_output_buffer_size of the location
// that served it; a longer body ends the main request (nginx closes the
// connection and logs "too big subrequest response") without a reply: the
// header waits for the body while the include runs (nginx-tests
// subrequest_output_buffer_size.t).
func TestSubrequestOutputBufferSize(t *testing.T) {
	conf := `
    server {
        listen 127.0.0.1:{{PORT}};
        root {{DIR}}/www;
        location /p/ { proxy_pass http://127.0.0.1:{{PORT}}/raw/; subrequest_output_buffer_size 42; }
        location /s/ { alias {{DIR}}/www/; subrequest_output_buffer_size 42; }
        location /raw/ { alias {{DIR}}/www/; }
        location /ssi { ssi on; }
    }
`
	files := map[string]string{
		"www/ssi.html": `<!--#include virtual="$arg_c" set="x" -->set: <!--#echo var="x" -->`,
		"www/long":     strings.Repeat("x", 400),
		"www/short":    "short",
		"www/exact":    strings.Repeat("y", 42),
	}
	for _, kind := range []string{"nginx", "ngxsockify"} {
		t.Run(kind, func(t *testing.T) {
			s := startServer(t, kind, ServerOptions{HTTP: conf, Files: files})
			get := func(arg string) string {
				c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.Ports[0]))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				fmt.Fprintf(c, "GET /ssi.html?c=%s HTTP/1.0\r\n\r\n", arg)
				b, _ := io.ReadAll(c)
				return string(b)
			}
			for _, arg := range []string{"/p/short", "/s/short", "/p/exact", "/s/exact", "/raw/long"} {
				if r := get(arg); !strings.Contains(r, "\r\n\r\nset: ") {
					t.Errorf("%s: got %q, want the page", arg, r)
				}
			}
			for _, arg := range []string{"/p/long", "/s/long"} {
				if r := get(arg); r != "" {
					t.Errorf("%s: got %q, want the connection closed without a reply", arg, r)
				}
			}
			s.Stop()
			if el := s.ErrorLog(); !strings.Contains(el, "too big subrequest response: 400") {
				t.Errorf("error log lacks the too big subrequest response:\n%s", el)
			}
		})
	}
}
