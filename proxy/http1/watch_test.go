package http1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
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
