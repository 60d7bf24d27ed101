// Package websockify relays WebSocket clients (noVNC and other websockify
// clients) to TCP targets, as nginx's websockify module does, without its bugs.
//
// # Handshake
//
// Serve checks the request: GET, an Upgrade header holding the token
// "websocket", a Connection header holding the token "upgrade" (both token
// lists, case-insensitive), Sec-WebSocket-Version 13 and a Sec-WebSocket-Key
// that is the base64 of 16 bytes, over HTTP/1.1. A wrong version answers 426 (Serve sets
// "Sec-WebSocket-Version: 13" in w.Header() for the caller's error page);
// anything else wrong answers 400. Origin is not checked (nginx does not).
//
// Subprotocols: "binary" anywhere in the offered list wins, then "base64".
// No Sec-WebSocket-Protocol at all (noVNC 1.2 and newer) means binary and the
// 101 carries no Sec-WebSocket-Protocol header. A list holding neither is 400.
// List items are trimmed of spaces and tabs.
//
// The target is dialled BEFORE the 101 is sent. A refused or unreachable
// target gives 502, a connect timeout 504.
//
// # Who writes the error response
//
// Serve never writes an error response: when it returns a Result whose Status
// is not 101, nothing has been written to w and the caller renders its error
// page for Result.Status (and logs Result.Err). When Status is 101 the
// connection was hijacked and the caller must not touch w or r again.
// Headers the caller set in w.Header() before calling Serve (for example
// Server, or headers from Lua hooks) are copied into the 101 response, except
// the ones the handshake owns (Upgrade, Connection, Sec-WebSocket-*,
// Content-Length, Transfer-Encoding).
//
// # Relay
//
// Every byte of every data frame from the client goes to the target (text and
// binary frames alike, continuation frames joined, frames of any length
// including 64-bit lengths and empty frames), and every byte from the target
// goes back in binary frames of at most Options.BufferSize bytes. Text frames
// are relayed like binary ones; their UTF-8 is not checked (the target gets
// bytes either way). Reads are
// coalesced: one read from a socket may carry many frames and gives one write
// to the other socket. Pings are answered at once with a pong carrying the
// same payload.
//
// In base64 mode the frames to the client are text frames holding padded
// base64; the data frames from the client are base64 text, decoded as they
// stream in; padding is accepted at the end of any frame or message, and a
// message may also end without padding. Invalid base64 closes the tunnel with
// status 1007, CloseInvalidFramePayloadData. Python websockify 0.10 dropped
// base64 support, so there is no websockify behaviour to copy here; 1007 is
// the RFC 6455 code for payload that does not match the message type.
//
// # Close codes
//
// The status codes the relay sends are constants named after RFC 6455
// section 7.4.1: CloseNormalClosure (1000) when the target closes its side,
// CloseGoingAway (1001) on Tunnels.Shutdown and on the idle timeout,
// CloseProtocolError (1002) on a protocol error from the client,
// CloseInvalidFramePayloadData (1007) on invalid base64, CloseInternalError
// (1011) on other errors (a failed read from or write to the target, a send
// timeout towards it). A failed write to the client (or a send timeout
// towards it) ends the tunnel without a close frame. A close frame from the
// client is answered with the same status code (CloseNormalClosure if it
// has none, CloseProtocolError if that code may not be sent) and ends the
// tunnel. After the relay sends a close
// frame it waits up to closeGrace for the client's answer, then closes the
// socket.
//
// # Timeouts and memory
//
// ConnectTimeout bounds the dial. ReadTimeout is the idle timeout of the
// whole tunnel: data in either direction re-arms it. SendTimeout bounds a
// write that blocks in either direction. PingInterval (off by default)
// sends the client a ping frame after that long without data, and again
// after each unanswered interval; a pong is data, so a client that
// answers keeps its tunnel, and one that does not meets ReadTimeout
// (policy.go's pingDeadline, on both engines).
//
// An idle tunnel holds no data buffer. On an event loop (below) a tunnel
// reads into the loop's one shared buffer and keeps bytes only when a socket
// does not take them at once (at most one read's worth per direction, until
// they drain). On the goroutine relay, sockets (syscall.Conn) are read with
// non-blocking syscalls on Unix systems (rawio_unix.go), a pool buffer taken
// only when data arrives; connections that are not syscall.Conn (TLS), and
// every connection on Windows, hold one buffer per direction while blocked. Serve also drops the 8 KiB of bufio buffers that net/http
// hands over with the hijacked connection, and ServeAsync returns once the
// tunnel runs, so the net/http handler goroutine and its request are freed.
// A tunnel on an event loop keeps no net.Conn, only the loop's descriptors.
// After a burst of handshakes (256 or more) has been quiet for a second,
// Tunnels returns the burst's garbage to the system at once
// (debug.FreeOSMemory), instead of letting the heap keep it until a
// collection an idle server may not run for minutes (tunnels.go).
//
// # Why not gorilla/websocket
//
// The framing is this package's own (frame.go, about 300 lines, fuzzed:
// FuzzParser checks that output does not depend on how reads split frames).
// gorilla's Conn keeps its bufio read buffer for the connection's lifetime
// and reads one frame at a time; here a read takes whatever the socket holds
// (many small frames), unmasks and compacts the payload in place and writes
// it with one syscall, and an idle tunnel holds no buffer at all. Against a
// relay built on gorilla's Upgrader (with a write buffer pool), NextReader
// and WriteMessage (bench_test.go, BenchmarkGorilla*), with client, relay
// and target in one process on the 2-core machine: 1.3 against 1.5 GB/s
// download, 0.61 against 0.61 GB/s 64 KiB echo, 0.20 against 0.24 GB/s
// 1 KiB echo, and an idle tunnel costs 0.7 KiB of heap and stack instead of
// 92 KiB (gorilla's reader plus a blocked read buffer). The in-process round
// trip is 61 µs against 32: when the client and the target are goroutines
// of the same process, gorilla's relay never leaves Go's scheduler, while
// the event loop (below) sleeps in its own epoll_wait. Across processes, as
// deployed and as cmd/ngxsockify-bench measures, it is the other way round:
// the loop halves the round trip of the goroutine relay.
//
// # Two engines, one policy
//
// A tunnel runs on one of two engines: an event loop (Linux only) or the
// goroutine relay (every system; the only one elsewhere). They move bytes
// differently, but every rule about what those bytes and failures mean
// lives once, in policy.go, and both engines call it: which close code a
// cause gets (closeCode), what a target read's end or error does
// (targetEnded), what a failed write to either side does
// (targetWriteFailed, clientWriteFailed), how much a target read takes
// (targetReadSize, less in base64 mode), when a tunnel is idle
// (idleDeadline), how long a close waits (closeGraceWait, closeSendWait),
// and how client bytes reach the frame parser (clientData, clientGone,
// takePending). The frame parser itself (frame.go) is shared too.
//
// # Event loops
//
// On Linux, when Serve is given a Tunnels and both the client and the
// target are plain sockets (TCP or unix, possibly under wrappers that
// expose them with NetConn), or the client is a *tls.Conn over an
// IORedirector (the loop then reads the socket and crypto/tls decrypts from
// memory, see tlsInput), the tunnel runs on one of the Tunnels' event loops (SetLoops,
// nginx's worker_processes): a goroutine that owns an epoll set
// (edge-triggered) holding the descriptors of all its tunnels and does
// every read and write itself with non-blocking raw system calls, as an
// nginx worker does. A message then costs no goroutine wake-up and no
// hand-off between threads, and an idle tunnel costs its struct and two
// descriptors. The loop sleeps in Go's netpoller, where its epoll
// descriptor is registered (it is readable while it holds events), not in
// a blocking epoll_wait: a sleeping loop holds no thread, other goroutines
// wake it with an expired deadline on that descriptor (post), and the
// wake-up often runs on the waker's thread. The loops' socket calls are
// raw system calls (no entersyscall), except the first after a wake-up
// from the netpoller (the loop's epoll_wait, Listener's accept4): Go's
// system monitor, which preempts long-running goroutines, sleeps while
// the process is idle and wakes only on such a call, so work reaching an
// idle process through raw calls alone would leave it asleep, and
// goroutines that never yield (Lua hooks in an endless loop) would keep
// every P (rawsys_linux.go).
//
// # Connecting and accepting on the loops
//
// The loop that will relay a tunnel also makes its connect attempts
// (Dial, which proxy/upstream's servers go through): a raw non-blocking
// connect(), registered once in the loop's epoll set; EPOLLOUT (SO_ERROR on
// EPOLLERR) tells the outcome, the loop's timer heap the connect timeout.
// On loopback the connection is usually up when connect() returns, which a
// zero-timeout ppoll sees, and the handshake goes on at once. Connections
// accepted by Listener (the proxy wraps its TCP listeners) read their
// request without Go's netpoller: until their first bytes come they wait
// on the same loop, registered in its epoll set, and the tunnel takes the
// socket and its registration over. A handshake then cost about 16 system
// calls (strace) where it took 36 (the dial through Go's netpoller, and dup,
// epoll_ctl and close to move each socket into the loop), against the C
// module's 15. After its first bytes, a connection that waits (HTTP
// keep-alive, TLS) moves to Go's netpoller, and a tunnel takes it over with
// a dup as before. There its reads are Go's, but its writes stay raw calls
// (under its RawConn, which waits for room): on loopback a write that wakes
// the peer often gets the writer preempted inside write(), and Go's
// scheduler then hands the writer's P to another thread (perf probes on
// the small proxied GETs of test/bench/proxy.sh: 0.011 hand-offs per
// request, 0.002 with raw writes; the monitor's ticks 55% fewer,
// context switches 7% fewer). A tunnel starts without a post to its loop (beginQuiet):
// the handshake's goroutine registers the sockets itself, for reading only
// until a write falls short (a socket just written to is writable, which
// would wake the loop for nothing), and queues the loop's part, which the
// loop runs before it handles the sockets' first events; the start and
// those events (often the client's close) then take one wake-up of the
// loop. A handshake costs about 15 system calls (perf stat, the C module's
// 16). After handling events a loop polls
// for 50 µs before it sleeps: the answer to a round trip usually arrives
// within that window, which saves waking a sleeping thread (the largest part
// of the relay's latency on a virtual machine). A loop goroutine exits a second
// after its last tunnel ends. A loop also stops reading a client whose pongs
// pile up unread (maxPongBacklog), a rule the goroutine relay does not need:
// it writes each pong at once, within SendTimeout.
//
// The loop is built only on Linux (evloop_linux.go, epoll and eventfd). On
// other systems (macOS, Windows, the BSDs) evloop_other.go's loop takes no
// tunnel, so every tunnel runs on the goroutine relay, as with
// WEBSOCKIFY_RELAY=goroutines in the tests.
//
// # Goroutines
//
// Tunnels that cannot go on an event loop (TLS over a connection that is
// not an IORedirector, Serve without Tunnels, any tunnel on a system other
// than Linux) get two goroutines: copyToBackend (client frames to the target;
// it owns the frame parser and answers pings and closes) and copyFromBackend
// (target bytes to client frames). Writes to the client are serialised by a
// mutex. Serve runs copyToBackend on the caller's goroutine; ServeAsync
// starts both. The last of the two to finish closes both sockets, removes
// the tunnel from its Tunnels and reports the Result. No goroutine outlives
// the tunnel.
//
// A tunnel on an event loop reports its end (ServeAsync's done) from a
// goroutine of its loop's reporters (report.go), so that the loop never
// waits for the caller's logging: after each round of events the loop
// hands the tunnels that ended in it to a goroutine waiting for them
// (proxy/internal/handoff), which keeps its grown stack between rounds; a
// loop that stops lets its waiting reporters exit. A done that only
// counts (Options.DoneOnLoop: the proxy sets it for a tunnel with no
// access-log line and no cleanups) runs on the loop itself, which saves
// the reporter's wake-up (about 0.1 to 0.2 goroutine wake-ups per
// handshake under the handshake bench).
package websockify
