package http1

import (
	"net"
	"testing"
)

// TestAddrString: addrString writes what the address's String method does,
// except for a unix socket's peer, which is nginx's "unix:" and the path
// (none for an unnamed socket, "@" to Go).
func TestAddrString(t *testing.T) {
	addrs := []net.Addr{
		&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080},
		&net.TCPAddr{IP: net.IP{10, 1, 2, 3}, Port: 1},
		&net.TCPAddr{IP: net.ParseIP("::1"), Port: 65535},
		&net.TCPAddr{IP: net.ParseIP("2001:db8::ff00:42:8329"), Port: 443},
		&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 80},
		&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 80, Zone: "eth0"},
		&net.TCPAddr{Port: 80},
		&net.TCPAddr{IP: net.IP{1, 2, 3}, Port: 80},
		(*net.TCPAddr)(nil),
	}
	for _, a := range addrs {
		if got, want := addrString(a), a.String(); got != want {
			t.Errorf("addrString(%#v) = %q, want %q", a, got, want)
		}
	}
	for a, want := range map[*net.UnixAddr]string{
		{Name: "/tmp/s", Net: "unix"}: "unix:/tmp/s",
		{Name: "@", Net: "unix"}:      "unix:",
		{Name: "", Net: "unix"}:       "unix:",
	} {
		if got := addrString(a); got != want {
			t.Errorf("addrString(%#v) = %q, want %q", a, got, want)
		}
	}
	a := &net.TCPAddr{IP: net.IPv4(192, 168, 1, 20), Port: 51234}
	if n := testing.AllocsPerRun(100, func() { _ = addrString(a) }); n != 1 {
		t.Errorf("addrString: %v allocations, want 1", n)
	}
}

func BenchmarkAddrString(b *testing.B) {
	a := &net.TCPAddr{IP: net.IPv4(192, 168, 100, 200), Port: 51234}
	b.ReportAllocs()
	for b.Loop() {
		_ = addrString(a)
	}
}

func BenchmarkTCPAddrString(b *testing.B) {
	a := &net.TCPAddr{IP: net.IPv4(192, 168, 100, 200), Port: 51234}
	b.ReportAllocs()
	for b.Loop() {
		_ = a.String()
	}
}
