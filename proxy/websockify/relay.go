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
	end := make(chan Result, 1)
	if res, ok := RelayAsync(client, target, o, ts, func(r Result) { end <- r }); !ok {
		return res
	}
	return <-end
}

// RelayAsync is Relay returning as soon as the relay runs, as ServeAsync
// is Serve's: done is called once, from another goroutine, with the final
// Result. The caller's goroutine, its stack and what it references are then
// not held for the connection's lifetime. When the relay cannot start (ts
// shuts down, or the sockets cannot be taken over) RelayAsync closes both
// connections and returns the Result and false; done is not called then.
func RelayAsync(client, target net.Conn, o Options, ts *Tunnels, done func(Result)) (Result, bool) {
	o = o.withDefaults()
	o.PingInterval = 0
	t := newTunnel(nil, client, target, o, false, ts)
	t.raw = true
	t.onDone = done
	fail := func(err error) (Result, bool) {
		client.Close()
		target.Close()
		return Result{Status: http.StatusSwitchingProtocols, Err: err}, false
	}
	if ts != nil && ts.closing.Load() {
		return fail(ErrShutdown)
	}
	if err := ts.prepare(t); err != nil {
		return fail(err)
	}
	if t.ev != nil {
		if !ts.add(t, func() { t.ev.l.begin(t) }) {
			t.ev.discard(t, nil)
			return Result{Status: http.StatusSwitchingProtocols, Err: ErrShutdown}, false
		}
		return Result{Status: http.StatusSwitchingProtocols}, true
	}
	t.onGoroutines()
	if ts != nil && !ts.add(t, nil) {
		return fail(ErrShutdown)
	}
	t.arm()
	go t.copyFromBackend()
	go t.copyToBackend()
	return Result{Status: http.StatusSwitchingProtocols}, true
}
