// Command ngxsockify-bench measures WebSocket-to-TCP relays side by side on
// loopback: ngxsockify (the binary), Debian's Python websockify, the
// proxy/websockify package alone (served by this binary in a child process)
// and raw TCP, in one interleaved run (each round runs every test on every
// relay, the relay order rotating between rounds). Every byte is checked,
// every wait is bounded and the run stops by itself. It prints a Markdown
// table.
//
// Usage:
//
//	go build ./cmd/ngxsockify ./cmd/ngxsockify-bench
//	./ngxsockify-bench -ngxsockify ./ngxsockify -rounds 3
//
// Relays are reached through one target server (a child process) whose
// connections start with one command byte: 'E' echo, 'P'+uint64 push that
// many pattern bytes then close. A relay given with -relay name=ws://...
// must forward to -target-addr, which then listens on a fixed address.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"ngxsockify/proxy/websockify"
)

// pattern is the byte stream every test sends and checks: random bytes of a
// prime length, repeated, so a lost or shifted byte is always seen.
var pattern = func() []byte {
	b := make([]byte, 1000003)
	rand.New(rand.NewSource(1)).Read(b)
	return b
}()

// patternAt returns n pattern bytes starting at stream offset off (n <= len(pattern)).
func patternAt(off int64, n int) []byte {
	o := int(off % int64(len(pattern)))
	if o+n <= len(pattern) {
		return pattern[o : o+n]
	}
	b := make([]byte, 0, n)
	b = append(b, pattern[o:]...)
	return append(b, pattern[:n-len(b)]...)
}

// checker verifies a received stream against the pattern.
type checker struct{ off int64 }

func (c *checker) check(b []byte) error {
	for len(b) > 0 {
		o := int(c.off % int64(len(pattern)))
		n := min(len(b), len(pattern)-o)
		for i := 0; i < n; i++ {
			if b[i] != pattern[o+i] {
				return fmt.Errorf("byte %d differs", c.off+int64(i))
			}
		}
		c.off += int64(n)
		b = b[n:]
	}
	return nil
}

func main() {
	mode := flag.String("mode", "bench", "bench | target | relay (internal)")
	listen := flag.String("listen", "127.0.0.1:0", "relay/target mode: listen address")
	targetAddr := flag.String("target-addr", "127.0.0.1:0", "target server address (fixed when -relay is used)")
	ngxBin := flag.String("ngxsockify", "", "path to the ngxsockify binary (empty: skip)")
	pyBin := flag.String("websockify", "/usr/bin/websockify", "path to Python websockify (empty: skip)")
	self := flag.Bool("self", true, "also measure the proxy/websockify package alone (this binary as relay)")
	proxyUpgrade := flag.Bool("proxy-upgrade", false, "with -ngxsockify, also measure upgraded connections through its proxy_pass (Upgrade: raw, then raw bytes) next to its websockify tunnels")
	tcpProxy := flag.Bool("tcpproxy", true, "also measure a plain Go TCP proxy (io.Copy both ways): the cost of one extra process hop")
	nginxBin := flag.String("nginx-stream", "/usr/sbin/nginx", "nginx binary for a C TCP proxy column (stream { proxy_pass }; needs libnginx-mod-stream; empty: skip)")
	baseBin := flag.String("ngxsockify-base", "", "a second ngxsockify binary (say main's build) measured with the same config in a column of its own, \"ngxsockify (base)\" (empty: skip)")
	cmodBin := flag.String("cmodule", "", "nginx binary built with the C websockify module (github.com/tg123/websockify-nginx-module) for a column of its own (empty: skip)")
	workers := flag.Int("workers", 1, "worker_processes for ngxsockify (its event loops) and the C module's nginx")
	var extra relayFlags
	flag.Var(&extra, "relay", "extra relay name=ws://host:port/path[,pid=N] forwarding to -target-addr (repeatable)")
	rounds := flag.Int("rounds", 3, "interleaved rounds")
	quick := flag.Bool("quick", false, "smaller sizes and counts (smoke test)")
	pyMax := flag.Int("py-max-tunnels", 1000, "most idle tunnels to open through Python websockify (it forks one process each)")
	tests := flag.String("tests", "throughput,memory,concurrency", "test groups to run: download, echo, latency, handshakes (throughput = all four), memory, concurrency; "+
		"or alone: fresh (memory per idle tunnel of a new ngxsockify process, fresh.go) or "+
		"scrape (round trips while /metrics is scraped under 9000 tunnels, scrape.go)")
	maxTime := flag.Duration("max-time", 15*time.Minute, "stop after this long")
	flag.Parse()
	raiseNofile()

	switch *mode {
	case "target":
		runTarget(*listen)
		return
	case "relay":
		runRelay(*listen, *targetAddr)
		return
	case "tcpproxy":
		runTCPProxy(*listen, *targetAddr)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), *maxTime)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{ctx: ctx, quick: *quick, pyMax: *pyMax, rounds: *rounds, tests: *tests}
	b.tcpProxy = *tcpProxy
	b.proxyUpgrade = *proxyUpgrade
	b.nginx = *nginxBin
	b.cmodule, b.workers = *cmodBin, *workers
	b.base = *baseBin
	if err := b.run(*targetAddr, *ngxBin, *pyBin, *self, extra); err != nil {
		fmt.Fprintln(os.Stderr, "ngxsockify-bench:", err)
		b.cleanup()
		os.Exit(1)
	}
	b.cleanup()
}

type relayFlags []string

func (r *relayFlags) String() string     { return strings.Join(*r, " ") }
func (r *relayFlags) Set(v string) error { *r = append(*r, v); return nil }

// ---- target server (child process) ----

func runTarget(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	go func() { io.Copy(io.Discard, os.Stdin); os.Exit(0) }() // exit with the parent
	for {
		c, err := ln.Accept()
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go serveTarget(c)
	}
}

func serveTarget(c net.Conn) {
	defer c.Close()
	var cmd [1]byte
	if _, err := io.ReadFull(c, cmd[:]); err != nil {
		return
	}
	if cmd[0] == 'G' { // an upgrade request (-proxy-upgrade), then a command
		if targetUpgrade(c) != nil {
			return
		}
		if _, err := io.ReadFull(c, cmd[:]); err != nil {
			return
		}
	}
	switch cmd[0] {
	case 'E':
		// Hide ReadFrom: TCPConn to TCPConn would splice through a pipe,
		// 2 more fds per idle connection.
		buf := make([]byte, 32<<10)
		io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, buf)
	case 'P':
		var n uint64
		if binary.Read(c, binary.BigEndian, &n) != nil {
			return
		}
		var off int64
		for off < int64(n) {
			k := int(min(int64(n)-off, 256<<10))
			if _, err := c.Write(patternAt(off, k)); err != nil {
				return
			}
			off += int64(k)
		}
		// Keep the connection open until the client closes it: Python
		// websockify drops data still queued when the target closes first.
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		io.Copy(io.Discard, c)
	}
}

// ---- relay using the package alone (child process) ----

func runRelay(addr, target string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	go func() { io.Copy(io.Discard, os.Stdin); os.Exit(0) }()
	d := dialAddr(target)
	var ts websockify.Tunnels
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := websockify.ServeAsync(w, r, d, websockify.Options{}, &ts, func(websockify.Result) {})
		if res.Status != http.StatusSwitchingProtocols {
			http.Error(w, http.StatusText(res.Status), res.Status)
		}
	})}
	srv.Serve(ln)
}

// runTCPProxy is the simplest relay: one TCP connection to the target per
// client connection, io.Copy both ways.
func runTCPProxy(addr, target string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	go func() { io.Copy(io.Discard, os.Stdin); os.Exit(0) }()
	for {
		c, err := ln.Accept()
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go func() {
			defer c.Close()
			t, err := net.DialTimeout("tcp", target, 10*time.Second)
			if err != nil {
				return
			}
			defer t.Close()
			// No splice (it would hold 2 pipe fds per direction).
			go func() { io.Copy(struct{ io.Writer }{t}, struct{ io.Reader }{c}); t.(*net.TCPConn).CloseWrite() }()
			io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{t})
		}()
	}
}

type dialAddr string

func (a dialAddr) Dial(ctx context.Context, timeout time.Duration) (net.Conn, string, error) {
	c, err := (&net.Dialer{Timeout: timeout}).DialContext(ctx, "tcp", string(a))
	return c, string(a), err
}

// ---- the bench ----

type relay struct {
	name    string
	url     string // ws://...; "" for raw TCP
	raw     string // raw TCP: address to connect to ("" is the target)
	upgrade string // raw TCP after an HTTP upgrade of this path (proxy_pass)
	pid     int    // relay process, 0 if unknown
	tree    bool   // measure CPU and PSS over the process tree
	base64  bool
	maxIdle int
	cmd     *exec.Cmd
}

type bench struct {
	ctx      context.Context
	quick    bool
	pyMax    int
	rounds   int
	tests    string
	tcpProxy bool
	// proxyUpgrade adds ngxsockify's proxy_pass upgrade column (upgrade.go).
	proxyUpgrade bool
	nginx        string // nginx binary for the stream proxy column
	cmodule      string // nginx binary with the C websockify module
	base         string // a second ngxsockify binary (an older build) for a column of its own
	workers      int    // worker_processes of ngxsockify and the C module
	target       string
	cmds         []*exec.Cmd
	dir          string
	res          map[string]map[string][]float64 // relay -> metric -> samples
	notes        map[string]map[string]string
	mu           sync.Mutex
}

func (b *bench) cleanup() {
	for _, c := range b.cmds {
		if c.Process != nil {
			killGroup(c)
			c.Wait()
		}
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// startChild starts a command and reads the address it prints first (or waits for want to accept).
func (b *bench) startChild(name string, args []string, printsAddr bool, want string) (*exec.Cmd, string, error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = nil
	cmd.SysProcAttr = childAttr()
	stdin, _ := cmd.StdinPipe() // children exit when we do
	_ = stdin
	var out io.ReadCloser
	if printsAddr {
		out, _ = cmd.StdoutPipe()
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	b.cmds = append(b.cmds, cmd)
	if printsAddr {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", name, err)
		}
		return cmd, strings.TrimSpace(line), nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", want, time.Second); err == nil {
			c.Close()
			return cmd, want, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, "", fmt.Errorf("%s did not listen on %s", name, want)
}

// streamModule is where Debian's libnginx-mod-stream puts the module.
const streamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"

// startNginxStream runs nginx as a plain TCP proxy (one process, its own
// epoll loop): what a C event loop costs per hop, without WebSocket framing.
// It returns nil, nil when b.nginx is empty.
func (b *bench) startNginxStream() (*relay, error) {
	if b.nginx == "" {
		return nil, nil
	}
	for _, f := range []string{b.nginx, streamModule} {
		if _, err := os.Stat(f); err != nil {
			return nil, err
		}
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`load_module %s;
daemon off;
master_process off;
worker_rlimit_nofile 20000;
error_log %s/nginx-stream.log;
pid %s/nginx-stream.pid;
events { worker_connections 20000; }
stream { server { listen %s; proxy_pass %s; } }
`, streamModule, b.dir, b.dir, addr, b.target)
	path := filepath.Join(b.dir, "nginx-stream.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd, _, err := b.startChild(b.nginx, []string{"-p", b.dir, "-c", path}, false, addr)
	if err != nil {
		return nil, err
	}
	return &relay{name: "nginx stream (C)", raw: addr, pid: cmd.Process.Pid, maxIdle: 1 << 30, cmd: cmd}, nil
}

// startCModule runs nginx built with the C websockify module, with the
// same workers as ngxsockify (a master and its workers: CPU and memory are
// taken over the process tree). It returns nil, nil when b.cmodule is empty.
func (b *bench) startCModule() (*relay, error) {
	if b.cmodule == "" {
		return nil, nil
	}
	cmd, addr, err := b.startWebsockify(b.cmodule, b.dir, "cmodule", b.workers, "worker_rlimit_nofile 20000;", "access_log off;", "")
	if err != nil {
		return nil, err
	}
	return &relay{name: "nginx + C module", url: "ws://" + addr + "/websockify", pid: cmd.Process.Pid, tree: true, base64: true, maxIdle: 1 << 30, cmd: cmd}, nil
}

// startWebsockify runs bin (ngxsockify, or nginx built with the C module)
// on dir/name.conf: one server on a free port whose /websockify relays to
// the target, with extra lines for the main, http and server levels. It
// returns the command and the server's address.
func (b *bench) startWebsockify(bin, dir, name string, workers int, mainExtra, httpExtra, serverExtra string) (*exec.Cmd, string, error) {
	addr, err := freePort()
	if err != nil {
		return nil, "", err
	}
	conf := fmt.Sprintf(`daemon off;
worker_processes %d;
%s
error_log %s/%s.log;
pid %s/%s.pid;
events { worker_connections 20000; }
http {
    %s
    server {
        listen %s;
        %s
        location /websockify { websockify_pass %s; }
    }
}
`, workers, mainExtra, dir, name, dir, name, httpExtra, addr, serverExtra, b.target)
	path := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, "", err
	}
	cmd, _, err := b.startChild(bin, []string{"-p", dir, "-c", path}, false, addr)
	if err != nil {
		return nil, "", fmt.Errorf("%w (config in %s)", err, path)
	}
	return cmd, addr, nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (b *bench) run(targetAddr, ngxBin, pyBin string, self bool, extra relayFlags) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if _, b.target, err = b.startChild(exe, []string{"-mode", "target", "-listen", targetAddr}, true, ""); err != nil {
		return err
	}
	b.dir, _ = os.MkdirTemp("", "ngxsockify-bench")
	if b.tests == "fresh" {
		if ngxBin == "" {
			return errors.New("-tests fresh needs -ngxsockify")
		}
		for _, accessLog := range []bool{false, true} {
			for _, n := range []int{1000, 5000} {
				if b.quick {
					n /= 10
				}
				if err := b.freshMemory(ngxBin, n, accessLog); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if b.tests == "scrape" {
		if ngxBin == "" {
			return errors.New("-tests scrape needs -ngxsockify")
		}
		n := 9000
		if b.quick {
			n = 900
		}
		return b.scrapeUnderLoad(ngxBin, n)
	}
	var relays []*relay
	if ngxBin != "" {
		cmd, addr, err := b.startWebsockify(ngxBin, b.dir, "ngxsockify", b.workers, "", "access_log off;", "")
		if err != nil {
			return fmt.Errorf("ngxsockify: %w", err)
		}
		relays = append(relays, &relay{name: "ngxsockify", url: "ws://" + addr + "/websockify", pid: cmd.Process.Pid, base64: true, maxIdle: 1 << 30, cmd: cmd})
		if b.proxyUpgrade {
			r, err := b.startUpgradeRelay(ngxBin)
			if err != nil {
				return fmt.Errorf("ngxsockify proxy_pass upgrade: %w", err)
			}
			relays = append(relays, r)
		}
	}
	if b.base != "" {
		cmd, addr, err := b.startWebsockify(b.base, b.dir, "ngxsockify-base", b.workers, "", "access_log off;", "")
		if err != nil {
			return fmt.Errorf("ngxsockify (base): %w", err)
		}
		relays = append(relays, &relay{name: "ngxsockify (base)", url: "ws://" + addr + "/websockify", pid: cmd.Process.Pid, base64: true, maxIdle: 1 << 30, cmd: cmd})
	}
	if self {
		cmd, addr, err := b.startChild(exe, []string{"-mode", "relay", "-target-addr", b.target}, true, "")
		if err != nil {
			return err
		}
		relays = append(relays, &relay{name: "websockify pkg", url: "ws://" + addr + "/websockify", pid: cmd.Process.Pid, base64: true, maxIdle: 1 << 30, cmd: cmd})
	}
	for _, e := range extra {
		name, rest, _ := strings.Cut(e, "=")
		u, opts, _ := strings.Cut(rest, ",")
		r := &relay{name: name, url: u, base64: true, maxIdle: 1 << 30}
		if p, ok := strings.CutPrefix(opts, "pid="); ok {
			r.pid, _ = strconv.Atoi(p)
		}
		relays = append(relays, r)
	}
	if pyBin != "" {
		addr, _ := freePort()
		cmd, _, err := b.startChild(pyBin, []string{addr, b.target}, false, addr)
		if err != nil {
			return err
		}
		relays = append(relays, &relay{name: "Python websockify", url: "ws://" + addr + "/", pid: cmd.Process.Pid, tree: true, maxIdle: b.pyMax, cmd: cmd})
	}
	if b.tcpProxy {
		cmd, addr, err := b.startChild(exe, []string{"-mode", "tcpproxy", "-target-addr", b.target}, true, "")
		if err != nil {
			return err
		}
		relays = append(relays, &relay{name: "Go TCP proxy", raw: addr, pid: cmd.Process.Pid, maxIdle: 1 << 30, cmd: cmd})
	}
	if r, err := b.startCModule(); err != nil {
		return fmt.Errorf("C module: %w", err)
	} else if r != nil {
		relays = append(relays, r)
	}
	if r, err := b.startNginxStream(); err != nil {
		fmt.Fprintln(os.Stderr, "nginx stream proxy skipped:", err)
	} else if r != nil {
		relays = append(relays, r)
	}
	relays = append(relays, &relay{name: "raw TCP", maxIdle: 1 << 30})

	b.res = map[string]map[string][]float64{}
	b.notes = map[string]map[string]string{}
	if strings.Contains(b.tests, "throughput") {
		b.tests += ",download,echo,latency,handshakes"
	}
	for round := 0; round < max(1, b.roundsFlag()); round++ {
		for i := range relays {
			r := relays[(i+round)%len(relays)]
			if err := b.ctx.Err(); err != nil {
				b.print(relays)
				return err
			}
			fmt.Fprintf(os.Stderr, "round %d: %s\n", round+1, r.name)
			b.throughputTests(r)
		}
	}
	for i := range relays {
		r := relays[i]
		if r.pid == 0 || b.ctx.Err() != nil || !strings.Contains(b.tests, "memory") {
			continue
		}
		fmt.Fprintf(os.Stderr, "memory: %s\n", r.name)
		for _, n := range []int{1000, 5000} {
			if b.quick {
				n /= 10
			}
			b.idleMemory(r, n)
		}
	}
	for _, r := range relays {
		if b.ctx.Err() != nil || !strings.Contains(b.tests, "concurrency") {
			continue
		}
		n := 9000
		if b.quick {
			n = 900
		}
		fmt.Fprintf(os.Stderr, "concurrency: %s\n", r.name)
		b.concurrent(r, n)
	}
	b.print(relays)
	return nil
}

func (b *bench) roundsFlag() int { return b.rounds }

func (b *bench) want(test string) bool { return strings.Contains(b.tests, test) }

func (b *bench) record(r *relay, metric string, v float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.res[r.name] == nil {
		b.res[r.name] = map[string][]float64{}
	}
	b.res[r.name][metric] = append(b.res[r.name][metric], v)
}

// recordCPU accumulates CPU seconds and gigabytes relayed (both directions
// for echo); the table shows their ratio over all rounds, since one test is
// only a few clock ticks long.
func (b *bench) recordCPU(r *relay, metric string, cpu, gb float64) {
	b.record(r, "cpu "+metric, cpu)
	b.record(r, "gb "+metric, gb)
}

func (b *bench) note(r *relay, metric, s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.notes[r.name] == nil {
		b.notes[r.name] = map[string]string{}
	}
	if b.notes[r.name][metric] == "" {
		b.notes[r.name][metric] = s
	}
	fmt.Fprintf(os.Stderr, "  %s %s: %s\n", r.name, metric, s)
}

// ---- connections ----

// stream is one tunnel seen as a byte stream.
type stream interface {
	send(p []byte) error // one message (or write)
	recv() ([]byte, error)
	close()
}

type wsStream struct {
	c   *websocket.Conn
	b64 bool
	buf []byte
}

func (s *wsStream) send(p []byte) error {
	s.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if s.b64 {
		return s.c.WriteMessage(websocket.TextMessage, []byte(base64.StdEncoding.EncodeToString(p)))
	}
	return s.c.WriteMessage(websocket.BinaryMessage, p)
}

func (s *wsStream) recv() ([]byte, error) {
	s.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	mt, r, err := s.c.NextReader()
	if err != nil {
		return nil, err
	}
	// Read into a reused buffer: the client should cost as little as it can.
	m := s.buf[:0]
	for {
		if len(m) == cap(m) {
			m = append(m, 0)[:len(m)]
		}
		n, err := r.Read(m[len(m):cap(m)])
		m = m[:len(m)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	s.buf = m
	if s.b64 {
		if mt != websocket.TextMessage {
			return nil, errors.New("base64 mode: binary frame")
		}
		return base64.StdEncoding.DecodeString(string(m))
	}
	return m, nil
}

func (s *wsStream) close() {
	s.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websockify.CloseNormalClosure, ""), time.Now().Add(time.Second))
	s.c.Close()
}

type tcpStream struct {
	c   net.Conn
	buf []byte
}

func (s *tcpStream) send(p []byte) error {
	s.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := s.c.Write(p)
	return err
}

func (s *tcpStream) recv() ([]byte, error) {
	s.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := s.c.Read(s.buf)
	if n > 0 {
		return s.buf[:n], nil
	}
	return nil, err
}

func (s *tcpStream) close() { s.c.Close() }

var wsDialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
var smallDialer = &websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}

// open opens a tunnel and sends the command cmd.
func (b *bench) open(r *relay, b64 bool, cmd []byte, d *websocket.Dialer) (stream, error) {
	var s stream
	if r.url == "" {
		addr := r.raw
		if addr == "" {
			addr = b.target
		}
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return nil, err
		}
		if r.upgrade != "" {
			if err := upgradeConn(c, r.upgrade); err != nil {
				c.Close()
				return nil, err
			}
		}
		s = &tcpStream{c: c, buf: make([]byte, 256<<10)}
	} else {
		var protos []string
		if b64 {
			protos = []string{"base64"}
		} else {
			protos = []string{"binary"}
		}
		c, resp, err := d.DialContext(b.ctx, r.url, http.Header{"Sec-WebSocket-Protocol": protos})
		if err != nil {
			if resp != nil {
				err = fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
			}
			return nil, err
		}
		s = &wsStream{c: c, b64: b64}
	}
	if len(cmd) > 0 {
		if err := s.send(cmd); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// ---- CPU and memory of a relay process ----

// cpuSeconds returns the CPU time (utime+stime) of pid; with tree, also
// the time of its reaped children (cutime+cstime) and of the live ones.
func cpuSeconds(pid int, tree bool) float64 {
	return procSeconds(pid, tree, false)
}

// userSeconds is cpuSeconds' user part (utime, cutime).
func userSeconds(pid int, tree bool) float64 {
	return procSeconds(pid, tree, true)
}

func procSeconds(pid int, tree, userOnly bool) float64 {
	fields := func(p int) []string {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			return nil
		}
		s := string(data)
		// Fields after "comm)": state is index 0, utime 11, stime 12, cutime 13, cstime 14.
		return strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	}
	sum := func(f []string, idx ...int) float64 {
		t := 0.0
		for _, i := range idx {
			if i < len(f) {
				v, _ := strconv.ParseFloat(f[i], 64)
				t += v
			}
		}
		return t
	}
	own, reaped := []int{11, 12}, []int{13, 14}
	if userOnly {
		own, reaped = own[:1], reaped[:1]
	}
	if !tree {
		return sum(fields(pid), own...) / 100
	}
	total := sum(fields(pid), append(own, reaped...)...)
	for _, c := range children(pid) {
		total += sum(fields(c), own...)
	}
	return total / 100 // USER_HZ
}

func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		data, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(data)) {
			c, _ := strconv.Atoi(f)
			out = append(out, c)
			out = append(out, children(c)...)
		}
	}
	return out
}

// memoryKiB returns the RSS of pid, or the PSS summed over its tree.
func memoryKiB(pid int, tree bool) float64 {
	if !tree {
		return statusField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
	}
	total := 0.0
	for _, p := range append([]int{pid}, children(pid)...) {
		total += statusField(fmt.Sprintf("/proc/%d/smaps_rollup", p), "Pss:")
	}
	return total
}

func statusField(path, key string) float64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.ParseFloat(f[0], 64)
				return v
			}
		}
	}
	return 0
}

// ---- tests ----

func (b *bench) throughputTests(r *relay) {
	mb := int64(1 << 20)
	down, echoBig, echoSmall := 64*mb, 32*mb, 4*mb
	if b.quick {
		down, echoBig, echoSmall = 8*mb, 4*mb, mb
	}
	cpu0 := b.cpu(r)
	if !b.want("download") {
	} else if v, err := b.download(r, down); err != nil {
		b.note(r, "download", "FAIL: "+err.Error())
	} else {
		b.record(r, "download MB/s", v)
	}
	if r.pid != 0 && b.want("download") {
		b.recordCPU(r, "CPU s/GB (download)", b.cpu(r)-cpu0, float64(down)/1e9)
	}
	for _, b64 := range []bool{false, true} {
		if !b.want("echo") || b64 && (r.url == "" || !r.base64) {
			continue
		}
		kind := "binary"
		if b64 {
			kind = "base64"
		}
		cpu0 := b.cpu(r)
		if v, err := b.echo(r, b64, 64<<10, echoBig); err != nil {
			b.note(r, "echo 64 KiB "+kind, "FAIL: "+err.Error())
		} else {
			b.record(r, "echo 64 KiB "+kind+" MB/s", v)
			if r.pid != 0 && !b64 {
				b.recordCPU(r, "CPU s/GB (echo 64 KiB)", b.cpu(r)-cpu0, 2*float64(echoBig)/1e9)
			}
		}
		if v, err := b.echo(r, b64, 1<<10, echoSmall); err != nil {
			b.note(r, "echo 1 KiB "+kind, "FAIL: "+err.Error())
		} else {
			b.record(r, "echo 1 KiB "+kind+" MB/s", v)
		}
	}
	n := 2000
	if b.quick {
		n = 300
	}
	if !b.want("latency") {
	} else if p50, p99, err := b.latency(r, n); err != nil {
		b.note(r, "latency", "FAIL: "+err.Error())
	} else {
		b.record(r, "round trip p50 µs", p50)
		b.record(r, "round trip p99 µs", p99)
	}
	dur := 2 * time.Second
	if b.quick {
		dur = 500 * time.Millisecond
	}
	cpu0 = b.cpu(r)
	user0 := b.userCPU(r)
	cs0 := b.switches(r)
	start := time.Now()
	if !b.want("handshakes") {
	} else if v, err := b.handshakes(r, dur); err != nil {
		b.note(r, "handshakes", "FAIL: "+err.Error())
	} else {
		b.record(r, "handshakes/s", v)
		if r.pid != 0 {
			n := v * time.Since(start).Seconds()
			b.record(r, "relay CPU µs per handshake", (b.cpu(r)-cpu0)*1e6/n)
			b.record(r, "relay user CPU µs per handshake", (b.userCPU(r)-user0)*1e6/n)
			b.record(r, "relay context switches per handshake", (b.switches(r)-cs0)/n)
		}
	}
}

func (b *bench) cpu(r *relay) float64 {
	if r.pid == 0 {
		return 0
	}
	return cpuSeconds(r.pid, r.tree)
}

func (b *bench) userCPU(r *relay) float64 {
	if r.pid == 0 {
		return 0
	}
	return userSeconds(r.pid, r.tree)
}

// switches returns the context switches (voluntary and not) of the relay
// so far: those of every thread of pid, and with tree of its live
// children's. Threads that ended are not counted (Go's threads do not end;
// nginx's workers live as long as the test).
func (b *bench) switches(r *relay) float64 {
	if r.pid == 0 {
		return 0
	}
	pids := []int{r.pid}
	if r.tree {
		pids = append(pids, children(r.pid)...)
	}
	total := 0.0
	for _, p := range pids {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", p))
		for _, t := range tasks {
			total += statusField(t, "voluntary_ctxt_switches:") + statusField(t, "nonvoluntary_ctxt_switches:")
		}
	}
	return total
}

func (b *bench) download(r *relay, n int64) (float64, error) {
	cmd := make([]byte, 9)
	cmd[0] = 'P'
	binary.BigEndian.PutUint64(cmd[1:], uint64(n))
	start := time.Now()
	s, err := b.open(r, false, cmd, wsDialer)
	if err != nil {
		return 0, err
	}
	defer s.close()
	var ck checker
	for ck.off < n {
		m, err := s.recv()
		if err != nil {
			return 0, fmt.Errorf("after %d bytes: %w", ck.off, err)
		}
		if err := ck.check(m); err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds() / 1e6, nil
}

// echo sends total bytes in messages of size and reads them back; MB/s of payload one way.
func (b *bench) echo(r *relay, b64 bool, size int, total int64) (float64, error) {
	s, err := b.open(r, b64, []byte{'E'}, wsDialer)
	if err != nil {
		return 0, err
	}
	defer s.close()
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		var off int64
		for off < total {
			k := int(min(int64(size), total-off))
			if err := s.send(patternAt(off, k)); err != nil {
				werr <- err
				return
			}
			off += int64(k)
		}
		werr <- nil
	}()
	var ck checker
	for ck.off < total {
		m, err := s.recv()
		if err != nil {
			return 0, fmt.Errorf("after %d bytes: %w", ck.off, err)
		}
		if err := ck.check(m); err != nil {
			return 0, err
		}
	}
	if err := <-werr; err != nil {
		return 0, err
	}
	return float64(total) / time.Since(start).Seconds() / 1e6, nil
}

func (b *bench) latency(r *relay, n int) (p50, p99 float64, err error) {
	s, err := b.open(r, false, []byte{'E'}, wsDialer)
	if err != nil {
		return 0, 0, err
	}
	defer s.close()
	var ck checker
	var off int64
	times := make([]float64, 0, n)
	for i := 0; i < n+50; i++ {
		msg := patternAt(off, 64)
		off += 64
		t0 := time.Now()
		if err := s.send(msg); err != nil {
			return 0, 0, err
		}
		for ck.off < off {
			m, err := s.recv()
			if err != nil {
				return 0, 0, err
			}
			if err := ck.check(m); err != nil {
				return 0, 0, err
			}
		}
		if i >= 50 { // warm-up
			times = append(times, float64(time.Since(t0).Microseconds()))
		}
	}
	sort.Float64s(times)
	return times[len(times)/2], times[len(times)*99/100], nil
}

func (b *bench) handshakes(r *relay, dur time.Duration) (float64, error) {
	const workers = 8
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1024)
			for time.Now().Before(deadline) && b.ctx.Err() == nil {
				if err := b.handshake(r, buf); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					time.Sleep(10 * time.Millisecond)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		b.note(r, "handshakes", fmt.Sprintf("%d failed, first: %v", f, firstErr.Load()))
	}
	return float64(ok.Load()) / time.Since(start).Seconds(), nil
}

// handshakeRequest is a fixed upgrade request; its key's accept value is
// s3pPLMBiTxaQ9kYGzzhZRbK+xOo= (RFC 6455's example). A light client keeps
// the measurement on the relay rather than on this process.
const handshakeRequest = "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: binary\r\n\r\n"

// handshake opens one tunnel (a TCP connection for raw relays), checks the
// 101 and closes it without a close handshake.
func (b *bench) handshake(r *relay, buf []byte) error {
	if r.url == "" {
		s, err := b.open(r, false, nil, nil)
		if err != nil {
			return err
		}
		s.close()
		return nil
	}
	u, err := url.Parse(r.url)
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, handshakeRequest, u.RequestURI(), u.Host); err != nil {
		return err
	}
	n := 0
	for !bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
		if n == len(buf) {
			return errors.New("response head too long")
		}
		k, err := c.Read(buf[n:])
		if err != nil {
			return err
		}
		n += k
	}
	head := string(buf[:n])
	if !strings.HasPrefix(head, "HTTP/1.1 101 ") || !strings.Contains(head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") {
		line, _, _ := strings.Cut(head, "\r\n")
		return fmt.Errorf("bad answer %q", line)
	}
	return nil
}

// openMany opens n echo tunnels (each checked with one round trip) with bounded concurrency.
func (b *bench) openMany(r *relay, n int) ([]stream, int, string) {
	streams := make([]stream, n)
	var failed atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := 0; i < n && b.ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			s, err := b.open(r, false, []byte{'E'}, smallDialer)
			if err == nil {
				msg := patternAt(int64(i), 1)
				if err = s.send(msg); err == nil {
					var m []byte
					m, err = s.recv()
					if err == nil && (len(m) != 1 || m[0] != msg[0]) {
						err = errors.New("echo differs")
					}
				}
				if err != nil {
					s.close()
				}
			}
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			streams[i] = s
		}(i)
	}
	wg.Wait()
	first, _ := firstErr.Load().(string)
	return streams, int(failed.Load()), first
}

func closeAll(streams []stream) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, s := range streams {
		if s == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() { defer func() { <-sem; wg.Done() }(); s.close() }()
	}
	wg.Wait()
}

func (b *bench) idleMemory(r *relay, n int) {
	metric := fmt.Sprintf("KiB per idle tunnel (%d)", n)
	if r.pid == 0 {
		return
	}
	if n > r.maxIdle {
		b.note(r, metric, fmt.Sprintf("not run (-py-max-tunnels %d)", r.maxIdle))
		return
	}
	time.Sleep(500 * time.Millisecond)
	base := memoryKiB(r.pid, r.tree)
	streams, failed, first := b.openMany(r, n)
	defer func() { closeAll(streams); time.Sleep(time.Second) }()
	time.Sleep(1500 * time.Millisecond)
	after := memoryKiB(r.pid, r.tree)
	if failed > 0 {
		b.note(r, metric, fmt.Sprintf("%d of %d tunnels failed (first: %s)", failed, n, first))
	}
	if ok := n - failed; ok > 0 {
		b.record(r, metric, (after-base)/float64(ok))
	}
}

func (b *bench) concurrent(r *relay, n int) {
	metric := fmt.Sprintf("%d concurrent tunnels", n)
	if n > r.maxIdle {
		b.note(r, metric, fmt.Sprintf("not run (-py-max-tunnels %d)", r.maxIdle))
		return
	}
	streams, failed, first := b.openMany(r, n)
	defer closeAll(streams)
	// Every tunnel moves 1 KiB both ways, all at once.
	var bad atomic.Int64
	var badErr atomic.Value
	fail := func(err error) { bad.Add(1); badErr.CompareAndSwap(nil, err.Error()) }
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for i, s := range streams {
		if s == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			msg := patternAt(int64(i*7), 1024)
			if err := s.send(msg); err != nil {
				fail(err)
				return
			}
			got := make([]byte, 0, 1024)
			for len(got) < 1024 {
				m, err := s.recv()
				if err != nil {
					fail(err)
					return
				}
				got = append(got, m...)
			}
			if string(got) != string(msg) {
				fail(errors.New("echo differs"))
			}
		}()
	}
	wg.Wait()
	errs := failed + int(bad.Load())
	b.record(r, metric+" errors", float64(errs))
	if errs > 0 {
		b.note(r, metric, fmt.Sprintf("%d open failures (first: %s), %d transfer failures (first: %v)", failed, first, bad.Load(), badErr.Load()))
	}
}

// ---- output ----

func sum(v []float64) float64 {
	t := 0.0
	for _, x := range v {
		t += x
	}
	return t
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func (b *bench) print(relays []*relay) {
	metrics := []string{
		"download MB/s", "echo 64 KiB binary MB/s", "echo 1 KiB binary MB/s", "echo 64 KiB base64 MB/s",
		"echo 1 KiB base64 MB/s", "round trip p50 µs", "round trip p99 µs", "handshakes/s", "relay CPU µs per handshake",
		"relay user CPU µs per handshake", "relay context switches per handshake",
		"KiB per idle tunnel (1000)", "KiB per idle tunnel (5000)",
		"KiB per idle tunnel (100)", "KiB per idle tunnel (500)",
		"CPU s/GB (download)", "CPU s/GB (echo 64 KiB)",
		"9000 concurrent tunnels errors", "900 concurrent tunnels errors",
	}
	noteKey := map[string]string{
		"download MB/s": "download", "echo 64 KiB binary MB/s": "echo 64 KiB binary", "echo 1 KiB binary MB/s": "echo 1 KiB binary",
		"echo 64 KiB base64 MB/s": "echo 64 KiB base64", "echo 1 KiB base64 MB/s": "echo 1 KiB base64",
		"round trip p50 µs": "latency", "round trip p99 µs": "latency", "handshakes/s": "handshakes",
		"KiB per idle tunnel (1000)": "KiB per idle tunnel (1000)", "KiB per idle tunnel (5000)": "KiB per idle tunnel (5000)",
		"KiB per idle tunnel (100)": "KiB per idle tunnel (100)", "KiB per idle tunnel (500)": "KiB per idle tunnel (500)",
		"9000 concurrent tunnels errors": "9000 concurrent tunnels", "900 concurrent tunnels errors": "900 concurrent tunnels",
	}
	var sb strings.Builder
	sb.WriteString("| metric (median of rounds; CPU: total over rounds) |")
	for _, r := range relays {
		sb.WriteString(" " + r.name + " |")
	}
	sb.WriteString("\n|---|")
	for range relays {
		sb.WriteString("---:|")
	}
	sb.WriteString("\n")
	for _, m := range metrics {
		any := false
		row := "| " + m + " |"
		for _, r := range relays {
			cell := ""
			v := b.res[r.name][m]
			if strings.HasPrefix(m, "CPU") && len(b.res[r.name]["cpu "+m]) > 0 {
				v = []float64{sum(b.res[r.name]["cpu "+m]) / sum(b.res[r.name]["gb "+m])}
			}
			if len(v) > 0 {
				any = true
				x := median(v)
				switch {
				case x >= 100:
					cell = fmt.Sprintf("%.0f", x)
				case x >= 10:
					cell = fmt.Sprintf("%.1f", x)
				default:
					cell = fmt.Sprintf("%.2f", x)
				}
			}
			if n := b.notes[r.name][noteKey[m]]; n != "" {
				any = true
				if cell != "" {
					cell += " "
				}
				cell += "(" + shorten(n) + ")"
			}
			if cell == "" {
				cell = "n/a"
			}
			row += " " + cell + " |"
		}
		if any {
			sb.WriteString(row + "\n")
		}
	}
	fmt.Print(sb.String())
	b.printRatios(relays)
	fmt.Printf("\nLoopback, %d rounds interleaved; %s; every byte checked.\n", b.roundsFlag(), hostInfo())
}

// printRatios compares each relay with raw TCP and Python websockify on the
// project's goals.
func (b *bench) printRatios(relays []*relay) {
	get := func(name, metric string) (float64, bool) {
		v := b.res[name][metric]
		if len(v) == 0 {
			return 0, false
		}
		return median(v), true
	}
	fmt.Println()
	for _, r := range relays {
		if r.name == "raw TCP" || r.tree {
			continue
		}
		var parts []string
		for _, m := range []string{"download MB/s", "echo 64 KiB binary MB/s"} {
			if x, ok := get(r.name, m); ok {
				if raw, ok := get("raw TCP", m); ok && raw > 0 {
					parts = append(parts, fmt.Sprintf("%s %.2fx raw TCP", strings.TrimSuffix(m, " MB/s"), x/raw))
				}
			}
		}
		if x, ok := get(r.name, "round trip p50 µs"); ok {
			if raw, ok := get("raw TCP", "round trip p50 µs"); ok {
				parts = append(parts, fmt.Sprintf("p50 raw TCP %+.0f µs", x-raw))
			}
		}
		for _, m := range []string{"echo 1 KiB binary MB/s", "handshakes/s"} {
			if x, ok := get(r.name, m); ok {
				if py, ok := get("Python websockify", m); ok && py > 0 {
					parts = append(parts, fmt.Sprintf("%s %.1fx Python", strings.TrimSuffix(m, " MB/s"), x/py))
				}
			}
		}
		if len(parts) > 0 {
			fmt.Printf("- %s: %s\n", r.name, strings.Join(parts, "; "))
		}
	}
}

func shorten(s string) string {
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 90 {
		s = s[:90] + "..."
	}
	return s
}

func hostInfo() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	model := ""
	cores := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "model name") && model == "" {
			_, model, _ = strings.Cut(line, ": ")
		}
		if strings.HasPrefix(line, "processor") {
			cores++
		}
	}
	return fmt.Sprintf("%d cores, %s", cores, model)
}
