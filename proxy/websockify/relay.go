package websockify

import (
	"net"
	"net/http"
)

// Relay relays an upgraded connection (a WebSocket or another protocol
// after proxy_pass's 101): the bytes both ways as they are, on an event
// loop when both sides are plain sockets (else on the goroutine relay),
// until either side closes (what the other sent is delivered first), nothing
// moved either way for o.ReadTimeout, a write is blocked for o.SendTimeout,
// or ts shuts down. It returns when the relay is over, having closed both
// connections; Result.BytesSent and BytesReceived count the bytes written
// to and read from client, Err says why it ended (nil: a side closed).
// The tunnel is one of ts's (counted, drained and shut down with the
// websockify tunnels); ts may be nil.
func Relay(client, target net.Conn, o Options, ts *Tunnels) Result {
	o = o.withDefaults()
	o.PingInterval = 0
	t := newTunnel(nil, client, target, o, false, ts)
	t.raw = true
	t.done = make(chan struct{})
	var final Result
	t.onDone = func(r Result) { final = r }
	if ts != nil && ts.closing.Load() {
		client.Close()
		target.Close()
		return Result{Status: http.StatusSwitchingProtocols, Err: ErrShutdown}
	}
	if err := ts.prepare(t); err != nil {
		client.Close()
		target.Close()
		return Result{Status: http.StatusSwitchingProtocols, Err: err}
	}
	if t.ev != nil {
		if !ts.add(t, func() { t.ev.l.begin(t) }) {
			t.ev.discard(t, nil)
			return Result{Status: http.StatusSwitchingProtocols, Err: ErrShutdown}
		}
	} else {
		t.onGoroutines()
		if ts != nil && !ts.add(t, nil) {
			client.Close()
			target.Close()
			return Result{Status: http.StatusSwitchingProtocols, Err: ErrShutdown}
		}
		t.arm()
		go t.copyFromBackend()
		t.copyToBackend()
	}
	<-t.done
	return final
}
