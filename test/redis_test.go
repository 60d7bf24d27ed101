package test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// requireLuaNginxRedis skips the test without Debian's lua-nginx-redis
// (fails it under CI=true).
func requireLuaNginxRedis(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/share/lua/5.1/nginx/redis.lua"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("lua-nginx-redis is not installed and CI=true")
		}
		t.Skip("lua-nginx-redis is not installed")
	}
}

// startRedis runs Debian's redis-server on a free loopback port, without
// persistence, for the test's lifetime, and returns the port.
func startRedis(t *testing.T) int {
	t.Helper()
	bin := requireTool(t, "redis-server")
	port := freePort(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			continue
		}
		fmt.Fprint(c, "PING\r\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.HasPrefix(line, "+PONG") {
			return port
		}
	}
	t.Fatalf("redis-server did not answer on %s", addr)
	return 0
}

// TestRedisCosockets runs the cases in testdata/redis on nginx + lua and on
// ngxsockify, both talking to one real redis-server through Debian's
// lua-nginx-redis: cosockets, pipelining, the connection pool, errors.
func TestRedisCosockets(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	requireLuaNginxRedis(t)
	redisPort := startRedis(t)
	closed := freePort(t)
	paths, _ := filepath.Glob("testdata/redis/*.case")
	if len(paths) == 0 {
		t.Fatal("no cases in testdata/redis")
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.NewReplacer("{{REDIS}}", strconv.Itoa(redisPort), "{{CLOSED}}", strconv.Itoa(closed)).Replace(string(data))
		tmp := filepath.Join(t.TempDir(), filepath.Base(p))
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		rc, err := parseRoutingCase(tmp)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		c := luaCase{routingCase: rc}
		t.Run(c.name, func(t *testing.T) {
			a := startLua(t, "nginx", c)
			b := startLua(t, "ngxsockify", c)
			compareLua(t, c, a, b, true)
		})
	}
}
