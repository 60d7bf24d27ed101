package test

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
)

// Differential tests of Debian's OpenResty libraries (lua-nginx-*), run
// unchanged on nginx + lua (the oracle) and on ngxsockify against real
// services on loopback: testdata/lualibs/*.case use the Lua case format
// (lua_test.go) with these placeholders, each service started only for the
// cases that name it:
//
//	{{REDIS}}      redis-server's port (Debian's redis-server)
//	{{SENTINEL}}   a Redis Sentinel (redis-server --sentinel) watching it
//	               as "mymaster"
//	{{MEMCACHED}}  memcached's port (Debian's memcached)
//	{{DNS}}        the port of dnsServer (below), UDP and TCP
//	{{WS}}         the port of a WebSocket echo server (gorilla)
//	{{CLOSED}}     a port nothing listens on
//	{{LIBS}}       testdata/lualibs/lib: shims mapping OpenResty's module
//	               names (resty.redis) to Debian's (nginx.redis), so that
//	               hooks written for OpenResty load on Debian's nginx too
//	{{HOOKS}}      a directory holding the corpus hooks of corpusHooks,
//	               with the services' addresses put in
//
// Both servers share each service, so cases keep their keys apart with
// ngx.var.server_port.

const lualibsDir = "testdata/lualibs"

// lualibServices starts each service once per test, on first use (on the
// test's goroutine).
type lualibServices struct {
	t    *testing.T
	port map[string]string
}

func (s *lualibServices) get(name string) string {
	if p, ok := s.port[name]; ok {
		return p
	}
	var p int
	switch name {
	case "REDIS":
		p = startRedis(s.t)
	case "SENTINEL":
		redis, _ := strconv.Atoi(s.get("REDIS"))
		p = startSentinel(s.t, redis)
	case "MEMCACHED":
		p = startMemcached(s.t)
	case "DNS":
		p = startDNSServer(s.t)
	case "WS":
		p = startWSEcho(s.t)
	case "CLOSED":
		p = freePort(s.t)
	}
	s.port[name] = strconv.Itoa(p)
	return s.port[name]
}

// expand replaces the placeholders text uses, starting their services.
func (s *lualibServices) expand(text string) string {
	if strings.Contains(text, "{{HOOKS}}") {
		text = strings.ReplaceAll(text, "{{HOOKS}}", s.hooks())
	}
	for _, name := range []string{"REDIS", "SENTINEL", "MEMCACHED", "DNS", "WS", "CLOSED"} {
		if strings.Contains(text, "{{"+name+"}}") {
			text = strings.ReplaceAll(text, "{{"+name+"}}", s.get(name))
		}
	}
	libs, _ := filepath.Abs(filepath.Join(lualibsDir, "lib"))
	return strings.ReplaceAll(text, "{{LIBS}}", libs)
}

// corpusHooks are the corpus hooks the cases run, each written to {{HOOKS}}
// under its name with the replacements applied (old, new, ...; new may
// name a service). The hooks are otherwise unchanged.
var corpusHooks = []struct {
	name, file string
	repl       []string
}{
	// Its Redis address is hard-coded (the environment lookups are
	// commented out): point it at the test's Redis, or at a closed port.
	{"ulv-firewall.lua", "c/ulv-firewall.lua", []string{"'10.1.0.2'", "'127.0.0.1'", "= 6379", "= {{REDIS}}"}},
	{"ulv-firewall-down.lua", "c/ulv-firewall.lua", []string{"'10.1.0.2'", "'127.0.0.1'", "= 6379", "= {{CLOSED}}"}},
	{"skylothar-jwt-redis-kid.lua", "c/skylothar-jwt-redis-kid.lua", nil},
}

// hooks writes corpusHooks once and returns their directory.
func (s *lualibServices) hooks() string {
	if d, ok := s.port["HOOKS"]; ok {
		return d
	}
	dir := s.t.TempDir()
	for _, h := range corpusHooks {
		data, err := os.ReadFile(filepath.Join(corpusDir, h.file))
		if err != nil {
			s.t.Skipf("the corpus is not here: %v", err)
		}
		text := string(data)
		for i := 0; i+1 < len(h.repl); i += 2 {
			if !strings.Contains(text, h.repl[i]) {
				s.t.Fatalf("%s no longer contains %q", h.file, h.repl[i])
			}
			text = strings.Replace(text, h.repl[i], s.expand(h.repl[i+1]), 1)
		}
		if err := os.WriteFile(filepath.Join(dir, h.name), []byte(text), 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	s.port["HOOKS"] = dir
	return dir
}

// corpusDir holds the real-world configs and hooks (beside the repository,
// in CI too).
const corpusDir = "../../shared/corpus"

// requireDebianLua skips the test when Debian's package installing file is
// missing (fails it under CI=true, where make test installs them).
func requireDebianLua(t *testing.T, pkg, file string) {
	t.Helper()
	if _, err := os.Stat(file); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed and CI=true", pkg)
		}
		t.Skipf("%s is not installed (%s)", pkg, file)
	}
}

// lualibPackages maps a case name's prefix to the Debian package it tests
// and a file that package installs.
var lualibPackages = map[string][2]string{
	"redis_connector": {"lua-nginx-redis-connector", "/usr/share/lua/5.1/nginx/redis/connector.lua"},
	"memcached":       {"lua-nginx-memcached", "/usr/share/lua/5.1/nginx/memcached.lua"},
	"dns":             {"lua-nginx-dns", "/usr/share/lua/5.1/nginx/dns/resolver.lua"},
	"cookie":          {"lua-nginx-cookie", "/usr/share/lua/5.1/nginx/cookie.lua"},
	"websocket":       {"lua-nginx-websocket", "/usr/share/lua/5.1/nginx/websocket/client.lua"},
	"corpus":          {"lua-nginx-redis", "/usr/share/lua/5.1/nginx/redis.lua"},
}

// TestLuaLibs runs testdata/lualibs/*.case on nginx + lua and ngxsockify.
func TestLuaLibs(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	paths, _ := filepath.Glob(filepath.Join(lualibsDir, "*.case"))
	if len(paths) == 0 {
		t.Fatal("no cases in " + lualibsDir)
	}
	// Services start here, on the test's goroutine, and serve every case.
	svc := &lualibServices{t: t, port: map[string]string{}}
	texts := map[string]string{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		texts[p] = svc.expand(string(data))
	}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".case")
		t.Run(name, func(t *testing.T) {
			for prefix, pkg := range lualibPackages {
				if strings.HasPrefix(name, prefix) {
					requireDebianLua(t, pkg[0], pkg[1])
				}
			}
			tmp := filepath.Join(t.TempDir(), filepath.Base(p))
			if err := os.WriteFile(tmp, []byte(texts[p]), 0o644); err != nil {
				t.Fatal(err)
			}
			rc, err := parseRoutingCase(tmp)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			c := luaCase{routingCase: rc}
			for _, l := range strings.Split(texts[p], "\n") {
				if rest, ok := strings.CutPrefix(l, "#headers "); ok {
					c.headers = append(c.headers, strings.Fields(rest)...)
				}
			}
			a := startLua(t, "nginx", c)
			b := startLua(t, "ngxsockify", c)
			compareLua(t, c, a, b, true)
			if t.Failed() {
				t.Logf("ngxsockify's error.log ends:\n%s", tail(b.ErrorLog(), 20))
			}
		})
	}
}

// TestLuaLibsKafka: lua-nginx-kafka needs a Kafka broker, and none runs
// here (Debian 12 has no Kafka package).
func TestLuaLibsKafka(t *testing.T) {
	t.Skip("lua-nginx-kafka: no Kafka broker is available on this machine (Debian packages none)")
}

// TestLuaLibsWebSocketServer runs Debian's resty.websocket.server (as
// nginx.websocket.server) as an echo content handler on both servers and
// talks to it with gorilla: text, binary, a 70,000-byte frame, ping/pong
// and the close handshake.
func TestLuaLibsWebSocketServer(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	pkg := lualibPackages["websocket"]
	requireDebianLua(t, pkg[0], "/usr/share/lua/5.1/nginx/websocket/server.lua")
	conf := `lua_package_path "/usr/share/lua/5.1/?.lua;;";
server {
    listen 127.0.0.1:{{PORT}};
    location /ws {
        content_by_lua_block {
            local server = require "nginx.websocket.server"
            local wb, err = server:new{ timeout = 5000, max_payload_len = 100000 }
            if not wb then
                ngx.log(ngx.ERR, "failed to new websocket: ", err)
                return ngx.exit(444)
            end
            while true do
                local data, typ, err = wb:recv_frame()
                if not data then
                    ngx.log(ngx.ERR, "recv_frame: ", err)
                    return ngx.exit(444)
                end
                if typ == "close" then
                    wb:send_close(1000, "bye " .. tostring(err))
                    return
                elseif typ == "ping" then
                    wb:send_pong(data)
                elseif typ == "text" then
                    wb:send_text("echo " .. data)
                elseif typ == "binary" then
                    wb:send_binary(data)
                end
            end
        }
    }
}`
	got := map[string][]string{}
	var log string
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: conf})
		got[kind] = wsEchoSession(t, "ws://"+s.Addr+"/ws")
		if kind == "ngxsockify" {
			log = s.ErrorLog()
		}
	}
	if diff := cmp.Diff(got["nginx"], got["ngxsockify"]); diff != "" {
		t.Errorf("nginx and ngxsockify differ (-nginx +ngxsockify):\n%s\nngxsockify's error.log ends:\n%s", diff, tail(log, 20))
	}
}

// wsEchoSession runs the exchange of TestLuaLibsWebSocketServer and
// returns what the client saw, one line per step.
func wsEchoSession(t *testing.T, url string) []string {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return []string{"dial: " + strconv.Itoa(status)}
	}
	defer c.Close()
	var out []string
	pong := make(chan string, 1)
	c.SetPongHandler(func(s string) error { pong <- s; return nil })
	read := func() {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		typ, data, err := c.ReadMessage()
		if err != nil {
			out = append(out, "read: "+err.Error())
			return
		}
		if len(data) > 64 {
			data = append(data[:32:32], []byte("... "+strconv.Itoa(len(data)))...)
		}
		out = append(out, strconv.Itoa(typ)+" "+string(data))
	}
	c.WriteMessage(websocket.TextMessage, []byte("hello"))
	read()
	c.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2, 255})
	read()
	big := []byte(strings.Repeat("0123456789", 7000))
	c.WriteMessage(websocket.BinaryMessage, big)
	read()
	c.WriteControl(websocket.PingMessage, []byte("p1"), time.Now().Add(time.Second))
	c.WriteMessage(websocket.TextMessage, []byte("after ping"))
	read() // the pong arrives first and goes to the handler
	select {
	case p := <-pong:
		out = append(out, "pong "+p)
	default:
		out = append(out, "no pong")
	}
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "done"), time.Now().Add(time.Second))
	read()
	return out
}

// startMemcached runs Debian's memcached on a free loopback port for the
// test's lifetime.
func startMemcached(t *testing.T) int {
	t.Helper()
	bin := requireTool(t, "memcached")
	port := freePort(t)
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "16"}
	if os.Getuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitListening(t, port)
	return port
}

// startSentinel runs redis-server in Sentinel mode on a free port,
// monitoring the Redis on redisPort as "mymaster" (quorum 1).
func startSentinel(t *testing.T, redisPort int) int {
	t.Helper()
	bin := requireTool(t, "redis-server")
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "sentinel.conf") // Sentinel rewrites it
	text := fmt.Sprintf("port %d\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 %d 1\n", port, redisPort)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, conf, "--sentinel")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitListening(t, port)
	return port
}

// waitListening waits until something accepts on 127.0.0.1:port.
func waitListening(t *testing.T, port int) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("nothing listens on %s", addr)
}

// startWSEcho runs a WebSocket server on loopback: /echo sends every data
// message back with its type (gorilla answers pings with pongs), /close
// closes with 4000 "go away" after the first message.
func startWSEcho(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := websocket.Upgrader{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			typ, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			if r.URL.Path == "/close" {
				c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "go away"), time.Now().Add(time.Second))
				return
			}
			if err := c.WriteMessage(typ, data); err != nil {
				return
			}
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// dnsRecord is one answer of dnsServer.
type dnsRecord struct {
	typ   uint16
	ttl   uint32
	rdata []byte
}

const (
	dnsA     = 1
	dnsCNAME = 5
	dnsMX    = 15
	dnsTXT   = 16
	dnsAAAA  = 28
)

// dnsZone is what dnsServer answers. big.test has enough A records to
// overflow a 512-byte UDP answer: over UDP it answers truncated (TC, no
// records), and the resolver retries over TCP.
func dnsZone() map[string][]dnsRecord {
	a := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
	z := map[string][]dnsRecord{
		"a.test":     {{dnsA, 300, a("10.0.0.1")}, {dnsA, 300, a("10.0.0.2")}},
		"v6.test":    {{dnsAAAA, 60, a("2001:db8::1")}},
		"alias.test": {{dnsCNAME, 120, dnsName("a.test")}},
		"mx.test":    {{dnsMX, 3600, append([]byte{0, 10}, dnsName("mail.test")...)}},
		"txt.test":   {{dnsTXT, 30, append([]byte{5}, "hello"...)}},
	}
	for i := 1; i <= 40; i++ {
		z["big.test"] = append(z["big.test"], dnsRecord{dnsA, 10, a("10.1.0." + strconv.Itoa(i))})
	}
	return z
}

// dnsName encodes name as DNS labels.
func dnsName(name string) []byte {
	var b []byte
	for _, l := range strings.Split(name, ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

// dnsAnswer builds the reply to query q (nil if q is not a query it
// understands). udp limits the reply to 512 bytes by truncation.
func dnsAnswer(zone map[string][]dnsRecord, q []byte, udp bool) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		n := int(q[i])
		if i+1+n > len(q) {
			return nil
		}
		labels = append(labels, strings.ToLower(string(q[i+1:i+1+n])))
		i += 1 + n
	}
	if i+5 > len(q) {
		return nil
	}
	question := q[12 : i+5]
	qtype := binary.BigEndian.Uint16(q[i+1:])
	name := strings.Join(labels, ".")
	records, known := zone[name]
	var answers []dnsRecord
	for _, r := range records {
		if r.typ == qtype || r.typ == dnsCNAME {
			answers = append(answers, r)
		}
	}
	flags := uint16(0x8180) // QR, RD, RA
	if !known {
		flags |= 3 // NXDOMAIN
	}
	size := 12 + len(question)
	for _, r := range answers {
		size += 12 + len(r.rdata)
	}
	if udp && size > 512 {
		flags |= 0x0200 // TC
		answers = nil
	}
	out := binary.BigEndian.AppendUint16(nil, binary.BigEndian.Uint16(q))
	out = binary.BigEndian.AppendUint16(out, flags)
	out = binary.BigEndian.AppendUint16(out, 1)
	out = binary.BigEndian.AppendUint16(out, uint16(len(answers)))
	out = append(out, 0, 0, 0, 0)
	out = append(out, question...)
	for _, r := range answers {
		out = append(out, 0xc0, 12) // the question's name
		out = binary.BigEndian.AppendUint16(out, r.typ)
		out = binary.BigEndian.AppendUint16(out, 1)
		out = binary.BigEndian.AppendUint32(out, r.ttl)
		out = binary.BigEndian.AppendUint16(out, uint16(len(r.rdata)))
		out = append(out, r.rdata...)
	}
	return out
}

// startDNSServer answers dnsZone on 127.0.0.1, UDP and TCP on one port.
func startDNSServer(t *testing.T) int {
	t.Helper()
	zone := dnsZone()
	var (
		tl  net.Listener
		uc  net.PacketConn
		err error
	)
	for attempt := 0; attempt < 10; attempt++ {
		if tl, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if uc, err = net.ListenPacket("udp", tl.Addr().String()); err == nil {
			break
		}
		tl.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close(); uc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := uc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := dnsAnswer(zone, buf[:n], true); out != nil {
				uc.WriteTo(out, from)
			}
		}
	}()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					c.SetDeadline(time.Now().Add(10 * time.Second))
					var n [2]byte
					if _, err := io.ReadFull(c, n[:]); err != nil {
						return
					}
					q := make([]byte, binary.BigEndian.Uint16(n[:]))
					if _, err := io.ReadFull(c, q); err != nil {
						return
					}
					out := dnsAnswer(zone, q, false)
					if out == nil {
						return
					}
					c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(out))), out...))
				}
			}()
		}
	}()
	return tl.Addr().(*net.TCPAddr).Port
}

// TestLuaSSLCertificate: ssl_certificate_by_lua_block with ngx.ssl, on
// nginx + lua (lua-resty-core's ngx.ssl) and ngxsockify: the hook reads
// the handshake (SNI, protocol, client address), swaps the certificate by
// the DER and the parsed-PEM routes (with an intermediate), sleeps, fails
// the handshake with ngx.exit(ngx.ERROR), an error or cleared
// certificates, and reports bad PEM as lua-resty-core does.
func TestLuaSSLCertificate(t *testing.T) {
	requireNgxsockify(t)
	pki := newTestPKI(t)
	conf := `
    lua_shared_dict seen 1m;
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name localhost;
        ssl_certificate {{PKI}}/localhost.crt;
        ssl_certificate_key {{PKI}}/localhost.key;
        # nginx 1.22's default is TLSv1 TLSv1.1 TLSv1.2
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate_by_lua_block {
            local ssl = require "ngx.ssl"
            local name, err = ssl.server_name()
            local addr, typ = ssl.raw_client_addr()
            ngx.shared.seen:set("last", table.concat({ tostring(name), tostring(err), ssl.get_tls1_version_str(),
                string.format("%x", ssl.get_tls1_version()), typ, #addr, addr:byte(1), ngx.get_phase() }, " "))
            if name == "alice.test" then
                assert(ssl.clear_certs())
                assert(ssl.set_der_cert(assert(ssl.cert_pem_to_der([[{{PEM alice.crt}}]]))))
                assert(ssl.set_der_priv_key(assert(ssl.priv_key_pem_to_der([[{{PEM alice.key}}]]))))
            elseif name == "bob.test" then
                ssl.clear_certs()
                assert(ssl.set_cert(assert(ssl.parse_pem_cert([[{{PEM bob.crt}}{{PEM int.crt}}]]))))
                assert(ssl.set_priv_key(assert(ssl.parse_pem_priv_key([[{{PEM bob.key}}]]))))
            elseif name == "rsa.test" then
                ngx.sleep(0.01)
                ssl.clear_certs()
                ssl.set_der_cert(ssl.cert_pem_to_der([[{{PEM rsa.crt}}]]))
                ssl.set_der_priv_key(ssl.priv_key_pem_to_der([[{{PEM rsa.key}}]]))
            elseif name == "cleared.test" then
                ssl.clear_certs()
            elseif name == "exit.test" then
                ngx.exit(ngx.ERROR)
            elseif name == "error.test" then
                error("bad bad bad")
            elseif name == "capture.test" then
                ngx.location.capture("/")
            elseif name == "bad.test" then
                local r = {}
                for _, f in ipairs({ "cert_pem_to_der", "priv_key_pem_to_der", "parse_pem_cert", "parse_pem_priv_key" }) do
                    local v, e = ssl[f]("junk")
                    r[#r + 1] = f .. "=" .. tostring(v) .. "," .. tostring(e)
                end
                local v, e = ssl.set_der_cert("junk")
                r[#r + 1] = "set_der_cert=" .. tostring(v) .. "," .. tostring(e)
                v, e = ssl.set_der_priv_key("junk")
                r[#r + 1] = "set_der_priv_key=" .. tostring(v) .. "," .. tostring(e)
                ngx.shared.seen:set("bad", table.concat(r, " "))
            end
        }
        location / { content_by_lua_block { ngx.say(ngx.shared.seen:get("last")) } }
        location /bad { content_by_lua_block { ngx.say(ngx.shared.seen:get("bad")) } }
        location /info {
            content_by_lua_block {
                local ssl = require "ngx.ssl"
                local addr, typ = ssl.raw_client_addr()
                ngx.say(tostring(ssl.server_name()), " ", ssl.get_tls1_version_str(), " ", #addr, " ", typ, " ",
                    ssl.server_port() == tonumber(ngx.var.server_port), " ", select(2, ssl.clear_certs()))
            }
        }
        location /outside {
            content_by_lua_block {
                local ssl = require "ngx.ssl"
                ngx.say(ssl.TLS1_2_VERSION, " ", ssl.TLS1_3_VERSION)
            }
        }
    }
`
	conf = regexp.MustCompile(`\{\{PEM ([a-z.]+)\}\}`).ReplaceAllStringFunc(conf, func(m string) string {
		data, err := os.ReadFile(pki.path(strings.TrimSuffix(strings.TrimPrefix(m, "{{PEM "), "}}")))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	})
	badPEM := "cert_pem_to_der=nil,PEM_read_bio_X509_AUX() failed priv_key_pem_to_der=nil,PEM_read_bio_PrivateKey() failed " +
		"parse_pem_cert=nil,PEM_read_bio_X509_AUX() failed parse_pem_priv_key=nil,PEM_read_bio_PrivateKey() failed " +
		"set_der_cert=nil,d2i_X509_bio() failed set_der_priv_key=nil,d2i_PrivateKey_bio() failed"
	runSSLCase(t, pki, conf, []sslRequest{
		{name: "no SNI", want: "200 nil nil TLSv1.3 304 inet 4 127 ssl_cert\n", peerName: "localhost"},
		{name: "SNI, default certificate", sni: "other.test", want: "200 other.test nil TLSv1.3 304 inet 4 127 ssl_cert\n", peerName: "localhost"},
		{name: "TLS 1.2", sni: "other.test", maxVer: tls.VersionTLS12, want: "200 other.test nil TLSv1.2 303 inet 4 127 ssl_cert\n", peerName: "localhost"},
		{name: "DER route", sni: "alice.test", want: "200 alice.test nil TLSv1.3 304 inet 4 127 ssl_cert\n", peerName: "alice"},
		{name: "parsed PEM with a chain", sni: "bob.test", maxVer: tls.VersionTLS12, want: "200 bob.test nil TLSv1.2 303 inet 4 127 ssl_cert\n", peerName: "bob"},
		{name: "after ngx.sleep", sni: "rsa.test", want: "200 rsa.test nil TLSv1.3 304 inet 4 127 ssl_cert\n", peerName: "rsa"},
		{name: "cleared", sni: "cleared.test", want: "handshake failed"},
		{name: "cleared, TLS 1.2", sni: "cleared.test", maxVer: tls.VersionTLS12, want: "handshake failed"},
		{name: "ngx.exit(ngx.ERROR)", sni: "exit.test", want: "handshake failed"},
		{name: "error", sni: "error.test", want: "handshake failed"},
		{name: "subrequest", sni: "capture.test", want: "handshake failed"},
		{name: "bad PEM", sni: "bad.test", path: "/bad", want: "200 " + badPEM + "\n"},
		{name: "constants", path: "/outside", want: "200 771 772\n"},
		{name: "in a request", sni: "info.test", path: "/info", want: "200 info.test TLSv1.3 4 inet true \n"},
		{name: "in a request, no SNI", maxVer: tls.VersionTLS12, path: "/info", want: "200 nil TLSv1.2 4 inet true \n"},
	}, "SSL_do_handshake() failed (SSL: error:0A000179:SSL routines::cert cb error) while SSL handshaking, client: 127.0.0.1, server: 127.0.0.1:",
		"SSL_do_handshake() failed (SSL: error:0A000076:SSL routines::no suitable signature algorithm) while SSL handshaking, client: 127.0.0.1, server: 127.0.0.1:",
		"SSL_do_handshake() failed (SSL: error:0A0000C1:SSL routines::no shared cipher) while SSL handshaking, client: 127.0.0.1, server: 127.0.0.1:",
		// the block's line: after the harness's load_module lines
		fmt.Sprintf("lua entry thread aborted: runtime error: ssl_certificate_by_lua(nginx.conf:%d):", 14+strings.Count(luaModules, "\n")),
		": bad bad bad",
		": API disabled in the context of ssl_certificate_by_lua*")
}

// TestLuaLibsBench measures, for the README (LUALIBS_BENCH=1; not a timed
// test): WebSocket handshakes per second through ngxsockify with no hook,
// with a trivial access_by_lua hook, and with a hook that does one
// resty.redis GET (pooled with set_keepalive); and resty.redis pipelining
// 1,000 GETs per request on nginx + lua and on ngxsockify. Rounds
// interleave the variants; the machine is shared, so compare ratios.
func TestLuaLibsBench(t *testing.T) {
	if os.Getenv("LUALIBS_BENCH") == "" {
		t.Skip("set LUALIBS_BENCH=1 to run the benchmarks")
	}
	requireNgxsockify(t)
	requireDebianLua(t, "lua-nginx-redis", "/usr/share/lua/5.1/nginx/redis.lua")
	redis := startRedis(t)
	target := startHoldTarget(t)
	dur := 5 * time.Second
	if d, err := time.ParseDuration(os.Getenv("LUALIBS_BENCH_TIME")); err == nil {
		dur = d
	}
	rounds, conc := 3, 8
	conf := fmt.Sprintf(`lua_package_path "/usr/share/lua/5.1/?.lua;;";
access_log off;
server {
    listen 127.0.0.1:{{PORT}};
    location /plain { websockify_pass 127.0.0.1:%[1]d; }
    location /hook {
        access_by_lua_block { if ngx.var.arg_token ~= "abc" then return ngx.exit(403) end }
        websockify_pass 127.0.0.1:%[1]d;
    }
    location /redis {
        access_by_lua_block {
            local red = require("nginx.redis"):new()
            red:set_timeout(1000)
            local ok, err = red:connect("127.0.0.1", %[2]d)
            if not ok then return ngx.exit(500) end
            local v = red:get("token:" .. (ngx.var.arg_token or ""))
            red:set_keepalive(10000, 64)
            if v ~= "1" then return ngx.exit(403) end
        }
        websockify_pass 127.0.0.1:%[1]d;
    }
    location /pipeline {
        content_by_lua_block {
            local red = require("nginx.redis"):new()
            red:set_timeout(5000)
            assert(red:connect("127.0.0.1", %[2]d))
            red:init_pipeline(1000)
            for i = 1, 1000 do red:get("token:abc") end
            local res = assert(red:commit_pipeline())
            red:set_keepalive(10000, 64)
            ngx.say(#res, " ", res[1000])
        }
    }
}`, target, redis)
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(redis)))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "SET token:abc 1\r\n")
	c.Close()
	s := startServer(t, "ngxsockify", ServerOptions{HTTP: conf})
	for round := 0; round < rounds; round++ {
		line := fmt.Sprintf("round %d:", round+1)
		order := []string{"plain", "hook", "redis"}
		for i := range order {
			loc := order[(i+round)%len(order)]
			cpu0 := procCPU(t, s.cmd.Process.Pid)
			n, failed := handshakeLoad(s.Addr, "/"+loc+"?token=abc", conc, dur)
			cpu := procCPU(t, s.cmd.Process.Pid) - cpu0
			line += fmt.Sprintf(" %s %.0f/s (%.0f µs CPU each, %d failed);", loc, float64(n)/dur.Seconds(), float64(cpu.Microseconds())/float64(max(n, 1)), failed)
		}
		t.Log(line)
	}
	// Pipelining through the binaries, one client after the other.
	servers := []*Server{s}
	if _, err := os.Stat(nginxPath); err == nil {
		servers = append(servers, startServer(t, "nginx", ServerOptions{HTTP: strings.ReplaceAll(conf, "websockify_pass ", "proxy_pass http://")}))
	}
	for round := 0; round < rounds; round++ {
		line := fmt.Sprintf("pipeline round %d:", round+1)
		for _, srv := range servers {
			n := 0
			for start := time.Now(); time.Since(start) < dur; n++ {
				resp, err := rawRequest(srv.Addr, "GET /pipeline HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 10*time.Second)
				if err != nil || resp.Body != "1000 1\n" {
					t.Fatalf("%s: %v %+v", srv.Kind, err, resp)
				}
			}
			line += fmt.Sprintf(" %s %.0f GETs/s;", srv.Kind, float64(n)*1000/dur.Seconds())
		}
		t.Log(line)
	}
}

// handshakeLoad opens and closes WebSocket connections to addr+path from
// conc goroutines for d and counts the successful handshakes.
func handshakeLoad(addr, path string, conc int, d time.Duration) (ok, failed int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"binary"}}
			n, f := 0, 0
			for time.Now().Before(stop) {
				c, _, err := dialer.Dial("ws://"+addr+path, nil)
				if err != nil {
					f++
					continue
				}
				c.Close()
				n++
			}
			mu.Lock()
			ok, failed = ok+n, failed+f
			mu.Unlock()
		}()
	}
	wg.Wait()
	return ok, failed
}

// startHoldTarget is a TCP target that holds each connection until the
// other side closes it.
func startHoldTarget(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// procCPU is the user+system CPU time process pid has used.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

// TestLuaSSLCertificateServers: which server's ssl_certificate_by_lua*
// runs: the http level's is inherited and a server's own replaces it; a
// server named by SNI without a certificate (and so without a hook: nginx
// refuses a hook there) fails the handshake, as nginx's hook finds no code
// in that server.
func TestLuaSSLCertificateServers(t *testing.T) {
	requireNgxsockify(t)
	pki := newTestPKI(t)
	show := `location / { content_by_lua_block { ngx.say(ngx.shared.seen:get("hook")) ngx.shared.seen:delete("hook") } }`
	inherited := `
    lua_shared_dict seen 1m;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate_by_lua_block { ngx.shared.seen:set("hook", "http level for " .. tostring(require("ngx.ssl").server_name())) }
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name localhost;
        ssl_certificate {{PKI}}/localhost.crt;
        ssl_certificate_key {{PKI}}/localhost.key;
        ` + show + `
    }
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name own.test;
        ssl_certificate {{PKI}}/rsa.crt;
        ssl_certificate_key {{PKI}}/rsa.key;
        ssl_certificate_by_lua_block { ngx.shared.seen:set("hook", "own.test's") }
        ` + show + `
    }
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name other.test;
        ssl_certificate {{PKI}}/rsa.crt;
        ssl_certificate_key {{PKI}}/rsa.key;
        ` + show + `
    }
`
	runSSLCase(t, pki, inherited, []sslRequest{
		{name: "default server", want: "200 http level for nil\n", peerName: "localhost"},
		{name: "own hook", sni: "own.test", host: "own.test", want: "200 own.test's\n", peerName: "rsa"},
		{name: "inherited hook", sni: "other.test", host: "other.test", want: "200 http level for other.test\n", peerName: "rsa"},
	})
	nocert := `
    lua_shared_dict seen 1m;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name localhost;
        ssl_certificate {{PKI}}/localhost.crt;
        ssl_certificate_key {{PKI}}/localhost.key;
        ssl_certificate_by_lua_block { ngx.shared.seen:set("hook", "default's for " .. tostring(require("ngx.ssl").server_name())) }
        ` + show + `
    }
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name nocert.test;
        ` + show + `
    }
`
	runSSLCase(t, pki, nocert, []sslRequest{
		{name: "default server", want: "200 default's for nil\n", peerName: "localhost"},
		{name: "server without a certificate", sni: "nocert.test", host: "nocert.test", want: "handshake failed"},
		{name: "unknown name", sni: "unknown.test", want: "200 default's for unknown.test\n", peerName: "localhost"},
	}, "[alert]", "no ssl_certificate_by_lua* defined in server nocert.test while loading SSL certificate by lua, client: 127.0.0.1, server: 127.0.0.1:")
}
