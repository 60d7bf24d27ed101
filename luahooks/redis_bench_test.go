package luahooks

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// BenchmarkRedisPipeline runs Debian's resty.redis (nginx/redis.lua,
// unchanged) pipelining 1,000 GETs per run against a redis-server started
// here: the cost per GET of the library on gopher-lua and our cosockets.
// Profile with -cpuprofile; compare with redis-benchmark -P 1000 -t get.
func BenchmarkRedisPipeline(b *testing.B) {
	if _, err := os.Stat("/usr/share/lua/5.1/nginx/redis.lua"); err != nil {
		b.Skip("lua-nginx-redis is not installed")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		b.Skip("redis-server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", b.TempDir())
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("redis-server did not start")
		}
	}
	rt, _ := newTestRuntime(b, Options{Timeout: time.Minute})
	src := `
local red = require("nginx.redis"):new()
red:set_timeout(5000)
assert(red:connect("127.0.0.1", ` + strconv.Itoa(port) + `))
if ngx.var.arg_seed then assert(red:set("k", "0123456789abcdef")) end
red:init_pipeline(1000)
for i = 1, 1000 do red:get("k") end
local res = assert(red:commit_pipeline())
assert(#res == 1000 and res[1000] == "0123456789abcdef")
red:set_keepalive(10000, 16)
`
	c, err := rt.CompileInline(PhaseContent, src, "/etc/nginx/nginx.conf", 10)
	if err != nil {
		b.Fatal(err)
	}
	if out := rt.Run(context.Background(), c, newReq("/?seed=1")); out.Err != nil {
		b.Fatal(out.Err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out := rt.Run(context.Background(), c, newReq("/")); out.Err != nil {
			b.Fatal(out.Err)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "GETs/s")
}
