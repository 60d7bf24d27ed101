package test

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestProxyHTTP2HeaderOrderLikeNginx: an HTTP/2 request's headers reach a
// proxy_pass backend in the order the client sent them, under their
// lower-case names, its cookie fields joined at the end; Lua's come
// after (nginx's header list).
func TestProxyHTTP2HeaderOrderLikeNginx(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	be := startProxyBackend(t)
	conf := strings.ReplaceAll(`server {
    listen 127.0.0.1:{{PORT}} http2;
    location / { proxy_pass http://BACKEND; }
    location /lua/ {
        rewrite_by_lua_block {
            ngx.req.set_header("Zz", "1")
            ngx.req.set_header("x-a", "A")
        }
        proxy_pass http://BACKEND;
    }
}`, "BACKEND", be.addr())
	servers := []*Server{startServer(t, "nginx", ServerOptions{HTTP: conf}), startServer(t, "ngxsockify", ServerOptions{HTTP: conf})}
	fields := [][2]string{{"x-b", "1"}, {"cookie", "a=1"}, {"x-a", "2"}, {"accept", "*/*"}, {"cookie", "b=2"}, {"x-b", "3"}, {"m", "1"}}
	for _, path := range []string{"/rawecho", "/lua/rawecho"} {
		var got [2]string
		for i, s := range servers {
			// two streams on one connection: the second's fields come
			// partly from the first's dynamic table
			got[i] = h2Get(t, s.Addr, path, fields, 2)
		}
		if d := cmp.Diff(got[0], got[1]); d != "" {
			t.Errorf("%s: the backend's head (-nginx +ngxsockify):\n%s", path, d)
		}
	}
}

// h2Get sends n GETs for path with fields over one raw HTTP/2 connection
// (prior knowledge), one after the other, and returns the bodies of the
// answers.
func h2Get(t *testing.T, addr, path string, fields [][2]string, n int) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, routingTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(routingTimeout))
	fr := http2.NewFramer(c, c)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil || fr.WriteSettings() != nil {
		t.Fatalf("%s: the preface: %v", addr, err)
	}
	head := append([][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", path}, {":authority", "h2.test"}}, fields...)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	var out strings.Builder
	for i := range n {
		hb.Reset()
		for _, f := range head {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
		for ended := false; !ended; {
			switch f, err := fr.ReadFrame(); f := f.(type) {
			case nil:
				t.Fatalf("%s: %v", addr, err)
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.DataFrame:
				out.Write(f.Data())
				ended = f.StreamEnded()
			case *http2.HeadersFrame:
				ended = f.StreamEnded()
			case *http2.RSTStreamFrame, *http2.GoAwayFrame:
				t.Fatalf("%s: %T", addr, f)
			}
		}
		out.WriteString("\n--\n")
	}
	return out.String()
}
