package websockify

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestHandshakeRejects(t *testing.T) {
	checkNoLeak(t)
	tg := newTarget(t, echo)
	rl := newRelay(t, tg.dialer(), Options{})
	good := map[string]string{
		"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
	}
	tests := []struct {
		name   string
		method string
		change map[string]string
		status int
	}{
		{"post", "POST", nil, 400},
		{"no upgrade", "GET", map[string]string{"Upgrade": ""}, 400},
		{"upgrade h2c", "GET", map[string]string{"Upgrade": "h2c"}, 400},
		{"connection keep-alive", "GET", map[string]string{"Connection": "keep-alive"}, 400},
		{"version 8", "GET", map[string]string{"Sec-WebSocket-Version": "8"}, 426},
		{"no version", "GET", map[string]string{"Sec-WebSocket-Version": ""}, 426},
		{"short key", "GET", map[string]string{"Sec-WebSocket-Key": "YWJj"}, 400},
		{"long key", "GET", map[string]string{"Sec-WebSocket-Key": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}, 400},
		{"key not base64", "GET", map[string]string{"Sec-WebSocket-Key": "!!!!!!!!!!!!!!!!!!!!!!=="}, 400},
		{"no key", "GET", map[string]string{"Sec-WebSocket-Key": ""}, 400},
		{"unknown protocol", "GET", map[string]string{"Sec-WebSocket-Protocol": "chat, superchat"}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, rl.srv.URL+"/websockify", nil)
			for k, v := range good {
				req.Header.Set(k, v)
			}
			for k, v := range tc.change {
				if v == "" {
					req.Header.Del(k)
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 426 && resp.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Errorf("426 without Sec-WebSocket-Version: 13")
			}
			res := rl.result(t)
			if !errors.Is(res.Err, ErrBadHandshake) {
				t.Errorf("Err = %v", res.Err)
			}
		})
	}
}

// TestResponseHead: the 101's lines with the accept key of RFC 6455's
// example, Options.Server in place of a Server header of w.Header(), and
// no allocation into a buffer with room (start's come from headPool).
func TestResponseHead(t *testing.T) {
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	extra := http.Header{"Server": {"hook"}, "X-A": {"1"}, "Sec-Websocket-Extensions": {"x"}}
	got := string(responseHead(extra, key, "binary", "ngxsockify"))
	want := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: binary\r\n" +
		"Server: ngxsockify\r\nX-A: 1\r\n\r\n"
	if got != want {
		t.Errorf("head %q, want %q", got, want)
	}
	if got := string(responseHead(extra, key, "", "")); !strings.Contains(got, "\r\nServer: hook\r\n") {
		t.Errorf("without Options.Server, the caller's Server header goes: %q", got)
	}
	b := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { b = appendResponseHead(b[:0], nil, key, "binary", "ngxsockify") }); n != 0 {
		t.Errorf("%v allocations into a buffer with room, want 0", n)
	}
}

func TestHandshakeAccepts(t *testing.T) {
	checkNoLeak(t)
	tg := newTarget(t, echo)
	rl := newRelay(t, tg.dialer(), Options{})
	tests := []struct {
		name      string
		header    http.Header
		wantProto string
	}{
		{"no protocol (noVNC 1.2+)", http.Header{}, ""},
		{"binary", http.Header{"Sec-WebSocket-Protocol": {"binary"}}, "binary"},
		{"base64 then binary, spaces", http.Header{"Sec-WebSocket-Protocol": {"base64,  binary"}}, "binary"},
		{"base64 only", http.Header{"Sec-WebSocket-Protocol": {" base64\t"}}, "base64"},
		{"two header lines", http.Header{"Sec-WebSocket-Protocol": {"chat", "base64"}}, "base64"},
		{"mixed case tokens", http.Header{"Upgrade": {"WebSocket"}, "Connection": {"keep-alive, UPGRADE"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// gorilla sets Upgrade/Connection itself; send by hand.
			c, err := net.Dial("tcp", rl.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			h := http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Version": {"13"},
				"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
			for k, v := range tc.header {
				h[http.CanonicalHeaderKey(k)] = v
			}
			var req strings.Builder
			req.WriteString("GET /websockify HTTP/1.1\r\nHost: x\r\n")
			h.Write(&req)
			req.WriteString("\r\n")
			c.Write([]byte(req.String()))
			rc := &rawClient{c: c, br: bufio.NewReader(c)}
			resp, err := http.ReadResponse(rc.br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 101 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
				t.Errorf("accept %q", got)
			}
			got, present := resp.Header["Sec-Websocket-Protocol"]
			if tc.wantProto == "" && present {
				t.Errorf("Sec-WebSocket-Protocol %q sent, want none", got)
			}
			if tc.wantProto != "" && resp.Header.Get("Sec-WebSocket-Protocol") != tc.wantProto {
				t.Errorf("protocol %q, want %q", got, tc.wantProto)
			}
			c.Write(frame(true, opClose, []byte{0x03, 0xe8}, 0))
			if _, op, p := rc.readFrame(t); op != opClose || !bytes.Equal(p, []byte{0x03, 0xe8}) {
				t.Errorf("close answer op %d payload %x", op, p)
			}
			if res := rl.result(t); res.Status != 101 || res.Err != nil {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestEchoSizes(t *testing.T) {
	for _, bs := range []int{0, MinBufferSize} {
		t.Run(fmt.Sprintf("BufferSize=%d", bs), func(t *testing.T) { testEchoSizes(t, bs) })
	}
}

func testEchoSizes(t *testing.T, bufferSize int) {
	checkNoLeak(t)
	tg := newTarget(t, echo)
	rl := newRelay(t, tg.dialer(), Options{BufferSize: bufferSize})
	c, _ := dial(t, rl.url(), "binary")
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20} {
		msg := randBytes(n)
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			continue // an empty frame carries no byte to echo
		}
		if got := readN(t, c, n, websocket.BinaryMessage); !bytes.Equal(got, msg) {
			t.Fatalf("%d bytes: echo differs", n)
		}
	}
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	if code := expectClose(t, c); code != 1000 {
		t.Errorf("close code %d", code)
	}
	res := rl.result(t)
	if res.Err != nil || res.BytesReceived < 1<<20 || res.BytesSent < 1<<20 {
		t.Errorf("result %+v", res)
	}
}

func TestManySmallMessagesPipelined(t *testing.T) {
	checkNoLeak(t)
	tg := newTarget(t, echo)
	rl := newRelay(t, tg.dialer(), Options{})
	c, _ := dial(t, rl.url())
	// 2000 frames of 1000 B: the C module stalls at 65000 bytes.
	all := randBytes(2000 * 1000)
	go func() {
		for i := 0; i < 2000; i++ {
			c.WriteMessage(websocket.BinaryMessage, all[i*1000:(i+1)*1000])
		}
	}()
	if got := readN(t, c, len(all), websocket.BinaryMessage); !bytes.Equal(got, all) {
		t.Fatal("stream differs")
	}
}

func TestRawFrames(t *testing.T) {
	checkNoLeak(t)
	cl := newCollector()
	tg := newTarget(t, cl.handle)
	rl := newRelay(t, tg.dialer(), Options{})
	data := randBytes(70000)
	var in bytes.Buffer
	in.Write(frame(true, opBinary, nil, 0))           // empty frame
	in.Write(frame(true, opText, data[:10], 8))       // 64-bit length, small payload
	in.Write(frame(false, opBinary, data[10:300], 0)) // fragmented message...
	in.Write(frame(true, opPing, []byte("hello"), 0)) // ...with a ping inside
	in.Write(frame(false, opContinuation, nil, 0))    // empty continuation
	in.Write(frame(true, opContinuation, data[300:70000], 0))
	// Send the handshake and the frames in one write: the frames reach the
	// relay inside net/http's buffer.
	rc := rawDial(t, rl, "", in.Bytes())
	if got := cl.waitLen(t, len(data)); !bytes.Equal(got, data) {
		t.Fatal("target got different bytes")
	}
	if _, op, p := rc.readFrame(t); op != opPong || string(p) != "hello" {
		t.Fatalf("want pong hello, got op %d %q", op, p)
	}
	// Byte by byte: headers and payload split across reads.
	more := frame(true, opBinary, []byte("split"), 0)
	for _, b := range more {
		rc.c.Write([]byte{b})
		time.Sleep(time.Millisecond)
	}
	if got := cl.waitLen(t, len(data)+5); string(got[len(data):]) != "split" {
		t.Fatalf("split frame relayed as %q", got[len(data):])
	}
}

func TestProtocolErrors(t *testing.T) {
	checkNoLeak(t)
	tests := []struct {
		name  string
		frame []byte
	}{
		{"unmasked", []byte{0x82, 0x01, 'x'}},
		{"reserved bit", append([]byte{0xc2}, frame(true, opBinary, []byte("x"), 0)[1:]...)},
		{"unknown opcode", frame(true, 0x3, []byte("x"), 0)},
		{"continuation first", frame(true, opContinuation, []byte("x"), 0)},
		{"fragmented ping", frame(false, opPing, []byte("x"), 0)},
		{"long ping", frame(true, opPing, make([]byte, 126), 0)},
		{"huge length", append([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0}, 1, 2, 3, 4)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := newCollector()
			tg := newTarget(t, cl.handle)
			rl := newRelay(t, tg.dialer(), Options{})
			rc := rawDial(t, rl, "", nil)
			rc.c.Write(tc.frame)
			_, op, p := rc.readFrame(t)
			if op != opClose || len(p) < 2 || int(p[0])<<8|int(p[1]) != 1002 {
				t.Fatalf("want close 1002, got op %d %x", op, p)
			}
			cl.waitEOF(t, 5*time.Second)
			if res := rl.result(t); !errors.Is(res.Err, ErrProtocol) {
				t.Errorf("Err %v", res.Err)
			}
		})
	}
}

func TestPingAnsweredAtOnce(t *testing.T) {
	checkNoLeak(t)
	tg := newTarget(t, echo)
	rl := newRelay(t, tg.dialer(), Options{})
	c, _ := dial(t, rl.url(), "binary")
	pong := make(chan string, 1)
	c.SetPongHandler(func(s string) error { pong <- s; return nil })
	go c.ReadMessage() // runs the pong handler
	start := time.Now()
	if err := c.WriteControl(websocket.PingMessage, []byte("p1"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-pong:
		if s != "p1" {
			t.Errorf("pong payload %q", s)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("pong after %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}
	c.Close()
}

func TestBase64(t *testing.T) {
	checkNoLeak(t)
	cl := newCollector()
	pushed := randBytes(100000)
	tg := newTarget(t, func(c net.Conn) {
		go c.Write(pushed)
		cl.handle(c)
	})
	rl := newRelay(t, tg.dialer(), Options{BufferSize: 4096})
	c, resp := dial(t, rl.url(), "base64")
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "base64" {
		t.Fatalf("protocol %q", p)
	}
	// Target to client: text frames of padded base64, at most BufferSize each.
	var got []byte
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(got) < len(pushed) {
		mt, m, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if mt != websocket.TextMessage || len(m) > 4096 || len(m)%4 != 0 {
			t.Fatalf("frame type %d len %d", mt, len(m))
		}
		b, err := base64.StdEncoding.DecodeString(string(m))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b...)
	}
	if !bytes.Equal(got, pushed) {
		t.Fatal("decoded download differs")
	}
	// Client to target: padded, unpadded, and a fragmented message split
	// inside a group.
	var want []byte
	for _, n := range []int{1, 2, 3, 4, 5, 1000, 5000} {
		b := randBytes(n)
		want = append(want, b...)
		c.WriteMessage(websocket.TextMessage, []byte(base64.StdEncoding.EncodeToString(b)))
		b = randBytes(n)
		want = append(want, b...)
		c.WriteMessage(websocket.BinaryMessage, []byte(base64.RawStdEncoding.EncodeToString(b)))
	}
	b := randBytes(7)
	want = append(want, b...)
	enc := base64.RawStdEncoding.EncodeToString(b) // 10 chars
	w, _ := c.NextWriter(websocket.TextMessage)
	w.Write([]byte(enc[:5]))
	if gw, ok := w.(interface{ Flush() error }); ok {
		gw.Flush()
	}
	w.Write([]byte(enc[5:]))
	w.Close()
	if got := cl.waitLen(t, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("target got different bytes (%d vs %d)", len(got), len(want))
	}
}

func TestBase64Invalid(t *testing.T) {
	for _, bad := range []string{"Y", "!!!!", "YQ==YQ==", "YQ=A"} {
		t.Run(bad, func(t *testing.T) {
			checkNoLeak(t)
			cl := newCollector()
			tg := newTarget(t, cl.handle)
			rl := newRelay(t, tg.dialer(), Options{})
			c, _ := dial(t, rl.url(), "base64")
			c.WriteMessage(websocket.TextMessage, []byte(bad))
			if code := expectClose(t, c); code != 1007 {
				t.Errorf("close code %d, want 1007", code)
			}
			cl.waitEOF(t, 5*time.Second)
			if res := rl.result(t); !errors.Is(res.Err, ErrBadBase64) {
				t.Errorf("Err %v", res.Err)
			}
		})
	}
}

func TestTargetClosesMidStream(t *testing.T) {
	checkNoLeak(t)
	pushed := randBytes(3 << 20)
	tg := newTarget(t, func(c net.Conn) { c.Write(pushed) })
	rl := newRelay(t, tg.dialer(), Options{BufferSize: 8192})
	c, _ := dial(t, rl.url(), "binary")
	var got []byte
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, m, err := c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !asCloseError(err, &ce) || ce.Code != 1000 {
				t.Fatalf("want close 1000, got %v", err)
			}
			break
		}
		if len(m) > 8192 {
			t.Fatalf("frame of %d bytes > BufferSize", len(m))
		}
		got = append(got, m...)
	}
	if !bytes.Equal(got, pushed) {
		t.Fatalf("got %d bytes, want %d, or content differs", len(got), len(pushed))
	}
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	if res := rl.result(t); res.Err != nil || res.BytesSent < int64(len(pushed)) {
		t.Errorf("result %+v", res)
	}
}

func TestDialFailures(t *testing.T) {
	checkNoLeak(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := ln.Addr().String()
	ln.Close()
	tests := []struct {
		name   string
		addr   string
		status int
	}{
		{"refused", refused, 502},
		{"connect timeout", stuckListener(t), 504},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rl := newRelay(t, addrDialer{"tcp", tc.addr}, Options{ConnectTimeout: 300 * time.Millisecond})
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
			start := time.Now()
			_, resp, err := d.Dial(rl.url(), nil)
			if err == nil || resp == nil {
				t.Fatalf("dial succeeded or no response: %v", err)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if time.Since(start) > 3*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			res := rl.result(t)
			if res.Status != tc.status || res.Err == nil || res.UpstreamAddr != tc.addr {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	checkNoLeak(t)
	cl := newCollector()
	tg := newTarget(t, cl.handle)
	rl := newRelay(t, tg.dialer(), Options{ReadTimeout: 300 * time.Millisecond})
	c, _ := dial(t, rl.url(), "binary")
	// Activity re-arms the timer: 8 messages 100 ms apart outlive 300 ms.
	var last time.Time
	for i := 0; i < 8; i++ {
		if err := c.WriteMessage(websocket.BinaryMessage, []byte{byte(i)}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		last = time.Now()
		time.Sleep(100 * time.Millisecond)
	}
	cl.waitLen(t, 8)
	select {
	case <-cl.eof:
		t.Fatal("tunnel closed while active")
	default:
	}
	if code := expectClose(t, c); code != 1001 {
		t.Errorf("close code %d", code)
	}
	// The close comes 300 ms after the last message; the bound leaves room
	// for a loaded machine (a fresh-root run overshot a tighter one).
	if d := time.Since(last); d > 300*time.Millisecond+time.Second {
		t.Errorf("idle close %v after the last message", d)
	}
	cl.waitEOF(t, time.Second)
	if res := rl.result(t); !errors.Is(res.Err, ErrIdleTimeout) {
		t.Errorf("Err %v", res.Err)
	}
}

func TestClientVanishes(t *testing.T) {
	checkNoLeak(t)
	cl := newCollector()
	tg := newTarget(t, cl.handle)
	rl := newRelay(t, tg.dialer(), Options{ReadTimeout: 500 * time.Millisecond})
	t.Run("tcp close without close frame", func(t *testing.T) {
		c, _ := dial(t, rl.url(), "binary")
		c.WriteMessage(websocket.BinaryMessage, []byte("x"))
		cl.waitLen(t, 1)
		c.UnderlyingConn().Close()
		cl.waitEOF(t, 300*time.Millisecond)
		rl.result(t)
	})
	t.Run("silent client", func(t *testing.T) {
		// A client that stops reading and sending (power loss) is released by
		// the idle timeout.
		rc := rawDial(t, rl, "", nil)
		_ = rc
		cl.waitEOF(t, 2*time.Second)
		rl.result(t)
	})
}

func TestSendTimeout(t *testing.T) {
	checkNoLeak(t)
	cl := newCollector()
	chunk := randBytes(1 << 20)
	tg := newTarget(t, func(c net.Conn) {
		for {
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(chunk); err != nil {
				cl.eof <- struct{}{}
				return
			}
		}
	})
	rl := newRelay(t, tg.dialer(), Options{SendTimeout: 300 * time.Millisecond, ReadTimeout: time.Minute})
	rawDial(t, rl, "", nil) // never reads
	cl.waitEOF(t, 5*time.Second)
	if res := rl.result(t); !errors.Is(res.Err, ErrSendTimeout) {
		t.Errorf("Err %v", res.Err)
	}
}

func TestClientCloseCodeEchoed(t *testing.T) {
	checkNoLeak(t)
	cl := newCollector()
	tg := newTarget(t, cl.handle)
	rl := newRelay(t, tg.dialer(), Options{})
	c, _ := dial(t, rl.url())
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye"))
	if code := expectClose(t, c); code != 4000 {
		t.Errorf("close code %d", code)
	}
	cl.waitEOF(t, time.Second)
}

func TestShutdown(t *testing.T) {
	checkNoLeak(t)
	tg := newTarget(t, echo)
	rl := newRelay(t, tg.dialer(), Options{})
	var conns []*websocket.Conn
	for i := 0; i < 5; i++ {
		c, _ := dial(t, rl.url())
		conns = append(conns, c)
	}
	// A tunnel registers right after writing its 101.
	waitLen(t, rl.tunnels, 5)
	codes := make(chan int, 5)
	for _, c := range conns {
		go func() { codes <- expectClose(t, c) }()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rl.tunnels.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for range conns {
		if code := <-codes; code != 1001 {
			t.Errorf("close code %d", code)
		}
	}
	// New tunnels are refused.
	_, resp, err := (&websocket.Dialer{}).Dial(rl.url(), nil)
	if err == nil || resp.StatusCode != 503 {
		t.Errorf("after shutdown: %v %v", err, resp)
	}
}

func TestShutdownForce(t *testing.T) {
	checkNoLeak(t)
	tg := newTarget(t, echo)
	rl := newRelay(t, tg.dialer(), Options{})
	rawDial(t, rl, "", nil) // never answers the close frame
	waitLen(t, rl.tunnels, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := rl.tunnels.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("forced shutdown took %v", d)
	}
	if n := rl.tunnels.Len(); n != 0 {
		t.Errorf("Len %d after shutdown", n)
	}
}

func TestServeAsync(t *testing.T) {
	checkNoLeak(t)
	tg := newTarget(t, echo)
	done := make(chan Result, 1)
	earlyc := make(chan Result, 1)
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		earlyc <- ServeAsync(w, r, tg.dialer(), Options{Logger: quiet}, nil, func(r Result) { done <- r })
	})
	c, _ := dial(t, "ws"+strings.TrimPrefix(srv, "http"))
	msg := randBytes(5000)
	c.WriteMessage(websocket.BinaryMessage, msg)
	if got := readN(t, c, len(msg), websocket.BinaryMessage); !bytes.Equal(got, msg) {
		t.Fatal("echo differs")
	}
	early := <-earlyc
	if early.Status != 101 || early.UpstreamAddr == "" {
		t.Errorf("early result %+v", early)
	}
	c.Close()
	select {
	case r := <-done:
		if r.BytesReceived < 5000 || r.BytesSent < 5000 {
			t.Errorf("final result %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("done not called")
	}
}

func TestExtraHeadersIn101(t *testing.T) {
	checkNoLeak(t)
	tg := newTarget(t, echo)
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "nginx")
		w.Header().Set("X-Hook", "yes")
		w.Header().Set("Content-Length", "5")
		Serve(w, r, tg.dialer(), Options{Logger: quiet}, nil)
	})
	c, resp := dial(t, "ws"+strings.TrimPrefix(srv, "http"))
	if resp.Header.Get("X-Hook") != "yes" || resp.Header.Get("Server") != "nginx" || resp.Header.Get("Content-Length") != "" {
		t.Errorf("headers %v", resp.Header)
	}
	c.Close()
}

func newTestServer(t *testing.T, h http.HandlerFunc) string {
	srv := &http.Server{Handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestSendTimeoutTowardsTarget(t *testing.T) {
	checkNoLeak(t)
	hold := make(chan struct{})
	tg := newTarget(t, func(c net.Conn) { <-hold }) // never reads
	rl := newRelay(t, tg.dialer(), Options{SendTimeout: 300 * time.Millisecond})
	defer close(hold)
	c, _ := dial(t, rl.url(), "binary")
	go func() {
		chunk := randBytes(1 << 20)
		for {
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if c.WriteMessage(websocket.BinaryMessage, chunk) != nil {
				return
			}
		}
	}()
	if code := expectClose(t, c); code != 1011 {
		t.Errorf("close code %d, want 1011", code)
	}
	if res := rl.result(t); !errors.Is(res.Err, ErrSendTimeout) {
		t.Errorf("Err %v", res.Err)
	}
	c.Close()
}

func TestIdleTunnelsHoldNoBuffers(t *testing.T) {
	checkNoLeak(t)
	tg := newTarget(t, echo)
	rl := newRelay(t, tg.dialer(), Options{})
	var conns []*websocket.Conn
	for i := 0; i < 20; i++ {
		proto := "binary"
		if i%4 == 0 {
			proto = "base64"
		}
		c, _ := dial(t, rl.url(), proto)
		msg := randBytes(100000)
		mt := websocket.BinaryMessage
		payload := msg
		if proto == "base64" {
			mt = websocket.TextMessage
			payload = []byte(base64.StdEncoding.EncodeToString(msg))
		}
		if err := c.WriteMessage(mt, payload); err != nil {
			t.Fatal(err)
		}
		var got []byte
		for len(got) < len(msg) {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, m, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if proto == "base64" {
				if m, err = base64.StdEncoding.DecodeString(string(m)); err != nil {
					t.Fatal(err)
				}
			}
			got = append(got, m...)
		}
		if !bytes.Equal(got, msg) {
			t.Fatal("echo differs")
		}
		conns = append(conns, c)
	}
	// All 20 tunnels are open and idle now: they must hold no buffer.
	deadline := time.Now().Add(2 * time.Second)
	for buffersOut.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d buffers held by %d idle tunnels", buffersOut.Load(), len(conns))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := rl.tunnels.Len(); n != 20 {
		t.Errorf("%d live tunnels, want 20", n)
	}
	for _, c := range conns {
		c.Close()
	}
}

// TestBackpressure stalls each side in turn long enough for the relay's
// writes to block, then checks that every byte arrives in order once the
// side reads again, with pings answered meanwhile.
func TestBackpressure(t *testing.T) {
	checkNoLeak(t)
	const size = 16 << 20
	data := randBytes(size)
	t.Run("client stalls", func(t *testing.T) {
		tg := newTarget(t, func(c net.Conn) { c.Write(data); io.Copy(io.Discard, c) })
		rl := newRelay(t, tg.dialer(), Options{})
		c, _ := dial(t, rl.url(), "binary")
		time.Sleep(300 * time.Millisecond) // the relay fills the socket and queues
		if got := readN(t, c, size, websocket.BinaryMessage); !bytes.Equal(got, data) {
			t.Fatal("download differs")
		}
		c.Close()
		rl.result(t)
	})
	t.Run("target stalls", func(t *testing.T) {
		got := make(chan []byte, 1)
		tg := newTarget(t, func(c net.Conn) {
			time.Sleep(300 * time.Millisecond)
			b, _ := io.ReadAll(io.LimitReader(c, size))
			got <- b
		})
		rl := newRelay(t, tg.dialer(), Options{})
		c, _ := dial(t, rl.url(), "binary")
		pongs := make(chan struct{}, 100)
		c.SetPongHandler(func(string) error { pongs <- struct{}{}; return nil })
		go func() { c.ReadMessage() }() // runs the pong handler
		for off := 0; off < size; off += 1 << 20 {
			if err := c.WriteMessage(websocket.BinaryMessage, data[off:off+1<<20]); err != nil {
				t.Fatal(err)
			}
			c.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second))
		}
		select {
		case b := <-got:
			if !bytes.Equal(b, data) {
				t.Fatalf("upload differs (%d bytes arrived)", len(b))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("upload did not arrive")
		}
		select {
		case <-pongs:
		case <-time.After(5 * time.Second):
			t.Fatal("no pong")
		}
		c.Close()
		rl.result(t)
	})
}

// TestShutdownWaitsForDone: Shutdown returns only after every tunnel's done
// callback has returned (the proxy writes its access-log line there, and
// closes the log files once Shutdown returns).
func TestShutdownWaitsForDone(t *testing.T) {
	checkNoLeak(t)
	tg := newTarget(t, echo)
	ts := &Tunnels{noLoops: goroutineRelay, linger: time.Nanosecond}
	var logged atomic.Bool
	started := make(chan Result, 1)
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		started <- ServeAsync(w, r, tg.dialer(), Options{Logger: quiet}, ts, func(Result) {
			time.Sleep(200 * time.Millisecond)
			logged.Store(true)
		})
	})
	c, _ := dial(t, "ws"+strings.TrimPrefix(srv, "http"))
	if r := <-started; r.Status != 101 {
		t.Fatalf("start %+v", r)
	}
	go func() {
		for { // answer the close frame
			if _, _, err := c.ReadMessage(); err != nil {
				c.Close()
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if !logged.Load() {
		t.Error("Shutdown returned before the done callback did")
	}
}

// TestTLSClient relays a TLS client (the goroutine relay) and checks that an
// idle TLS tunnel holds one buffer of a TLS record's size, not BufferSize.
func TestTLSClient(t *testing.T) {
	t.Run("goroutine relay", func(t *testing.T) { testTLSClient(t, false) })
	t.Run("event loop", func(t *testing.T) { testTLSClient(t, true) })
}

// redirConn is a connection whose reads and writes can be redirected, as
// proxy's listener wrapper: TLS tunnels on it run on an event loop.
type redirConn struct {
	net.Conn
	rd io.Reader
	wr io.Writer
}

func (c *redirConn) RedirectIO(r io.Reader, w io.Writer) { c.rd, c.wr = r, w }
func (c *redirConn) NetConn() net.Conn                   { return c.Conn }
func (c *redirConn) Read(p []byte) (int, error) {
	if c.rd != nil {
		return c.rd.Read(p)
	}
	return c.Conn.Read(p)
}
func (c *redirConn) Write(p []byte) (int, error) {
	if c.wr != nil {
		return c.wr.Write(p)
	}
	return c.Conn.Write(p)
}

type redirListener struct{ net.Listener }

func (l redirListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &redirConn{Conn: c}, nil
}

func testTLSClient(t *testing.T, onLoop bool) {
	if onLoop && goroutineRelay {
		t.Skip("goroutine relay")
	}
	checkNoLeak(t)
	tg := newTarget(t, echo)
	rl := &relay{tunnels: &Tunnels{linger: time.Nanosecond}, results: make(chan Result, 100)}
	rl.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := Serve(w, r, tg.dialer(), Options{Logger: quiet}, rl.tunnels)
		if res.Status != http.StatusSwitchingProtocols {
			http.Error(w, http.StatusText(res.Status), res.Status)
		}
		rl.results <- res
	}))
	rl.srv.Config.ErrorLog = nil
	if onLoop {
		rl.srv.Listener = redirListener{rl.srv.Listener}
	}
	rl.srv.StartTLS()
	t.Cleanup(rl.srv.Close)
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 5 * time.Second}
	url := "wss" + strings.TrimPrefix(rl.srv.URL, "https") + "/websockify"
	const tunnels = 10
	var conns []*websocket.Conn
	for i := 0; i < tunnels; i++ {
		c, _, err := d.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sizes := []int{1, 125, 126, 65536}
		if i == 0 {
			sizes = append(sizes, 1<<20, 8<<20)
		}
		for _, n := range sizes {
			msg := randBytes(n)
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, c, n, websocket.BinaryMessage); !bytes.Equal(got, msg) {
				t.Fatalf("tunnel %d, %d bytes: echo differs", i, n)
			}
		}
		conns = append(conns, c)
	}
	// Idle now. On the goroutine relay each tunnel's client goroutine waits
	// in Read with one buffer; on a loop a tunnel holds none.
	want := int64(tunnels)
	if onLoop {
		want = 0
	}
	deadline := time.Now().Add(2 * time.Second)
	for buffersOut.Load() > want {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n, b := buffersOut.Load(), bytesOut.Load(); n > want || b > want*(maxRecordPlaintext+headroom) {
		t.Errorf("%d idle TLS tunnels hold %d buffers, %d bytes; want at most %d of %d bytes",
			tunnels, n, b, want, maxRecordPlaintext+headroom)
	}
	if onLoop {
		if !rl.tunnels.loops[0].isRunning() {
			t.Error("no event loop runs the TLS tunnels")
		}
	}
	for i, c := range conns {
		if i%2 == 0 {
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, ""))
			if code := expectClose(t, c); code != 4001 {
				t.Errorf("tunnel %d: close code %d, want 4001 echoed", i, code)
			}
		}
		c.Close()
		if res := rl.result(t); res.BytesReceived < 65536 || res.BytesSent < 65536 {
			t.Errorf("tunnel %d: result %+v", i, res)
		}
	}
}
