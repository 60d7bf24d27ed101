package proxy

import (
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"ngxsockify/proxy/proxypass"
)

// upgradeHeadTimeout bounds the write of the 101 to the client (nginx's
// send_timeout default).
const upgradeHeadTimeout = 60 * time.Second

// proxyUpgrade relays an upgraded connection (WebSocket and the like
// through proxy_pass) after the backend's 101, as nginx's upgraded mode
// does: the 101 with the backend's headers (Connection: upgrade), then the
// bytes both ways until either side closes or nothing moved for
// proxy_read_timeout. It runs on the handler's goroutine plus one copier
// (the websockify relay engines are not used: a bounded goroutine pair per
// upgraded connection); the access-log line is written when it ends.
func (rq *request) proxyUpgrade(backend net.Conn, res *proxypass.Response) {
	client, brw := rq.hijackClient()
	if client == nil {
		return
	}
	defer client.Close()
	rq.w.wrote, rq.w.status = true, http.StatusSwitchingProtocols
	rq.v.Status = http.StatusSwitchingProtocols

	head := []byte("HTTP/1.1 101 Switching Protocols\r\n")
	if rq.conf.ServerTokens {
		head = append(head, "Server: ngxsockify\r\n"...)
	}
	head = append(head, "Date: "...)
	head = append(head, time.Now().UTC().Format(http.TimeFormat)...)
	head = append(head, "\r\nConnection: upgrade\r\n"...)
	for _, f := range res.Fields {
		key := http.CanonicalHeaderKey(f.Name)
		if key != "Upgrade" && (proxypass.ResponseHopByHop[key] || rq.proxyHidden(key)) {
			continue
		}
		head = append(head, f.Name...)
		head = append(head, ": "...)
		head = append(head, f.Value...)
		head = append(head, "\r\n"...)
	}
	head = append(head, "\r\n"...)
	headLen := int64(len(head))
	head = append(head, res.Rest...)           // what the backend sent after its 101
	rq.w.Header().Set("Connection", "upgrade") // $sent_http_connection

	idle := rq.conf.ProxyReadTimeout
	var last atomic.Int64 // unix nanoseconds of the last byte either way
	last.Store(time.Now().UnixNano())
	toClient, toBackend := &upgradeCopier{dst: client, src: backend, last: &last, idle: idle},
		&upgradeCopier{dst: backend, src: client, last: &last, idle: idle}
	client.SetWriteDeadline(time.Now().Add(upgradeHeadTimeout))
	if _, err := client.Write(head); err != nil {
		return
	}
	toClient.n = int64(len(head))
	if n := brw.Reader.Buffered(); n > 0 { // the client spoke first
		b, _ := brw.Reader.Peek(n)
		backend.SetWriteDeadline(time.Now().Add(rq.conf.ProxySendTimeout))
		if _, err := backend.Write(b); err != nil {
			return
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		toBackend.run()
		client.Close()
		backend.Close()
	}()
	toClient.run()
	client.Close()
	backend.Close()
	wg.Wait()
	rq.w.bytes = toClient.n - headLen // $body_bytes_sent: what followed the 101
}

// proxyHidden reports whether a backend header is not passed:
// proxy_hide_header's and nginx's default list, unless proxy_pass_header
// names it.
func (rq *request) proxyHidden(key string) bool {
	for _, p := range rq.conf.ProxyPassHeaders {
		if p == key {
			return false
		}
	}
	for _, list := range [2][]string{proxypass.DefaultHidden, rq.conf.ProxyHideHeaders} {
		for _, n := range list {
			if n == key {
				return true
			}
		}
	}
	return false
}

// upgradeCopier copies one direction of an upgraded connection. A read
// times out only when neither direction moved for idle (nginx re-arms
// proxy_read_timeout on any activity).
type upgradeCopier struct {
	dst, src net.Conn
	last     *atomic.Int64
	idle     time.Duration
	n        int64 // bytes written to dst
}

func (c *upgradeCopier) run() {
	buf := make([]byte, 16*1024)
	for {
		c.src.SetReadDeadline(time.Unix(0, c.last.Load()).Add(c.idle))
		m, err := c.src.Read(buf)
		if m > 0 {
			c.last.Store(time.Now().UnixNano())
			c.dst.SetWriteDeadline(time.Now().Add(c.idle))
			w, werr := c.dst.Write(buf[:m])
			c.n += int64(w)
			if werr != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && time.Since(time.Unix(0, c.last.Load())) < c.idle {
				continue // the other direction moved meanwhile
			}
			return // EOF, a timeout or an error: the caller closes both
		}
	}
}
