package upstream

import (
	"context"
	"encoding/binary"
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
