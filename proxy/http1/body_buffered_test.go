package http1

import (
	"bufio"
	"io"
	"testing"
)

// blockingReader hands out its data once, then reports a read that would
// have waited for the client.
type blockingReader struct {
	t    *testing.T
	data string
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		r.t.Error("ReadBuffered waited for the client")
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestReadBuffered: after a chunk, what the connection holds of the next
// ones is read without framing, up to a chunk whose data or size line has
// not fully come, and nothing more is read from the connection.
func TestReadBuffered(t *testing.T) {
	c := &conn{params: DefaultParams()}
	c.rwc = nopConn{}
	src := &blockingReader{t: t, data: "5\r\n01234\r\n4\r\nmany\r\n3\r\nab"}
	b := &body{c: c, br: bufio.NewReader(src), chunked: true}
	buf := make([]byte, 64)
	n, err := b.Read(buf)
	if err != nil || string(buf[:n]) != "01234" {
		t.Fatalf("Read: %q, %v", buf[:n], err)
	}
	n, err = b.ReadBuffered(buf)
	if err != nil || string(buf[:n]) != "manyab" {
		t.Errorf("ReadBuffered: %q, %v; want \"manyab\"", buf[:n], err)
	}
	if n, err = b.ReadBuffered(buf); n != 0 || err != nil {
		t.Errorf("ReadBuffered with nothing held: %d, %v", n, err)
	}
}
