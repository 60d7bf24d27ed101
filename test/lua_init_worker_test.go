package test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLuaInitWorkerInWorker: nginx runs init_worker_by_lua in its worker,
// as the user directive's user (nobody for root), after the daemon's
// foreground command has returned: a syslog listener started once the
// command returns still gets the line init_worker_by_lua logs 0.3 s later
// (lua-nginx-module's 124-init-worker.t TEST 18 starts its listener so).
func TestLuaInitWorkerInWorker(t *testing.T) {
	nginx := requireNginx(t)
	ngx := requireNgxsockify(t)
	uidLine := regexp.MustCompile(`init_worker says uid (\d+)`)
	run := func(kind, bin string) string {
		dir := t.TempDir()
		os.Chmod(dir, 0o755)
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		udp := pc.LocalAddr().String()
		pc.Close() // free until the command has returned
		conf := "pid " + dir + "/nginx.pid;\nerror_log syslog:server=" + udp + " error;\n" + luaModules +
			"events {}\nhttp {\n    init_worker_by_lua_block {\n        os.execute(\"sleep 0.3\")\n" +
			"        local p = io.popen(\"id -u\")\n        local uid = p:read(\"*l\")\n        p:close()\n" +
			"        ngx.log(ngx.ERR, \"init_worker says uid \", uid)\n    }\n" +
			"    server {\n        listen 127.0.0.1:" + strconv.Itoa(freePort(t)) + ";\n        return 200;\n    }\n}\n"
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dir, "out.txt"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		cmd := exec.Command(bin, "-p", dir+"/", "-c", dir+"/nginx.conf", "-e", dir+"/e.log")
		cmd.Stdout, cmd.Stderr = out, out // the daemon may keep them: no pipe to wait for
		if err := cmd.Run(); err != nil {
			b, _ := os.ReadFile(filepath.Join(dir, "out.txt"))
			t.Fatalf("%s: %v\n%s", kind, err, b)
		}
		defer func() {
			b, _ := os.ReadFile(filepath.Join(dir, "nginx.pid"))
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
				syscall.Kill(pid, syscall.SIGTERM)
				for i := 0; i < 200 && alive(pid); i++ {
					time.Sleep(50 * time.Millisecond)
				}
				if alive(pid) {
					st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
					e, _ := os.ReadFile(filepath.Join(dir, "e.log"))
					t.Errorf("%s (pid %d) still runs 10 s after SIGTERM: %s\n%s", kind, pid, st, e)
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}()
		pc, err = net.ListenPacket("udp", udp)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		defer pc.Close()
		buf := make([]byte, 4096)
		pc.SetReadDeadline(time.Now().Add(3 * time.Second))
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return "no datagram: " + err.Error()
			}
			if m := uidLine.FindSubmatch(buf[:n]); m != nil {
				return "uid " + string(m[1])
			}
		}
	}
	ng, sx := run("nginx", nginx), run("ngxsockify", ngx)
	if ng != sx {
		t.Errorf("init_worker_by_lua's line after the command returned: nginx %q, ngxsockify %q", ng, sx)
	}
	if !strings.HasPrefix(ng, "uid ") {
		t.Errorf("nginx: %s", ng)
	}
}

// TestLuaInitWorkerStop: SIGTERM while init_worker_by_lua is still running
// (a command that takes 15 s), at startup or in a reload, stops the process
// at once, as nginx's master stops a worker that does not exit (it kills it
// after about 1.6 s); the signal used to wait for the hook's end.
func TestLuaInitWorkerStop(t *testing.T) {
	const hook = "init_worker_by_lua_block { os.execute(\"sleep 15\") }\n"
	const srv = `
server {
    listen 127.0.0.1:{{PORT}};
    return 200;
}`
	stopped := func(t *testing.T, s *Server) {
		t.Helper()
		time.Sleep(300 * time.Millisecond) // the hook is running
		sent := time.Now()
		s.Signal(syscall.SIGTERM)
		// s.Exited waits for the output pipes, which the orphaned sleep holds
		pid := s.cmd.Process.Pid
		for alive(pid) && time.Since(sent) < 5*time.Second {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("still running %v after SIGTERM; error log:\n%s", time.Since(sent).Round(time.Millisecond), s.ErrorLog())
		} else if log := s.ErrorLog(); !strings.Contains(log, "signal 15 received, exiting") {
			t.Errorf("error log after SIGTERM:\n%s", log)
		}
		s.Stop() // and the sleep, in its process group
	}
	t.Run("start", func(t *testing.T) {
		stopped(t, startNgxsockify(t, hook+srv))
	})
	t.Run("reload", func(t *testing.T) {
		s := startNgxsockify(t, srv)
		conf, err := os.ReadFile(s.Conf)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.Conf, []byte(strings.Replace(string(conf), "http {\n", "http {\n"+hook, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		s.Signal(syscall.SIGHUP)
		stopped(t, s)
	})
}
