package http1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"ngxsockify/netpeek"
)

// TestWatchClose: a client that closes while the handler waits is
// reported; one that sends its next request meanwhile is not, and that
// request is still served on the connection.
func TestWatchClose(t *testing.T) {
	gone := make(chan error, 2)
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		stop := w.(*response).WatchClose(func(err error) { gone <- err })
		time.Sleep(300 * time.Millisecond)
		stop()
		io.WriteString(w, "ok")
	})

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case err := <-gone:
		if !errors.Is(err, io.EOF) {
			t.Errorf("gone with %v, want EOF", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the close was not seen")
	}

	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	io.WriteString(c, "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(c)
	for i := 0; i < 2; i++ {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		io.ReadAll(res.Body)
	}
	select {
	case err := <-gone:
		t.Errorf("a pipelined request was taken for a close: %v", err)
	default:
	}
}

// TestWatchCloseAgain: a connection's watches follow each other, in a
// request and over requests, and a stop called twice does nothing the
// second time: none hangs, none reports a close.
func TestWatchCloseAgain(t *testing.T) {
	gone := make(chan error, 4)
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		wc := w.(*response)
		stop1 := wc.WatchClose(func(err error) { gone <- err })
		stop1()
		stop2 := wc.WatchClose(func(err error) { gone <- err })
		stop2()
		stop1()
		stop3 := wc.WatchClose(func(err error) { gone <- err })
		time.Sleep(20 * time.Millisecond)
		stop3()
		io.WriteString(w, "ok")
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for i := 0; i < 3; i++ {
		io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		io.ReadAll(res.Body)
	}
	select {
	case err := <-gone:
		t.Errorf("a stopped watch reported %v", err)
	default:
	}
}

// TestGone: Gone is false while nothing watches, even for a client that
// has closed; under a watch it turns true once the client closes, and a
// socket with a byte waiting is not taken for a closed one.
func TestGone(t *testing.T) {
	states := make(chan []bool, 1)
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		rw := w.(*response)
		got := []bool{rw.Gone()}
		stop := rw.WatchClose(func(error) {})
		got = append(got, rw.Gone())
		deadline := time.Now().Add(2 * time.Second)
		for !rw.Gone() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		got = append(got, rw.Gone())
		stop()
		states <- got
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	c.Close()
	select {
	case got := <-states:
		if got[0] || got[1] || !got[2] {
			t.Errorf("Gone before the watch, under it, after the close: %v, want [false false true]", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not end")
	}

	a, b := tcpPair(t)
	if netpeek.Closed(b) {
		t.Error("an open socket is closed")
	}
	a.Write([]byte("x"))
	a.Close()
	time.Sleep(50 * time.Millisecond)
	if netpeek.Closed(b) {
		t.Error("a socket with a byte waiting is closed")
	}
	io.ReadFull(b, make([]byte, 1))
	if !netpeek.Closed(b) {
		t.Error("a socket whose peer closed is open")
	}
}

// tcpPair is a connected pair of loopback sockets.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}
