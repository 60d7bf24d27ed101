package upstream

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// pickFor picks once for a new request set up by setup.
func pickFor(u *Upstream, setup func(*Tries)) string {
	t := &Tries{}
	if setup != nil {
		setup(t)
	}
	if p := u.pick(t); p != nil {
		return p.Addr
	}
	return "-"
}

func client(ip string) func(*Tries) {
	return func(t *Tries) { t.SetClient(net.ParseIP(ip)) }
}

func key(k string) func(*Tries) {
	return func(t *Tries) { t.SetKey(k) }
}

func TestIPHash(t *testing.T) {
	servers := []Server{{Addr: "a"}, {Addr: "b"}, {Addr: "c"}, {Addr: "d"}}
	u := New("", servers)
	u.SetMethod(IPHash)
	// the fourth octet does not count; the first three do
	for _, ip := range []string{"192.0.2.1", "10.7.9.3", "2001:db8::1"} {
		first := pickFor(u, client(ip))
		for i := 0; i < 3; i++ {
			same := ip
			if p := net.ParseIP(ip).To4(); p != nil {
				same = fmt.Sprintf("%d.%d.%d.%d", p[0], p[1], p[2], 100+i)
			}
			if got := pickFor(u, client(same)); got != first {
				t.Errorf("%s: %s, %s: %s", ip, first, same, got)
			}
		}
	}
	// a down server keeps its share: only the clients that hashed to it move
	before := map[string]string{}
	for i := 0; i < 64; i++ {
		ip := fmt.Sprintf("10.%d.%d.1", i, i*7%256)
		before[ip] = pickFor(u, client(ip))
	}
	servers[1].Down = true
	down := New("", servers)
	down.SetMethod(IPHash)
	moved := 0
	for ip, was := range before {
		got := pickFor(down, client(ip))
		switch {
		case got == "b":
			t.Errorf("%s went to the down server", ip)
		case was != "b" && got != was:
			t.Errorf("%s moved from %s to %s though its server is up", ip, was, got)
		case was == "b":
			moved++
		}
	}
	if moved == 0 {
		t.Error("no client hashed to b: the test shows nothing")
	}
}

func TestIPHashPseudoAddress(t *testing.T) {
	u := New("", []Server{{Addr: "a"}, {Addr: "b"}, {Addr: "c"}})
	u.SetMethod(IPHash)
	// unix socket clients all hash as 0.0.0.x
	if a, b := pickFor(u, client("")), pickFor(u, client("0.0.0.9")); a != b {
		t.Errorf("pseudo address picks %s, 0.0.0.9 picks %s", a, b)
	}
}

// TestHashFallsBackToRoundRobin: past 20 draws that hit tried or failed
// servers, or with an empty key, the hash methods pick round robin, as
// nginx does (and so reach backup servers).
func TestHashFallsBackToRoundRobin(t *testing.T) {
	for _, m := range []Method{IPHash, Hash, ConsistentHash} {
		u := New("", []Server{{Addr: "a", Down: true}, {Addr: "b", Down: true}, {Addr: "z", Backup: true}})
		u.SetMethod(m)
		setup := func(t *Tries) { t.SetKey("k"); t.SetClient(net.ParseIP("192.0.2.1")) }
		if got := pickFor(u, setup); got != "z" {
			t.Errorf("method %d: %s, want the backup z", m, got)
		}
	}
	u := New("", []Server{{Addr: "a"}, {Addr: "b", Weight: 2}})
	u.SetMethod(Hash)
	var got []string
	for range 6 {
		got = append(got, pickFor(u, key("")))
	}
	if diff := cmp.Diff("b a b b a b", strings.Join(got, " ")); diff != "" {
		t.Errorf("empty key (-want +got):\n%s", diff)
	}
}

func TestHashRetriesOtherServers(t *testing.T) {
	for _, m := range []Method{IPHash, Hash, ConsistentHash, Random, RandomTwo, LeastConn} {
		u := New("", []Server{{Addr: "a"}, {Addr: "b"}, {Addr: "c"}})
		u.SetMethod(m)
		tr := &Tries{}
		tr.SetKey("some key")
		tr.SetClient(net.ParseIP("198.51.100.20"))
		seen := map[string]bool{}
		for range 3 {
			p := u.pick(tr)
			if p == nil {
				t.Fatalf("method %d: nothing after %v", m, seen)
			}
			if seen[p.Addr] {
				t.Fatalf("method %d: %s twice", m, p.Addr)
			}
			seen[p.Addr] = true
			tr.tried.add(p)
		}
		if p := u.pick(tr); p != nil {
			t.Errorf("method %d: a fourth server %s", m, p.Addr)
		}
	}
}

func TestSplitRingName(t *testing.T) {
	for _, tc := range []struct{ in, host, port string }{
		{"127.0.0.1:8081", "127.0.0.1", "8081"},
		{"backend", "backend", ""},
		{"backend:http", "backend:http", ""},
		{"[::1]:80", "[::1]", "80"},
		{"[::1]", "[::1]", ""},
		{"UNIX:/run/b.sock", "/run/b.sock", ""},
		{"unix:/run/b:80", "/run/b:80", ""},
	} {
		if h, p := splitRingName(tc.in); h != tc.host || p != tc.port {
			t.Errorf("%s: %q %q", tc.in, h, p)
		}
	}
}

func TestConsistentHashRing(t *testing.T) {
	servers := []Server{{Addr: "10.0.0.1:80"}, {Addr: "10.0.0.2:80", Weight: 2}, {Addr: "10.0.0.3:80"}}
	u := New("", servers)
	u.SetMethod(ConsistentHash)
	if n := len(u.points); n != 4*pointsPerWeight {
		t.Errorf("%d points, want %d", n, 4*pointsPerWeight)
	}
	for i := 1; i < len(u.points); i++ {
		if u.points[i-1].hash >= u.points[i].hash {
			t.Fatalf("ring not sorted at %d", i)
		}
	}
	// a server's addresses share its points: two addresses of one name
	// give no more points than one
	two := New("", []Server{{Addr: "10.0.0.1:80", Name: "b:80"}, {Addr: "10.0.0.9:80", Name: "b:80"}})
	two.SetMethod(ConsistentHash)
	if n := len(two.points); n != pointsPerWeight {
		t.Errorf("two addresses of one server: %d points, want %d", n, pointsPerWeight)
	}
	// taking a server out moves only its keys
	before := map[string]string{}
	for i := range 200 {
		k := fmt.Sprintf("key%d", i)
		before[k] = pickFor(u, key(k))
	}
	fewer := New("", servers[:2])
	fewer.SetMethod(ConsistentHash)
	for k, was := range before {
		if got := pickFor(fewer, key(k)); was != "10.0.0.3:80" && got != was {
			t.Errorf("%s moved from %s to %s", k, was, got)
		}
	}
}

func TestLeastConnAndMaxConns(t *testing.T) {
	u := New("", []Server{{Addr: "a", Weight: 2}, {Addr: "b"}, {Addr: "c", MaxConns: 1}})
	u.SetMethod(LeastConn)
	if !u.Counted() {
		t.Fatal("least_conn must count connections")
	}
	var open []*Tries
	var got []string
	for range 6 {
		tr := &Tries{}
		tr.Track()
		p := u.pick(tr)
		got = append(got, p.Addr)
		open = append(open, tr)
	}
	// all at 0: a (weighted round robin among the tie); b and c tie at 0:
	// b; c alone at 0; c full from here: a (1 for weight 2), then a and b
	// tie (2/2, 1/1): round robin picks b; then a (2/2 against 2/1)
	if diff := cmp.Diff("a b c a b a", strings.Join(got, " ")); diff != "" {
		t.Errorf("picks (-want +got):\n%s", diff)
	}
	for _, tr := range open {
		u.Done(tr)
		u.Done(tr) // twice is once
	}
	for _, p := range u.primary {
		if p.conns != 0 {
			t.Errorf("%s: %d conns after Done", p.Addr, p.conns)
		}
	}
}

func TestMaxConnsSingleAndBackup(t *testing.T) {
	u := New("", []Server{{Addr: "a", MaxConns: 1}})
	held := &Tries{}
	held.Track()
	if p := u.pick(held); p == nil {
		t.Fatal("no server")
	}
	if got := pickFor(u, (*Tries).Track); got != "-" {
		t.Errorf("lone server at max_conns: %s, want none (no live upstreams)", got)
	}
	u.Done(held)
	if got := pickFor(u, (*Tries).Track); got != "a" {
		t.Errorf("after Done: %s", got)
	}

	u = New("", []Server{{Addr: "a", MaxConns: 1}, {Addr: "z", Backup: true}})
	u.pick(held)
	if got := pickFor(u, nil); got != "z" {
		t.Errorf("primary full: %s, want the backup", got)
	}
}

func TestRandomTwoPicksFewerConns(t *testing.T) {
	u := New("", []Server{{Addr: "a"}, {Addr: "b"}})
	u.SetMethod(RandomTwo)
	busy := &Tries{}
	busy.Track()
	first := u.pick(busy)
	for range 20 {
		if got := pickFor(u, nil); got == first.Addr {
			t.Fatalf("random two picked %s with a connection over the idle one", got)
		}
	}
}

func TestRandomSpreadsByWeight(t *testing.T) {
	u := New("", []Server{{Addr: "a", Weight: 3}, {Addr: "b"}, {Addr: "c", Down: true}})
	u.SetMethod(Random)
	n := map[string]int{}
	for range 4000 {
		n[pickFor(u, nil)]++
	}
	if n["c"] != 0 || n["a"] < 2*n["b"] || n["b"] == 0 {
		t.Errorf("counts %v", n)
	}
}

// TestRequestDialer: a request's dialer balances with its Tries, counts
// the tunnel's connection until Done, and lists the upstream's addresses.
func TestRequestDialer(t *testing.T) {
	good := listenEcho(t)
	u := New("vnc", []Server{{Addr: good, MaxConns: 1}, {Addr: refusedAddr(t), Backup: true}})
	tr := &Tries{}
	tr.Track()
	d := u.For(tr)
	c, addr, err := d.Dial(context.Background(), time.Second)
	if err != nil || addr != good {
		t.Fatalf("dial: %v %s", err, addr)
	}
	defer c.Close()
	if got := d.(interface{ Addrs() []string }).Addrs(); len(got) != 2 {
		t.Errorf("Addrs %v", got)
	}
	// the lone primary is full: the next request gets the backup, which refuses
	other := &Tries{}
	other.Track()
	if _, addr, err := u.For(other).Dial(context.Background(), time.Second); err == nil || addr == good {
		t.Errorf("second tunnel: %v %s, want the backup's error", err, addr)
	}
	u.Done(tr)
	third := &Tries{}
	third.Track()
	c3, addr, err := u.For(third).Dial(context.Background(), time.Second)
	if err != nil || addr != good {
		t.Fatalf("after Done: %v %s", err, addr)
	}
	c3.Close()
	u.Done(third)
}

// TestPutReleases: a connection kept idle does not count for max_conns.
func TestPutReleases(t *testing.T) {
	good := listenEcho(t)
	u := New("", []Server{{Addr: good, MaxConns: 1}})
	u.SetKeepalive(Keepalive{Conns: 4, Requests: 100, Timeout: time.Minute, Time: time.Hour})
	tr := &Tries{}
	tr.Track()
	c, _, err := u.DialNext(context.Background(), time.Second, tr)
	if err != nil {
		t.Fatal(err)
	}
	u.Put(tr, c)
	next := &Tries{}
	next.Track()
	c, _, err = u.DialNext(context.Background(), time.Second, next)
	if err != nil || !next.Cached() {
		t.Fatalf("after Put: %v, cached %v", err, next.Cached())
	}
	c.Close()
	u.Done(next)
}
