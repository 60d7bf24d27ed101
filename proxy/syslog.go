package proxy

import (
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"ngxsockify/nginxconf"
)

// syslogWriter sends log lines to a "syslog:" target as nginx's
// ngx_syslog_send does: one datagram per line, without its newline, after
// the header "<PRI>Mmm dd hh:mm:ss hostname tag: ". The socket is opened
// on first use and again after a failed send; lines are lost, never
// queued, when the peer does not take them.
type syslogWriter struct {
	peer *nginxconf.SyslogPeer
	mu   sync.Mutex
	conn net.Conn
}

func newSyslogWriter(p *nginxconf.SyslogPeer) *syslogWriter { return &syslogWriter{peer: p} }

// syslogHostname is nginx's cycle hostname: gethostname, lower-cased.
var syslogHostname = sync.OnceValue(func() string {
	h, _ := os.Hostname()
	return strings.ToLower(h)
})

// send writes msg with the given severity (0 emerg .. 7 debug).
func (w *syslogWriter) send(severity int, msg []byte) {
	b := make([]byte, 0, 64+len(msg))
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(w.peer.Facility*8+max(severity, 0)), 10)
	b = append(b, '>')
	b = time.Now().AppendFormat(b, "Jan _2 15:04:05 ")
	if !w.peer.NoHostname {
		b = append(b, syslogHostname()...)
		b = append(b, ' ')
	}
	b = append(b, w.peer.Tag...)
	b = append(b, ": "...)
	b = append(b, msg...)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		c, err := net.Dial(w.peer.Network, w.peer.Addr)
		if err != nil {
			return
		}
		w.conn = c
	}
	if _, err := w.conn.Write(b); err != nil {
		w.conn.Close()
		w.conn = nil
	}
}
