package proxy

import (
	"net"
	"net/http"
	"time"

	"ngxsockify/proxy/proxypass"
	"ngxsockify/proxy/websockify"
)

// upgradeHeadTimeout bounds the write of the 101 to the client (nginx's
// send_timeout default).
const upgradeHeadTimeout = 60 * time.Second

// proxyUpgrade relays an upgraded connection (WebSocket and the like
// through proxy_pass) after the backend's 101, as nginx's upgraded mode
// does: the 101 with the backend's headers (Connection: upgrade), then the
// bytes both ways until either side closes or nothing moved for
// proxy_read_timeout. The relay runs on the websockify event loops
// (websockify.Relay, raw bytes both ways; goroutines when a side is TLS),
// as one of the server's tunnels: reload and graceful stop count and drain
// it like a websockify tunnel. The handler waits for its end, so that the
// access-log line is written then.
func (rq *request) proxyUpgrade(backend net.Conn, res *proxypass.Response) {
	client, brw := rq.hijackClient()
	if client == nil {
		return
	}
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

	client.SetWriteDeadline(time.Now().Add(upgradeHeadTimeout))
	n, err := client.Write(head)
	rq.w.bytes = max(0, int64(n)-headLen) // $body_bytes_sent: what followed the 101
	if err != nil {
		client.Close()
		return
	}
	client.SetWriteDeadline(time.Time{})
	if n := brw.Reader.Buffered(); n > 0 { // the client spoke first
		b, _ := brw.Reader.Peek(n)
		backend.SetWriteDeadline(time.Now().Add(rq.conf.ProxySendTimeout))
		if _, err := backend.Write(b); err != nil {
			client.Close()
			return
		}
		backend.SetWriteDeadline(time.Time{})
	}
	idle := rq.conf.ProxyReadTimeout
	end := websockify.Relay(client, backend, websockify.Options{ReadTimeout: idle, SendTimeout: idle,
		Logger: rq.errorLog().Slog()}, rq.s.tunnels)
	rq.w.bytes += end.BytesSent
	// The connection layer saw none of it (hijacked): the log phase takes
	// $body_bytes_sent from rq.w.bytes, as nginx counts it.
	rq.wire = nil
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
