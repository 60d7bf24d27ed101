package proxy

import (
	"net"
	"testing"
)

// TestBindsAt: an inherited socket serves the bind of the same family,
// address and port only.
func TestBindsAt(t *testing.T) {
	tcp := func(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }
	for _, c := range []struct {
		addr net.Addr
		b    bindSpec
		want bool
	}{
		{tcp("0.0.0.0", 80), bindSpec{network: "tcp4", addr: "0.0.0.0:80"}, true},
		{tcp("0.0.0.0", 80), bindSpec{network: "tcp6", addr: "[::]:80"}, false},
		{tcp("::", 80), bindSpec{network: "tcp6", addr: "[::]:80"}, true},
		{tcp("::", 80), bindSpec{network: "tcp4", addr: "0.0.0.0:80"}, false},
		{tcp("127.0.0.1", 8080), bindSpec{network: "tcp", addr: "127.0.0.1:8080"}, true},
		{tcp("127.0.0.1", 8080), bindSpec{network: "tcp", addr: "127.0.0.1:8081"}, false},
		{tcp("127.0.0.2", 8080), bindSpec{network: "tcp", addr: "127.0.0.1:8080"}, false},
		{tcp("::1", 8080), bindSpec{network: "tcp", addr: "[::1]:8080"}, true},
		{&net.UnixAddr{Name: "/run/a.sock", Net: "unix"}, bindSpec{network: "unix", addr: "/run/a.sock"}, true},
		{&net.UnixAddr{Name: "/run/a.sock", Net: "unix"}, bindSpec{network: "unix", addr: "/run/b.sock"}, false},
		{&net.UnixAddr{Name: "/run/a.sock", Net: "unix"}, bindSpec{network: "tcp", addr: "127.0.0.1:80"}, false},
		{tcp("127.0.0.1", 80), bindSpec{network: "unix", addr: "/run/a.sock"}, false},
	} {
		if got := bindsAt(c.addr, c.b); got != c.want {
			t.Errorf("bindsAt(%v, %v) = %v, want %v", c.addr, c.b, got, c.want)
		}
	}
}

// TestPrivilegedPort: the CAP_NET_BIND_SERVICE hint is for TCP ports
// below 1024 only.
func TestPrivilegedPort(t *testing.T) {
	for b, want := range map[bindSpec]bool{
		{network: "tcp4", addr: "0.0.0.0:80"}:     true,
		{network: "tcp", addr: "127.0.0.1:1023"}:  true,
		{network: "tcp", addr: "127.0.0.1:1024"}:  false,
		{network: "tcp6", addr: "[::]:443"}:       true,
		{network: "unix", addr: "/run/x.sock"}:    false,
		{network: "tcp", addr: "127.0.0.1:65535"}: false,
	} {
		if got := privilegedPort(b); got != want {
			t.Errorf("privilegedPort(%v) = %v", b, got)
		}
	}
}
