package luahooks

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// seedHook extracts the access_by_lua '...' code of a corpus file.
func seedHook(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, "access_by_lua '")
	j := strings.Index(s[i+15:], "';")
	return s[i+15 : i+15+j]
}

func signedURL(key, ip, port string, ts int64) string {
	sum := md5.Sum([]byte(fmt.Sprintf("%s%d%s:%s%s", key, ts, ip, port, key)))
	return fmt.Sprintf("/websockify?ip=%s&port=%s&t=%d&sign=%s", ip, port, ts, hex.EncodeToString(sum[:]))
}

func BenchmarkSeedHook(b *testing.B) {
	rt, _ := newTestRuntime(b, Options{})
	c, err := rt.CompileInline(PhaseAccess, seedHook(b, "../../shared/corpus/a/tg123-readme-dynamic-upstream-md5.conf"), "/etc/nginx/nginx.conf", 25)
	if err != nil {
		b.Fatal(err)
	}
	target := signedURL("CHANGE_ME_!!!!", "127.0.0.1", "5901", time.Now().Unix())
	hr := httptest.NewRequest("GET", target, nil)
	vars := newFakeVars(hr, "vnc_addr")
	ctx := context.Background()
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ResetTimer()
	cpu0, th0 := cpuTime(), threadCPUTime()
	for i := 0; i < b.N; i++ {
		req := &Request{HTTP: hr, Vars: vars}
		out := rt.Run(ctx, c, req)
		if out.Action != Continue {
			b.Fatalf("outcome %+v", out)
		}
	}
	// The machine is shared: process CPU time per run (GC included) is a
	// steadier number than wall time.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	// CPU of this goroutine's thread only (GC assists included, background
	// GC workers excluded).
	b.ReportMetric(float64(threadCPUTime()-th0)/float64(b.N), "thread-cpu-ns/op")
}

func threadCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSeedHookParallel runs the seed hook from GOMAXPROCS goroutines
// (pool contention).
func BenchmarkSeedHookParallel(b *testing.B) {
	rt, _ := newTestRuntime(b, Options{})
	c, err := rt.CompileInline(PhaseAccess, seedHook(b, "/work/shared/corpus/a/tg123-readme-dynamic-upstream-md5.conf"), "/etc/nginx/nginx.conf", 25)
	if err != nil {
		b.Fatal(err)
	}
	target := signedURL("CHANGE_ME_!!!!", "127.0.0.1", "5901", time.Now().Unix())
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		hr := httptest.NewRequest("GET", target, nil)
		vars := newFakeVars(hr, "vnc_addr")
		for pb.Next() {
			out := rt.Run(context.Background(), c, &Request{HTTP: hr, Vars: vars})
			if out.Action != Continue {
				b.Errorf("outcome %+v", out)
				return
			}
		}
	})
}

// BenchmarkRegexMatch is ngx.re.match with a cached PCRE-style regex.
func BenchmarkRegexMatch(b *testing.B) {
	rt, _ := newTestRuntime(b, Options{})
	c, err := rt.CompileInline(PhaseAccess, `local m = ngx.re.match(ngx.var.arg_t, [[^(\d+)-(?<name>\w+)$]], "jo") if not m then ngx.exit(403) end`, "nginx.conf", 1)
	if err != nil {
		b.Fatal(err)
	}
	hr := httptest.NewRequest("GET", "/?t=12345-abc", nil)
	vars := newFakeVars(hr)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out := rt.Run(context.Background(), c, &Request{HTTP: hr, Vars: vars}); out.Action != Continue {
			b.Fatalf("outcome %+v", out)
		}
	}
}

// BenchmarkNewState is the cost of one sandboxed state (paid when the pool
// is empty).
func BenchmarkNewState(b *testing.B) {
	rt, _ := newTestRuntime(b, Options{})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		st, err := rt.newState()
		if err != nil {
			b.Fatal(err)
		}
		st.L.Close()
	}
}

// BenchmarkCosocketPooled is one run doing what a hook with one pooled
// resty.redis GET does on the wire: connect (from the pool), send,
// receive a line, setkeepalive.
func BenchmarkCosocketPooled(b *testing.B) {
	addr := serveLines(b, func(c net.Conn, line string) { c.Write([]byte(line)) })
	host, port, _ := net.SplitHostPort(addr)
	rt, _ := newTestRuntime(b, Options{})
	c, err := rt.CompileInline(PhaseAccess, fmt.Sprintf(`
		local s = ngx.socket.tcp()
		assert(s:connect(%q, %s))
		s:send("GET k\r\n")
		assert(s:receive())
		s:setkeepalive()`, host, port), "/etc/nginx/nginx.conf", 1)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if out := rt.Run(context.Background(), c, newReq("/")); out.Err != nil {
			b.Fatal(out.Err)
		}
	}
}
