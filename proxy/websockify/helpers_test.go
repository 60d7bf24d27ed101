package websockify

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// goroutineRelay makes the tests use the goroutine relay (the fallback for
// tunnels a loop cannot take) instead of the event loop:
// WEBSOCKIFY_RELAY=goroutines go test. Without event loops (not Linux) it
// is always on.
var goroutineRelay = os.Getenv("WEBSOCKIFY_RELAY") == "goroutines" || !haveLoops

// addrDialer dials one address; it stands in for proxy/upstream.
type addrDialer struct{ network, addr string }

func (d addrDialer) Dial(ctx context.Context, timeout time.Duration) (net.Conn, string, error) {
	c, err := Dial(ctx, d.network, d.addr, timeout)
	return c, d.addr, err
}

// target is a TCP server on 127.0.0.1 whose handler runs once per connection.
type target struct {
	ln    net.Listener
	wg    sync.WaitGroup
	conns chan net.Conn
}

func newTarget(t *testing.T, handle func(net.Conn)) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{ln: ln, conns: make(chan net.Conn, 16)}
	tg.wg.Add(1)
	go func() {
		defer tg.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tg.wg.Add(1)
			go func() {
				defer tg.wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); tg.wg.Wait() })
	return tg
}

func (tg *target) dialer() Dialer { return addrDialer{"tcp", tg.ln.Addr().String()} }

func echo(c net.Conn) { io.Copy(c, c) }

// relay is an httptest server whose handler calls Serve.
type relay struct {
	addr, target string // set by benchRelay
	srv          *httptest.Server
	tunnels      *Tunnels
	results      chan Result
}

func newRelay(t *testing.T, d Dialer, o Options) *relay {
	t.Helper()
	return newRelayOn(t, d, o, goroutineRelay)
}

// newRelayOn is newRelay on the goroutine relay (noLoops) or the event
// loop, for tests that run on both engines whatever WEBSOCKIFY_RELAY says.
func newRelayOn(t *testing.T, d Dialer, o Options, noLoops bool) *relay {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	rl := &relay{tunnels: &Tunnels{noLoops: noLoops, linger: time.Nanosecond}, results: make(chan Result, 100)}
	rl.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := Serve(w, r, d, o, rl.tunnels)
		if res.Status != http.StatusSwitchingProtocols {
			http.Error(w, http.StatusText(res.Status), res.Status)
		}
		rl.results <- res
	}))
	rl.srv.Config.ErrorLog = nil
	rl.srv.Start()
	t.Cleanup(rl.srv.Close)
	return rl
}

func (rl *relay) url() string { return "ws" + strings.TrimPrefix(rl.srv.URL, "http") + "/websockify" }

func (rl *relay) result(t *testing.T) Result {
	t.Helper()
	select {
	case r := <-rl.results:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no Result from Serve")
		return Result{}
	}
}

func dial(t *testing.T, url string, protos ...string) (*websocket.Conn, *http.Response) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: protos, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v (resp %v)", url, err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c, resp
}

// checkNoLeak fails when goroutines started by a test are still running
// after it ends; register it first so that it runs last.
func checkNoLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutines left: %d > %d\n%s", runtime.NumGoroutine(), base, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// readN reads messages until n bytes arrived and returns them.
func readN(t *testing.T, c *websocket.Conn, n int, wantType int) []byte {
	t.Helper()
	out := make([]byte, 0, n)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(out) < n {
		mt, r, err := c.NextReader()
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", len(out), n, err)
		}
		if mt != wantType {
			t.Fatalf("message type %d, want %d", mt, wantType)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// expectClose reads until a close error and returns its code.
func expectClose(t *testing.T, c *websocket.Conn) int {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if ok := asCloseError(err, &ce); ok {
			return ce.Code
		}
		t.Fatalf("want a close frame, got %v", err)
	}
}

func asCloseError(err error, ce **websocket.CloseError) bool {
	e, ok := err.(*websocket.CloseError)
	if ok {
		*ce = e
	}
	return ok
}

// rawClient speaks WebSocket by hand, for frames gorilla will not send.
type rawClient struct {
	c  net.Conn
	br *bufio.Reader
}

func rawDial(t *testing.T, rl *relay, protoHeader string, extra []byte) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", rl.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req := "GET /websockify HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" + protoHeader + "\r\n"
	if _, err := c.Write(append([]byte(req), extra...)); err != nil {
		t.Fatal(err)
	}
	rc := &rawClient{c: c, br: bufio.NewReader(c)}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("accept %q", got)
	}
	return rc
}

// frame builds a masked client frame; length encodings are chosen by lenBytes
// (0: shortest, 2 or 8 to force one).
func frame(fin bool, op byte, payload []byte, lenBytes int) []byte {
	var b bytes.Buffer
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b.WriteByte(b0)
	n := len(payload)
	switch {
	case lenBytes == 8 || (lenBytes == 0 && n > 0xffff):
		b.WriteByte(0x80 | 127)
		binary.Write(&b, binary.BigEndian, uint64(n))
	case lenBytes == 2 || (lenBytes == 0 && n > 125):
		b.WriteByte(0x80 | 126)
		binary.Write(&b, binary.BigEndian, uint16(n))
	default:
		b.WriteByte(0x80 | byte(n))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b.Write(key[:])
	for i, c := range payload {
		b.WriteByte(c ^ key[i&3])
	}
	return b.Bytes()
}

// readFrame reads one server frame.
func (rc *rawClient) readFrame(t *testing.T) (fin bool, op byte, payload []byte) {
	t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(rc.br, h[:]); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if h[1]&0x80 != 0 {
		t.Fatal("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var x uint16
		binary.Read(rc.br, binary.BigEndian, &x)
		n = uint64(x)
	case 127:
		binary.Read(rc.br, binary.BigEndian, &n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(rc.br, payload); err != nil {
		t.Fatal(err)
	}
	return h[0]&0x80 != 0, h[0] & 0x0f, payload
}

// collector is a target that records everything it receives.
type collector struct {
	mu   sync.Mutex
	data bytes.Buffer
	eof  chan struct{}
}

func newCollector() *collector { return &collector{eof: make(chan struct{}, 16)} }

func (cl *collector) handle(c net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		cl.mu.Lock()
		cl.data.Write(buf[:n])
		cl.mu.Unlock()
		if err != nil {
			cl.eof <- struct{}{}
			return
		}
	}
}

func (cl *collector) waitLen(t *testing.T, n int) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cl.mu.Lock()
		l := cl.data.Len()
		b := append([]byte(nil), cl.data.Bytes()...)
		cl.mu.Unlock()
		if l >= n {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("target got %d bytes, want %d", l, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (cl *collector) waitEOF(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-cl.eof:
	case <-time.After(within):
		t.Fatalf("target not released within %v", within)
	}
}

// stuckListener is a loopback listener whose accept queue is full and never
// drained: a connect to it hangs until the dialer times out.
func stuckListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the accept queue.
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}
