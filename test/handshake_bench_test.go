package test

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// seedKey is the signing key of the seed hook in this benchmark.
const seedKey = "bench-key"

// seedLocations serves the same target with and without the seed
// deployment's signed-URL hook (the websockify module's README example).
func seedLocations(target string) string {
	return `server {
    listen 127.0.0.1:{{PORT}};
    access_log off;
    location /plain { websockify_pass ` + target + `; }
    location /signed {
        set $vnc_addr '';
        access_by_lua '
            local key = "` + seedKey + `"
            local args = ngx.req.get_uri_args()
            local ip, port, t, sign = args.ip, args.port, tonumber(args.t), args.sign
            if not t or math.abs(ngx.time() - t) > 30 then
                return ngx.exit(ngx.HTTP_FORBIDDEN)
            end
            if ngx.md5(key .. args.t .. ip .. ":" .. port .. key) ~= sign then
                return ngx.exit(ngx.HTTP_FORBIDDEN)
            end
            ngx.var.vnc_addr = ip .. ":" .. port
        ';
        websockify_pass $vnc_addr;
    }
}`
}

func seedSignedPath(target string, now time.Time) string {
	ip, port, _ := net.SplitHostPort(target)
	t := strconv.FormatInt(now.Unix(), 10)
	sum := md5.Sum([]byte(seedKey + t + ip + ":" + port + seedKey))
	return fmt.Sprintf("/signed?ip=%s&port=%s&t=%s&sign=%s", ip, port, t, hex.EncodeToString(sum[:]))
}

// BenchmarkHandshakes opens and closes tunnels through the built binary,
// one at a time, with and without the seed hook: the hook's cost per
// handshake is the difference (issue: at least 0.8x the plain rate).
//
//	go test ./test -run '^$' -bench Handshakes -benchtime 3000x
func BenchmarkHandshakes(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	target := ln.Addr().String()
	s := startNgxsockify(b, seedLocations(target))
	for _, name := range []string{"plain", "signed"} {
		b.Run(name, func(b *testing.B) {
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
			path := "/plain"
			for i := 0; i < b.N; i++ {
				if name == "signed" {
					path = seedSignedPath(target, time.Now())
				}
				c, _, err := d.Dial("ws://"+s.Addr+path, nil)
				if err != nil {
					b.Fatalf("%s: %v", path, err)
				}
				c.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
		})
	}
}

// TestSeedHookGatesHandshakes checks the benchmark's configuration: a good
// signature opens a tunnel, a bad one gets 403.
func TestSeedHookGatesHandshakes(t *testing.T) {
	target := echoTarget(t)
	s := startNgxsockify(t, seedLocations(target))
	c, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr+seedSignedPath(target, time.Now()), nil)
	if err != nil {
		t.Fatal(err)
	}
	wsEcho(t, c, "signed")
	c.Close()
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+s.Addr+seedSignedPath(target, time.Now().Add(-time.Minute)), nil)
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("stale signature: %v %v", resp, err)
	}
}
