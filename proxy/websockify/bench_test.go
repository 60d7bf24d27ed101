package websockify

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// useGorilla switches benchRelay to gorillaRelay, the straightforward relay
// built on gorilla/websocket, to compare with this package's framing.
var useGorilla bool

func benchRelay(b *testing.B, handle func(net.Conn)) *relay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	rl := &relay{tunnels: &Tunnels{}, results: make(chan Result, 1000)}
	d := addrDialer{"tcp", ln.Addr().String()}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := ServeAsync(w, r, d, Options{Logger: quiet}, rl.tunnels, func(Result) {})
		if res.Status != 101 {
			http.Error(w, "", res.Status)
		}
	})
	if useGorilla {
		h = gorillaRelay(ln.Addr().String())
	}
	srv := &http.Server{Handler: h}
	hl, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(hl)
	b.Cleanup(func() { srv.Close() })
	rl.addr = hl.Addr().String()
	rl.target = ln.Addr().String()
	return rl
}

func benchDial(b *testing.B, rl *relay) *websocket.Conn {
	d := websocket.Dialer{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	c, _, err := d.Dial("ws://"+rl.addr+"/", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkDownload measures target -> client throughput.
func BenchmarkDownload(b *testing.B) {
	chunk := randBytes(256 << 10)
	rl := benchRelay(b, func(c net.Conn) {
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	c := benchDial(b, rl)
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got := 0
		for got < 1<<20 {
			_, r, err := c.NextReader()
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, r)
			got += int(n)
		}
	}
}

func benchEcho(b *testing.B, size int) {
	rl := benchRelay(b, echo)
	c := benchDial(b, rl)
	msg := randBytes(size)
	const window = 16
	b.SetBytes(int64(size))
	b.ResetTimer()
	done := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	total := b.N * size
	got := 0
	buf := make([]byte, 64<<10)
	for got < total {
		_, r, err := c.NextReader()
		if err != nil {
			b.Fatal(err)
		}
		for {
			n, err := r.Read(buf)
			for k := 0; k < n; {
				pos := (got + k) % size
				m := min(n-k, size-pos)
				if !bytes.Equal(buf[k:k+m], msg[pos:pos+m]) {
					b.Fatal("echo differs")
				}
				k += m
			}
			got += n
			if err != nil {
				break
			}
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func BenchmarkEcho64K(b *testing.B) { benchEcho(b, 64<<10) }
func BenchmarkEcho1K(b *testing.B)  { benchEcho(b, 1<<10) }

// BenchmarkRoundTrip64 measures one 64-byte message there and back.
func BenchmarkRoundTrip64(b *testing.B) {
	rl := benchRelay(b, echo)
	c := benchDial(b, rl)
	msg := randBytes(64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.WriteMessage(websocket.BinaryMessage, msg)
		got := 0
		for got < 64 {
			_, m, err := c.ReadMessage()
			if err != nil {
				b.Fatal(err)
			}
			got += len(m)
		}
	}
}

// BenchmarkHandshake measures upgrade + dial per second (sequential).
func BenchmarkHandshake(b *testing.B) {
	rl := benchRelay(b, echo)
	d := websocket.Dialer{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, _, err := d.Dial("ws://"+rl.addr+"/", nil)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkIdleTunnelMemory reports the heap and stack bytes held per idle
// tunnel (relay side and this process's client side are separated by
// measuring a client-only baseline of equal size).
func BenchmarkIdleTunnelMemory(b *testing.B) {
	const n = 1000
	rl := benchRelay(b, echo)
	for i := 0; i < b.N; i++ {
		measure := func(withRelay bool) float64 {
			runtime.GC()
			debug.FreeOSMemory()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			var conns []net.Conn
			for j := 0; j < n; j++ {
				addr := rl.target
				if withRelay {
					addr = rl.addr
				}
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				if withRelay {
					c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
						"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"))
					buf := make([]byte, 129)
					io.ReadAtLeast(c, buf, 129)
				}
				conns = append(conns, c)
			}
			time.Sleep(200 * time.Millisecond)
			runtime.GC()
			runtime.GC()
			runtime.ReadMemStats(&m1)
			used := float64((m1.HeapInuse+m1.StackInuse)-(m0.HeapInuse+m0.StackInuse)) / n
			if withRelay {
				b.ReportMetric(float64(m1.StackInuse-m0.StackInuse)/n/1024, "stackKiB/tunnel")
			} else {
				b.ReportMetric(float64(m1.StackInuse-m0.StackInuse)/n/1024, "baseStackKiB")
			}
			for _, c := range conns {
				c.Close()
			}
			time.Sleep(200 * time.Millisecond)
			return used
		}
		client := measure(false)
		both := measure(true)
		b.ReportMetric((both-client)/1024, "KiB/tunnel")
	}
}

// BenchmarkRoundTrip64RawTCP is the baseline for BenchmarkRoundTrip64.
func BenchmarkRoundTrip64RawTCP(b *testing.B) {
	rl := benchRelay(b, echo)
	c, err := net.Dial("tcp", rl.target)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := randBytes(64)
	buf := make([]byte, 64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Write(msg)
		io.ReadFull(c, buf)
	}
}

var gorillaBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// gorillaRelay relays with gorilla/websocket as its documentation suggests:
// Upgrader with a write buffer pool, NextReader + io.CopyBuffer towards the
// target, one binary message per target read towards the client.
func gorillaRelay(target string) http.Handler {
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096, WriteBufferPool: &sync.Pool{},
		CheckOrigin: func(*http.Request) bool { return true }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tc, err := net.Dial("tcp", target)
		if err != nil {
			http.Error(w, "", 502)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			tc.Close()
			return
		}
		go func() {
			for {
				bp := gorillaBufs.Get().(*[]byte)
				n, err := tc.Read(*bp)
				if n > 0 {
					ws.WriteMessage(websocket.BinaryMessage, (*bp)[:n])
				}
				gorillaBufs.Put(bp)
				if err != nil {
					ws.Close()
					return
				}
			}
		}()
		for {
			_, rd, err := ws.NextReader()
			if err != nil {
				tc.Close()
				return
			}
			bp := gorillaBufs.Get().(*[]byte)
			_, err = io.CopyBuffer(struct{ io.Writer }{tc}, rd, *bp)
			gorillaBufs.Put(bp)
			if err != nil {
				ws.Close()
				return
			}
		}
	})
}

func withGorilla(b *testing.B, f func(*testing.B)) {
	useGorilla = true
	defer func() { useGorilla = false }()
	f(b)
}

func BenchmarkGorillaDownload(b *testing.B)         { withGorilla(b, BenchmarkDownload) }
func BenchmarkGorillaEcho64K(b *testing.B)          { withGorilla(b, BenchmarkEcho64K) }
func BenchmarkGorillaEcho1K(b *testing.B)           { withGorilla(b, BenchmarkEcho1K) }
func BenchmarkGorillaRoundTrip64(b *testing.B)      { withGorilla(b, BenchmarkRoundTrip64) }
func BenchmarkGorillaIdleTunnelMemory(b *testing.B) { withGorilla(b, BenchmarkIdleTunnelMemory) }
