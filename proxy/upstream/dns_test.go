package upstream

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/dns/dnsmessage"
)

// The record types as the scripted server's raw answers carry them.
const (
	dnsTypeA    = uint16(dnsmessage.TypeA)
	dnsTypeAAAA = uint16(dnsmessage.TypeAAAA)
)

// scriptedDNS answers every query for a name with answers[name][qtype]
// (the records' IPs; a nil entry is NXDOMAIN), repeating duplicates as
// given.
func scriptedDNS(t *testing.T, answers map[string]map[uint16][]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			i, labels := 12, []string(nil)
			for i < n && q[i] != 0 {
				labels = append(labels, string(q[i+1:i+1+int(q[i])]))
				i += 1 + int(q[i])
			}
			qt := binary.BigEndian.Uint16(q[i+1:])
			resp := append([]byte(nil), q[:i+5]...)
			resp[2], resp[3] = 0x81, 0x80
			clear(resp[6:12])
			byType, ok := answers[strings.Join(labels, ".")]
			if !ok {
				resp[3] = 0x83
			}
			for _, a := range byType[qt] {
				ip := net.ParseIP(a)
				if qt == dnsTypeA {
					ip = ip.To4()
				}
				resp[7]++
				resp = append(resp, 0xc0, 12, byte(qt>>8), byte(qt), 0, 1, 0, 0, 0, 60, 0, byte(len(ip)))
				resp = append(resp, ip...)
			}
			pc.WriteTo(resp, from)
		}
	}()
	return pc.LocalAddr().String()
}

// TestResolverAsNginx: the resolver asks the DNS servers only (no hosts
// file: "localhost" is what the server says), keeps every address of the
// answer, duplicates included (each is a server to try, as nginx's
// proxy_next_upstream_tries.t expects), IPv4 before IPv6, and words
// failures as nginx does.
func TestResolverAsNginx(t *testing.T) {
	dns := scriptedDNS(t, map[string]map[uint16][]string{
		"localhost":  {dnsTypeA: {"127.0.0.7", "127.0.0.7", "127.0.0.7"}},
		"dual.test":  {dnsTypeA: {"192.0.2.1"}, dnsTypeAAAA: {"2001:db8::1"}},
		"v6.test":    {dnsTypeAAAA: {"2001:db8::2"}},
		"empty.test": {},
	})
	res, err := NewResolver([]string{dns}, ResolverOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	noV6, _ := NewResolver([]string{dns}, ResolverOptions{Timeout: time.Second, NoIPv6: true})
	for _, tc := range []struct {
		r    *Resolver
		host string
		want []string
		err  string
	}{
		{res, "localhost", []string{"127.0.0.7", "127.0.0.7", "127.0.0.7"}, ""},
		{res, "dual.test", []string{"192.0.2.1", "2001:db8::1"}, ""},
		{noV6, "dual.test", []string{"192.0.2.1"}, ""},
		{res, "v6.test", []string{"2001:db8::2"}, ""},
		{noV6, "v6.test", nil, "v6.test could not be resolved (3: Host not found)"},
		{res, "nosuch.test", nil, "nosuch.test could not be resolved (3: Host not found)"},
		{res, "empty.test", nil, "empty.test could not be resolved (3: Host not found)"},
	} {
		got, err := tc.r.LookupHost(context.Background(), tc.host)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: %v %v, want error %q", tc.host, got, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.host, err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.host, diff)
		}
	}
}

func TestResolverTimeout(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // never answers
	if err != nil {
		t.Fatal(err)
	}
	closed, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close() // refuses (ICMP port unreachable): nginx still waits
	defer pc.Close()
	for _, server := range []string{pc.LocalAddr().String(), closed.LocalAddr().String()} {
		res, _ := NewResolver([]string{server}, ResolverOptions{Timeout: 100 * time.Millisecond})
		start := time.Now()
		_, err = res.LookupHost(context.Background(), "vnc.test")
		if err == nil || err.Error() != "vnc.test could not be resolved (110: Operation timed out)" {
			t.Errorf("%s: err %v", server, err)
		}
		if d := time.Since(start); d > time.Second || d < 90*time.Millisecond {
			t.Errorf("%s: took %v", server, d)
		}
	}
}

// TestResolverCancel: a lookup stops when its context is cancelled (the
// request ended), not at resolver_timeout.
func TestResolverCancel(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	res, _ := NewResolver([]string{pc.LocalAddr().String()}, ResolverOptions{Timeout: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if _, err := res.LookupHost(ctx, "vnc.test"); err == nil {
		t.Error("no error")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

// dnsServer answers each UDP query with reply(name, qtype, n), n counting
// the queries for that name and type from 1; nil is no answer. tcp, when
// set, answers over TCP on the same port.
func dnsServer(t *testing.T, reply func(q []byte, name string, qt uint16, n int) []byte, tcp func(q []byte, name string, qt uint16) []byte) string {
	t.Helper()
	// a port free for both: TCP first, then UDP on it
	var pc net.PacketConn
	var ln net.Listener
	for try := 0; pc == nil; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp", l.Addr().String()); err != nil {
			l.Close()
			if try == 20 {
				t.Fatal(err)
			}
			continue
		}
		ln = l
	}
	t.Cleanup(func() { pc.Close(); ln.Close() })
	parse := func(q []byte) (string, uint16) {
		i, labels := 12, []string(nil)
		for i < len(q) && q[i] != 0 {
			labels = append(labels, string(q[i+1:i+1+int(q[i])]))
			i += 1 + int(q[i])
		}
		return strings.Join(labels, "."), binary.BigEndian.Uint16(q[i+1:])
	}
	counts := map[string]int{}
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			name, qt := parse(buf[:n])
			counts[fmt.Sprint(name, qt)]++
			if out := reply(buf[:n], name, qt, counts[fmt.Sprint(name, qt)]); out != nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	if tcp != nil {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				var l [2]byte
				io.ReadFull(c, l[:])
				q := make([]byte, binary.BigEndian.Uint16(l[:]))
				io.ReadFull(c, q)
				name, qt := parse(q)
				out := tcp(q, name, qt)
				c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(out))), out...))
				c.Close()
			}
		}()
	}
	return pc.LocalAddr().String()
}

// dnsReplyTo builds the answer to query q: flags (0x8180 plus an rcode
// or TC), then records, each (type, ttl, rdata) with the question's name.
func dnsReplyTo(q []byte, flags uint16, recs ...dnsRec) []byte {
	i := 12
	for q[i] != 0 {
		i += 1 + int(q[i])
	}
	out := append([]byte(nil), q[:i+5]...)
	binary.BigEndian.PutUint16(out[2:], flags)
	binary.BigEndian.PutUint16(out[6:], uint16(len(recs)))
	clear(out[8:12])
	for _, r := range recs {
		out = append(out, 0xc0, 12, byte(r.typ>>8), byte(r.typ), 0, 1)
		out = binary.BigEndian.AppendUint32(out, r.ttl)
		out = binary.BigEndian.AppendUint16(out, uint16(len(r.data)))
		out = append(out, r.data...)
	}
	return out
}

type dnsRec struct {
	typ  uint16
	ttl  uint32
	data []byte
}

func dnsWire(name string) []byte {
	var b []byte
	for _, l := range strings.Split(name, ".") {
		b = append(append(b, byte(len(l))), l...)
	}
	return append(b, 0)
}

// TestResolverLikeNginx: answers are kept for their TTL by name whatever
// its case, errors are not kept, the first lookup asks the first server,
// CNAMEs are followed (and kept), a truncated answer is asked again over
// TCP, a label over 63 bytes is not asked (nginx-tests http_resolver*.t).
func TestResolverLikeNginx(t *testing.T) {
	a := func(ip byte) dnsRec { return dnsRec{dnsA, 60, []byte{127, 0, 0, ip}} }
	dns := dnsServer(t, func(q []byte, name string, qt uint16, n int) []byte {
		if name == "cname.test" {
			// for both types: nginx follows a CNAME when both answers
			// have no address and the later one holds it
			if n > 1 {
				return dnsReplyTo(q, 0x8182)
			}
			return dnsReplyTo(q, 0x8180, dnsRec{dnsCNAME, 60, dnsWire("alias.test")})
		}
		if qt != dnsA {
			return dnsReplyTo(q, 0x8180)
		}
		switch name {
		case "case.test", "alias.test":
			if n > 1 {
				return dnsReplyTo(q, 0x8182) // SERVFAIL: only the first may be asked
			}
			return dnsReplyTo(q, 0x8180, a(1))
		case "flaky.test":
			if n == 1 {
				return dnsReplyTo(q, 0x8182)
			}
			return dnsReplyTo(q, 0x8180, a(2))
		case "tc.test":
			return dnsReplyTo(q, 0x8380, a(9))
		}
		return dnsReplyTo(q, 0x8183)
	}, func(q []byte, name string, qt uint16) []byte {
		return dnsReplyTo(q, 0x8180, a(4))
	})
	res, err := NewResolver([]string{dns}, ResolverOptions{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ host, want string }{
		{"case.test", "[127.0.0.1]"},
		{"CASE.test", "[127.0.0.1]"},
		{"flaky.test", "flaky.test could not be resolved (2: Server failure)"},
		{"flaky.test", "[127.0.0.2]"},
		{"cname.test", "[127.0.0.1]"},
		{"cname.test", "[127.0.0.1]"},
		{"tc.test", "[127.0.0.4]"},
		{"nx.test", "nx.test could not be resolved (3: Host not found)"},
		{strings.Repeat("a", 64) + ".test", strings.Repeat("a", 64) + ".test could not be resolved (3: Host not found)"},
	} {
		got, err := res.LookupHost(context.Background(), tc.host)
		s := fmt.Sprint(got)
		if err != nil {
			s = err.Error()
		}
		if s != tc.want {
			t.Errorf("%s: %s, want %s", tc.host, s, tc.want)
		}
	}
	// the first lookup of a resolver asks its first server
	bad := dnsServer(t, func(q []byte, _ string, _ uint16, _ int) []byte { return dnsReplyTo(q, 0x8182) }, nil)
	good := dnsServer(t, func(q []byte, _ string, qt uint16, _ int) []byte {
		if qt != dnsA {
			return dnsReplyTo(q, 0x8180)
		}
		return dnsReplyTo(q, 0x8180, a(5))
	}, nil)
	two, _ := NewResolver([]string{bad, good}, ResolverOptions{Timeout: time.Second})
	for i, want := range []string{"x.test could not be resolved (2: Server failure)", "[127.0.0.5]", "[127.0.0.5]"} {
		got, err := two.LookupHost(context.Background(), "x.test")
		s := fmt.Sprint(got)
		if err != nil {
			s = err.Error()
		}
		if s != want {
			t.Errorf("two servers, lookup %d: %s, want %s", i+1, s, want)
		}
	}
}
