package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"

	"ngxsockify/proxy/websockify"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		value   string
		addr    string
		resolve bool
		err     string
	}{
		{"127.0.0.1:5901", "127.0.0.1:5901", false, ""},
		{"127.0.0.1", "127.0.0.1:5900", false, ""},
		{"[::1]:5902", "[::1]:5902", false, ""},
		{"[::1]", "[::1]:5900", false, ""},
		{"unix:/run/vnc.sock", "unix:/run/vnc.sock", false, ""},
		{"vnc.example:5901", "vnc.example:5901", true, ""},
		{"localhost", "localhost:5900", true, ""},
		{"", "", false, `no host in upstream ""`},
		{":5900", "", false, `no host in upstream ":5900"`},
		{"127.0.0.1:x", "", false, `invalid port in upstream "127.0.0.1:x"`},
		{"127.0.0.1:", "", false, `invalid port in upstream "127.0.0.1:"`},
		{"127.0.0.1:0", "", false, `invalid port in upstream "127.0.0.1:0"`},
		{"127.0.0.1:65536", "", false, `invalid port in upstream "127.0.0.1:65536"`},
		{"127.0.0.1:-1", "", false, `invalid port in upstream "127.0.0.1:-1"`},
		{"::1:5900", "", false, `invalid port in upstream "::1:5900"`},
		{"[::1]x", "", false, `invalid host in upstream "[::1]x"`},
		{"[zz]:1", "", false, `invalid IPv6 address in upstream "[zz]:1"`},
		{"unix:", "", false, `no path in the unix domain socket "unix:"`},
		{"h:1/path", "", false, `invalid host in upstream "h:1/path"`},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			s, err := ParseTarget(tc.value)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Addr != tc.addr || s.NeedsResolve() != tc.resolve {
				t.Errorf("got %q resolve=%v", s.Addr, s.NeedsResolve())
			}
			if s.Weight != 1 || s.MaxFails != 1 || s.FailTimeout != 10*time.Second {
				t.Errorf("defaults %+v", s)
			}
		})
	}
}

func names(u *Upstream, n int) string {
	var out []string
	for i := 0; i < n; i++ {
		p := u.pick(&Tries{})
		if p == nil {
			out = append(out, "-")
			continue
		}
		out = append(out, p.Addr)
	}
	return strings.Join(out, " ")
}

func TestSmoothWeightedRoundRobin(t *testing.T) {
	u := New("vnc", []Server{{Addr: "a", Weight: 5}, {Addr: "b"}, {Addr: "c"}})
	if diff := cmp.Diff("a a b a c a a a a b a c a a", names(u, 14)); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestFailuresAndBackup(t *testing.T) {
	now := time.Unix(1000, 0)
	u := New("vnc", []Server{
		{Addr: "a", MaxFails: 2, FailTimeout: 10 * time.Second},
		{Addr: "b", MaxFails: 1, FailTimeout: 10 * time.Second},
		{Addr: "c", Down: true},
		{Addr: "z", Backup: true},
	})
	u.now = func() time.Time { return now }
	peer := func(addr string) *peer {
		for _, p := range append(u.primary, u.backup...) {
			if p.Addr == addr {
				return p
			}
		}
		t.Fatalf("no peer %s", addr)
		return nil
	}
	if got := names(u, 4); got != "a b a b" {
		t.Fatalf("start: %s", got)
	}
	u.report(peer("b"), false) // b: 1 fail of 1 -> out
	if got := names(u, 3); got != "a a a" {
		t.Fatalf("b out: %s", got)
	}
	u.report(peer("a"), false)
	if got := names(u, 1); got != "a" {
		t.Fatalf("a after one fail of 2: %s", got)
	}
	u.report(peer("a"), false) // a out too: backup takes over
	if got := names(u, 2); got != "z z" {
		t.Fatalf("all primaries out: %s", got)
	}
	// fail_timeout passed: each server gets one probe (nginx), and a
	// success brings it back.
	now = now.Add(11 * time.Second)
	if got := names(u, 3); got != "a b z" {
		t.Fatalf("probes after fail_timeout: %s", got)
	}
	u.report(peer("a"), true)
	u.report(peer("b"), true)
	got := names(u, 6)
	if strings.Count(got, "a") != 3 || strings.Count(got, "b") != 3 {
		t.Fatalf("after successful probes: %s", got)
	}
}

func TestSingleServerNeverMarkedDown(t *testing.T) {
	u := New("", []Server{{Addr: "a", MaxFails: 1}})
	u.report(u.primary[0], false)
	u.report(u.primary[0], false)
	if got := names(u, 2); got != "a a" {
		t.Errorf("got %s", got)
	}
}

func listenEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func refusedAddr(t *testing.T) string {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// stuckAddr is a loopback listener with a full accept queue: connects hang.
func stuckAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	syscall.Listen(fd, 0)
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

func TestDialNextServer(t *testing.T) {
	good := listenEcho(t)
	bad := refusedAddr(t)
	stuck := stuckAddr(t)
	u := New("vnc", []Server{{Addr: bad, MaxFails: 1}, {Addr: stuck, MaxFails: 1}, {Addr: good, MaxFails: 1}})
	for i := 0; i < 3; i++ {
		c, addr, err := u.Dial(context.Background(), 200*time.Millisecond)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if addr != good {
			t.Errorf("dial %d connected %s", i, addr)
		}
		c.Write([]byte("hi"))
		buf := make([]byte, 2)
		io.ReadFull(c, buf)
		if string(buf) != "hi" {
			t.Errorf("echo %q", buf)
		}
		c.Close()
	}
}

func TestDialAllFail(t *testing.T) {
	bad := refusedAddr(t)
	stuck := stuckAddr(t)
	t.Run("refused", func(t *testing.T) {
		_, addr, err := New("", []Server{{Addr: bad}}).Dial(context.Background(), time.Second)
		if err == nil || err.Error() != "connect() failed (111: Connection refused) while connecting to upstream" || addr != bad {
			t.Errorf("%v %s", err, addr)
		}
		if errors.As(err, new(*DialError)) && err.(*DialError).Timeout() {
			t.Error("refusal is not a timeout")
		}
	})
	t.Run("timeout", func(t *testing.T) {
		_, _, err := New("", []Server{{Addr: stuck}}).Dial(context.Background(), 200*time.Millisecond)
		var de *DialError
		if !errors.As(err, &de) || !de.Timeout() ||
			err.Error() != "upstream timed out (110: Connection timed out) while connecting to upstream" {
			t.Errorf("%v", err)
		}
	})
	t.Run("no live upstreams", func(t *testing.T) {
		u := New("", []Server{{Addr: bad, MaxFails: 1}, {Addr: bad + "0", Down: true}, {Addr: refusedAddr(t), MaxFails: 1}})
		u.Dial(context.Background(), time.Second)
		_, _, err := u.Dial(context.Background(), time.Second)
		if !errors.Is(err, ErrNoLiveUpstreams) {
			t.Errorf("%v", err)
		}
	})
}

func TestTargetUnix(t *testing.T) {
	path := t.TempDir() + "/vnc.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("RFB"))
			c.Close()
		}
	}()
	d, err := Target("unix:"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, addr, err := d.Dial(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := io.ReadAll(c)
	if string(b) != "RFB" || addr != "unix:"+path {
		t.Errorf("%q %q", b, addr)
	}
}

func TestTargetNames(t *testing.T) {
	echoAddr := listenEcho(t)
	_, port, _ := net.SplitHostPort(echoAddr)
	t.Run("no resolver", func(t *testing.T) {
		d, err := Target("vnc.test:"+port, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = d.Dial(context.Background(), time.Second)
		if err == nil || err.Error() != "no resolver defined to resolve vnc.test" {
			t.Errorf("%v", err)
		}
	})
	t.Run("resolver", func(t *testing.T) {
		dns, _ := fakeDNS(t, map[string][4]byte{"vnc.test.": {127, 0, 0, 1}})
		res, err := NewResolver([]string{dns}, ResolverOptions{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		d, _ := Target("vnc.test:"+port, res)
		c, addr, err := d.Dial(context.Background(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if addr != echoAddr {
			t.Errorf("addr %s", addr)
		}
		d, _ = Target("other.test:"+port, res)
		if _, _, err := d.Dial(context.Background(), time.Second); err == nil ||
			err.Error() != "other.test could not be resolved (3: Host not found)" {
			t.Errorf("%v", err)
		}
	})
}

// TestResolverValid: with valid= an answer is reused until it expires;
// without, for its TTL (60 s here), as nginx keeps it.
func TestResolverValid(t *testing.T) {
	dns, queries := fakeDNS(t, map[string][4]byte{"vnc.test.": {127, 0, 0, 1}})
	lookups := func(o ResolverOptions, n int) int64 {
		res, err := NewResolver([]string{dns}, o)
		if err != nil {
			t.Fatal(err)
		}
		before := queries.Load()
		for i := 0; i < n; i++ {
			addrs, err := res.LookupHost(context.Background(), "vnc.test")
			if err != nil || len(addrs) != 1 || addrs[0] != "127.0.0.1" {
				t.Fatalf("lookup %d: %v %v", i, addrs, err)
			}
		}
		return queries.Load() - before
	}
	if q := lookups(ResolverOptions{Timeout: time.Second}, 3); q != 1 {
		t.Errorf("no valid=: %d A queries for 3 lookups, want 1 (the TTL is 60 s)", q)
	}
	if q := lookups(ResolverOptions{Timeout: time.Second, Valid: time.Minute}, 3); q != 1 {
		t.Errorf("valid=1m: %d A queries for 3 lookups, want 1", q)
	}
	res, _ := NewResolver([]string{dns}, ResolverOptions{Timeout: time.Second, Valid: 50 * time.Millisecond})
	res.LookupHost(context.Background(), "vnc.test")
	time.Sleep(80 * time.Millisecond)
	before := queries.Load()
	res.LookupHost(context.Background(), "vnc.test")
	if queries.Load() == before {
		t.Error("valid=50ms: an expired answer was reused")
	}
}

func TestResolveServers(t *testing.T) {
	got, err := ResolveServers(context.Background(), []Server{{Addr: "localhost:5901", Weight: 3}, {Addr: "10.0.0.1:1"}})
	if err != nil {
		t.Skipf("no localhost resolution here: %v", err)
	}
	if len(got) < 2 || got[len(got)-1].Addr != "10.0.0.1:1" {
		t.Fatalf("%+v", got)
	}
	for _, s := range got[:len(got)-1] {
		if s.NeedsResolve() || s.Weight != 3 {
			t.Errorf("%+v", s)
		}
	}
	if _, err := ResolveServers(context.Background(), []Server{{Addr: "no-such-host.invalid:1"}}); err == nil ||
		err.Error() != `host not found in upstream "no-such-host.invalid:1"` {
		t.Errorf("%v", err)
	}
}

// fakeDNS answers A queries for names on 127.0.0.1 (UDP) and NXDOMAIN
// otherwise; queries counts the A queries.
func fakeDNS(t *testing.T, records map[string][4]byte) (addr string, queries *atomic.Int64) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	queries = new(atomic.Int64)
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			if n < 12 {
				continue
			}
			// Question name.
			i := 12
			var labels []string
			for i < n && q[i] != 0 {
				l := int(q[i])
				labels = append(labels, string(q[i+1:i+1+l]))
				i += 1 + l
			}
			qend := i + 5 // zero byte, type, class
			qtype := int(q[i+1])<<8 | int(q[i+2])
			name := strings.ToLower(strings.Join(labels, ".")) + "."
			resp := append([]byte(nil), q[:qend]...)
			resp[2], resp[3] = 0x81, 0x80 // response, RD, RA
			resp[6], resp[7] = 0, 0
			resp[8], resp[9], resp[10], resp[11] = 0, 0, 0, 0
			ip, ok := records[name]
			switch {
			case !ok:
				resp[3] = 0x83 // NXDOMAIN
			case qtype == 1:
				queries.Add(1)
				resp[7] = 1
				resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
				resp = append(resp, ip[:]...)
			}
			pc.WriteTo(resp, from)
		}
	}()
	return pc.LocalAddr().String(), queries
}

// TestRelayThroughUpstream runs websockify.Serve with an Upstream whose
// first server refuses: the tunnel reaches the second one.
func TestRelayThroughUpstream(t *testing.T) {
	good := listenEcho(t)
	u := New("vnc", []Server{{Addr: refusedAddr(t), MaxFails: 1}, {Addr: good, MaxFails: 1}})
	results := make(chan websockify.Result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := websockify.Serve(w, r, u, websockify.Options{}, nil)
		if res.Status != http.StatusSwitchingProtocols {
			http.Error(w, "", res.Status)
		}
		results <- res
	}))
	defer srv.Close()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.WriteMessage(websocket.BinaryMessage, []byte("RFB 003.008\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, m, err := c.ReadMessage()
	if err != nil || string(m) != "RFB 003.008\n" {
		t.Fatalf("%q %v", m, err)
	}
	c.Close()
	if res := <-results; res.UpstreamAddr != good {
		t.Errorf("UpstreamAddr %s, want %s", res.UpstreamAddr, good)
	}
}
