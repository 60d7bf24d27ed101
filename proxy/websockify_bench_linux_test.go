package proxy

import (
	"bytes"
	"net"
	"net/netip"
	"syscall"
	"testing"

	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
)

// BenchmarkHandshakeWire is ngxsockify-bench's handshake through the whole
// server: a client opens a loopback connection, sends an upgrade request,
// reads the 101 and closes; the tunnel dials a target that reads until
// the end and closes. Client and target are raw system calls that
// allocate nothing, so allocs/op are the server's (a tunnel's end may fall
// into the next handshake: averages over many are what count). The target
// is written in websockify_pass (const, as ngxsockify-bench does) or
// comes from a variable (as in the seed deployment, where a hook sets it).
func BenchmarkHandshakeWire(b *testing.B) {
	target := rawSink(b)
	b.Run("const", func(b *testing.B) { benchHandshakeWire(b, "websockify_pass "+target+";") })
	b.Run("variable", func(b *testing.B) {
		benchHandshakeWire(b, "set $target "+target+"; websockify_pass $target;")
	})
}

func benchHandshakeWire(b *testing.B, location string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg, err := nginxconf.LoadString("/t/nginx.conf", `events {}
http {
    access_log off;
    server {
        listen `+addr+`;
        location /websockify { `+location+` }
    }
}`, nginxconf.LoadOptions{Prefix: "/t"})
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(cfg, Options{ErrorLog: NewErrorLog(discard{}, ngxlog.Err)})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	sa := sockaddrOf(b, addr)
	req := []byte("GET /websockify HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: binary\r\n\r\n")
	buf := make([]byte, 1024)
	handshake := func() {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer syscall.Close(fd)
		if err := syscall.Connect(fd, sa); err != nil {
			b.Fatal(err)
		}
		if _, err := syscall.Write(fd, req); err != nil {
			b.Fatal(err)
		}
		n := 0
		for !bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
			k, err := syscall.Read(fd, buf[n:])
			if err != nil || k <= 0 {
				b.Fatalf("read: %d, %v", k, err)
			}
			n += k
		}
		if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 101 ")) {
			b.Fatalf("answer %q", buf[:n])
		}
	}
	handshake()
	b.ReportAllocs()
	user0, sys0 := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		handshake()
	}
	b.StopTimer()
	// the process's CPU per handshake: the server's, plus the client's and
	// the target's system calls (little user time)
	user1, sys1 := processCPU()
	b.ReportMetric(float64(user1-user0+sys1-sys0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(user1-user0)/float64(b.N), "user-ns/op")
}

// sockaddrOf is addr (an IPv4 host:port) for raw system calls.
func sockaddrOf(tb testing.TB, addr string) *syscall.SockaddrInet4 {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		tb.Fatal(err)
	}
	return &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
}

// rawSink listens on loopback and, one connection at a time, reads what
// comes until the end and closes, allocating nothing per connection; it
// returns its address.
func rawSink(tb testing.TB) string {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	sa := &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if err := syscall.Bind(fd, sa); err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Listen(fd, 128); err != nil {
		tb.Fatal(err)
	}
	got, err := syscall.Getsockname(fd)
	if err != nil {
		tb.Fatal(err)
	}
	port := got.(*syscall.SockaddrInet4).Port
	tb.Cleanup(func() { syscall.Shutdown(fd, syscall.SHUT_RDWR); syscall.Close(fd) })
	go func() {
		buf := make([]byte, 4096)
		for {
			c, _, errno := syscall.Syscall6(syscall.SYS_ACCEPT4, uintptr(fd), 0, 0, syscall.SOCK_CLOEXEC, 0, 0)
			if errno != 0 {
				if errno == syscall.EINTR || errno == syscall.ECONNABORTED {
					continue
				}
				return
			}
			for {
				n, err := syscall.Read(int(c), buf)
				if n <= 0 && err != syscall.EINTR {
					break
				}
			}
			syscall.Close(int(c))
		}
	}()
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port)).String()
}
