// Package luahooks runs nginx Lua hooks (access_by_lua*, rewrite_by_lua*,
// content_by_lua*, set_by_lua*, header_filter_by_lua*,
// body_filter_by_lua*, log_by_lua*, init_by_lua*) on gopher-lua with an
// ngx.* API that behaves like lua-nginx-module 0.10.23 (OpenResty) on
// nginx 1.22.
//
// # Lifecycle
//
// At config load the caller creates one Runtime (New) and compiles every
// hook once: CompileInline for *_by_lua / *_by_lua_block code, CompileFile
// for *_by_lua_file. A chunk whose code does not load is still returned
// (with a *LoadError): it answers like nginx at request time (500, or 404
// for a missing file), because nginx -t does not compile Lua either.
// init_by_lua* chunks go through RunInit; an error there must stop startup.
// init_worker_by_lua* goes through RunInitWorker: its error is logged and
// the server starts, as nginx's worker goes on. exit_worker_by_lua*
// goes through RunExitWorker, before Close.
//
// Per request the caller builds one Request (HTTP, Vars, RespHeader) and
// passes the SAME Request to Run for every phase, so ngx.ctx survives
// between phases. Settings nginx keeps per location live on the Request,
// and the caller sets them from the current location before each run:
// ClientMaxBodySize (client_max_body_size), ClientBodyBufferSize
// (client_body_buffer_size), DefaultType. Options holds only what is
// process-wide (paths, shared dicts, env, time and memory limits). For
// lua_need_request_body the caller calls ReadBody before the rewrite,
// access and content chunks; a body it refuses makes the next of those
// runs answer (413) without running the chunk. Run returns an Outcome: Continue, Respond (ngx.say /
// ngx.print output or ngx.exit(2xx)), ErrorPage (ngx.exit(>=300), runtime
// errors with Err set), Redirect (ngx.redirect) or Close (ngx.exit(444),
// ngx.exit(499), ngx.ERROR). Request.Status holds ngx.status afterwards and
// Request.RespHeader holds ngx.header writes. body_filter_by_lua chunks
// run through RunBodyFilter, once per piece of the response body and once
// more at its end, with ngx.arg[1] and ngx.arg[2] as in nginx.
//
// Chunk names follow lua-nginx-module: "access_by_lua(nginx.conf:25)" where
// 25 is the line nginx reports: for *_by_lua_block the line of the
// directive, for *_by_lua '...' the line where the directive ends. Files
// are named by their path (Lua's short_src). Runtime errors read "lua entry
// thread aborted: runtime error: access_by_lua(nginx.conf:25):4: boom";
// luahooks does not log them itself, the caller does.
//
// # Sandbox and concurrency
//
// A Runtime keeps a pool of Lua states (gopher-lua LState is not
// goroutine-safe; each run owns one state). Chunks are compiled once to a
// FunctionProto and instantiated per state. Every state has: the base
// library without dofile/loadfile, with LuaJIT's tonumber ("1e2", hex,
// bases) and %.14g number formatting in tostring/string.format/ngx.say;
// package (require of plain Lua files through lua_package_path, ";;" is the
// default path, "$prefix" the prefix; compiled once per process); table;
// string (string.rep with separator; find, match, gmatch and gsub use our
// own matcher of Lua 5.1 patterns as LuaJIT has them, lpattern.go); math; coroutine; io and os
// as LuaJIT 2.1 has them (iolib.go: failures return nil, "<name>:
// <strerror>", errno; os.execute the raw wait status; waiting for a child
// process or a terminal does not count against the time limit), with
// getenv seeing only Options.Env and TZ, like nginx's cleared environment,
// which children of os.execute and io.popen also get, and os.exit refused
// (in nginx it ends one worker process; here it would end the server);
// LuaJIT's bit; cjson and cjson.safe; debug with only getinfo and
// traceback. No C modules, no bytecode.
//
// Each run has a deadline (Options.Timeout, default 1s): a runaway loop is
// stopped and answers 500. ngx.exit and ngx.redirect cancel the run's
// context; gopher-lua checks it before every instruction, so pcall cannot
// swallow them (pcall(ngx.exit, 403) answers 403, as in OpenResty). The
// pattern functions run inside one Go call, out of the VM's reach: they
// check the context every 4096 match steps themselves, so a backtracking
// pattern (the trim idiom on a long header of spaces) also ends at the
// deadline with 500.
//
// Shared dictionaries (lua_shared_dict) are Go maps behind a mutex, shared
// by all states and safe for concurrent use. Their entries are counted in
// a model of nginx's slab allocator of the zone's size (slab.go) and kept
// in nginx's LRU queue, so a zone holds as many entries as nginx's, a full
// zone evicts the same ones, and free_space and get_keys answer alike.
// A zone outlives a reload when its name and size stay
// (Options.KeepShared), as nginx keeps a shared memory zone.
//
// # ngx API
//
// ngx.var (through VarStore), ngx.ctx, ngx.status, ngx.header, ngx.arg;
// ngx.req.get_uri_args, set_uri_args, get_headers, set_header, clear_header,
// get_method, set_method, http_version, start_time, raw_header, read_body,
// discard_body, get_body_data, get_body_file (a body nginx would keep in
// a temp file is written to one on the first call), get_post_args,
// set_body_data, init_body, append_body, finish_body, set_uri (a jump in
// rewrite_by_lua: Outcome.URIJump),
// is_internal;
// ngx.exit, say, print, flush, eof, send_headers, redirect, exec (Action
// Exec: the caller redirects internally), sleep, log and print();
// ngx.resp.get_headers;
// ngx.time, now, today, localtime, utctime, update_time, http_time,
// cookie_time, parse_http_time; ngx.md5, md5_bin, sha1_bin, hmac_sha1,
// crc32_short, crc32_long, encode_base64, decode_base64, escape_uri,
// unescape_uri, encode_args, decode_args, quote_sql_str, get_phase,
// is_subrequest, headers_sent; ngx.re.match, find, gmatch, sub, gsub (PCRE
// semantics on regexp2, options a i j o x s m u d D J); ngx.shared.DICT
// get, get_stale, set, safe_set, add, safe_add, replace, incr, delete, ttl,
// expire, get_keys, flush_all, flush_expired, capacity, free_space;
// ngx.worker.pid/id/count/exiting; ngx.config.prefix, nginx_version,
// ngx_lua_version, subsystem, debug; ngx.null; the ngx.HTTP_*, log level
// and ngx.OK/ERROR/AGAIN/DONE/DECLINED constants.
//
// ngx.location.capture and capture_multi call Request.Capture (the server
// runs the subrequests through its locations, capture_multi's side by
// side, each starting when the one before it waits: Request.OnWait tells
// it; the wait does not count against the run's time limit;
// Subrequest.Prepare and the
// ShareVars/CopyVars/Vars fields carry the ctx, share_all_vars,
// copy_all_vars and vars options); without it they raise.
// require "ngx.re" gives split (and a no-op opt), require "ngx.base64"
// gives encode_base64url/decode_base64url, as lua-resty-core does.
// lua-resty-string's modules, which are FFI over OpenSSL in OpenResty, are
// Go-native under both OpenResty's names and Debian's (resty.string and
// nginx.string, resty.md5 .. resty.sha512, resty.random, resty.aes;
// resty_string.go). require "resty.core" answers a table and does nothing
// (our ngx.* is built in); require "ffi" gives byte buffers only (ffi.new
// of char[?], ffi.string, ffi.sizeof: what resty.websocket uses) and any
// other use raises an error naming the field (ffi.go); type() says "cdata"
// for those buffers as LuaJIT does; table.new and table.clear are
// LuaJIT's. require "ngx.ssl" is lua-resty-core's, for
// ssl_certificate_by_lua* (ssl_cert.go).
//
// ngx.socket.tcp is OpenResty's cosocket (cosocket.go): connect (host and
// port through the location's `resolver`, or "unix:path"; the pool
// option), sslhandshake (cosocket_tls.go: verifying with
// lua_ssl_trusted_certificate, offering lua_ssl_protocols and
// lua_ssl_ciphers, resuming a session passed back),
// send, receive ("*l", "*a", a size), receiveany, receiveuntil (with
// inclusive), settimeout(s), setkeepalive (a pool per runtime, keyed by
// host:port or the pool name, with its size and idle timeout),
// getreusedtimes, close and setoption, with OpenResty's results and error
// strings. An operation blocks the request's goroutine within the socket's
// timeouts. The rule for the run's time limit (Options.Timeout): it counts
// running Lua only; waiting on a socket or in ngx.sleep pauses it. A socket
// not put in the pool is closed when the run that opened it ends
// (OpenResty: when the request ends), so a socket cannot be carried from
// one phase to the next in ngx.ctx. Debian's lua-nginx-redis runs on it
// unchanged (test/redis_test.go). ngx.req.socket() reads the request body
// through the same reading methods (receive, receiveany, receiveuntil), as
// lua-resty-upload does. ngx.req.socket(true) is the client connection
// itself (Request.RawSocket: the caller hands it over, with what the
// client sent after the request head), for resty.websocket.server: it
// sends and receives raw bytes, and ngx.say and the other output functions
// answer nil, "raw request socket acquired" from then on.
//
// ngx.timer.at and ngx.timer.every run their callback later on the state
// that created it (timer.go: a callback may use that state's upvalues),
// on a coroutine of its own, whenever the state is free: no run uses it,
// or the runs that do all wait. A state is one worker's Lua VM in that
// respect: its runs pass the state on as they wait (state.busy is the
// baton), so a timer a request creates runs while that request sleeps or
// waits on a socket, and the request goes on while the timer waits, as in
// nginx. A state with pending timers is not closed. A timer's log lines
// carry its creator's client and listening addresses (Request.TimerLog).
// An every-timer's next run is armed when a run expires, before its
// callback runs, as lua-nginx-module copies the timer then: a callback
// longer than the interval overlaps the next one.
// running_count and pending_count count them, with
// lua_max_pending_timers' 1024 and lua_max_running_timers' 256. A
// callback's error or timeout is logged with ", context: ngx.timer"; the
// APIs a timer has no request for raise "API disabled in the context of
// ngx.timer". Closing the runtime (reload, stop) runs pending timers at once
// with premature = true and makes ngx.worker.exiting() true.
// ngx.socket.udp has setpeername (host and port, or "unix:path"), send,
// receive, settimeout and close (cosocket_udp.go).
//
// # Light threads
//
// ngx.thread.spawn, wait and kill (thread.go) run as OpenResty's: a
// spawned thread runs at once until it ends or first waits, then its
// parent goes on; threads whose waits end go on in turn; the run ends
// when the entry thread and every user thread have ended (ngx.exit in any
// thread, an error in the entry thread or the time limit ends them all; an
// error in a user thread is logged as "lua user thread aborted" and ends
// that thread only). gopher-lua cannot yield across pcall or a Go
// function, which OpenResty code does (a cosocket call inside pcall), so
// a light thread is a goroutine and the run's threads pass a baton: only
// the holder runs Lua. Every wait (cosockets, ngx.sleep, ngx.thread.wait,
// semaphores) hands the baton on and blocks its goroutine, so the threads
// of one request wait on the network at once. A run without threads has
// no scheduler and waits on its own goroutine. coroutine.running() in the
// entry thread is the entry thread, coroutine.status of a user thread is
// "running", "zombie" (ended, not waited for) or "dead", and
// coroutine.yield() at the top of a light thread lets the others run and
// gives one nil. A wait cannot yield in a module's body (require) nor in
// xpcall's handler: it raises "attempt to yield across C-call boundary",
// as LuaJIT. With lua_check_client_abort on (Request.WatchClient; nil
// means off, and on_abort says "lua_check_client_abort is off"), a run
// whose threads all wait watches the client: when it goes away, the
// handler ngx.on_abort registered runs as a user thread, or, without one,
// the run ends (Close 499), as nginx does.
// require "ngx.semaphore" (semaphore.go) gives new, post, wait (a wait as
// above, with its timeout) and count; a semaphore created while a
// module's body or init_by_lua runs is shared by all the runtime's states
// (keyed by where it was created), as a worker's is in OpenResty. require
// "ngx.process" gives type() ("single": one process is master and worker,
// as nginx with master_process off) and get_master_pid; the privileged
// agent and signal_graceful_exit are refused.
//
// Output is streamed as nginx's write filter does it: ngx.flush (and
// ngx.eof) hand what the hook printed so far to Request.Flush, and so does
// a wait with postpone_output's 1460 bytes or more pending; less than that
// waits for the end, as in nginx. HTTP/1.0 output stays buffered
// (lua_http10_buffering).
//
// # Worker threads
//
// ngx.run_worker_thread (worker_thread.go) runs module.func(args...) in a
// Lua state of its own, one of a runtime's pool of such states
// (Options.WorkerThreadVMs), on a goroutine, at most the named pool's
// threads at once (Options.ThreadPools, from thread_pool); the caller
// waits as on a cosocket. Arguments and results are copied between the
// states with lua-nginx-module's checks and error words. A worker state
// has the same libraries (io and os included) and a reduced ngx (string, hash and base64
// functions, ngx.re, ngx.config, ngx.shared), keeps its globals and
// modules between calls, and each call is bounded by Options.Timeout.
//
// # Known differences from lua-nginx-module
//
//   - Globals and modules (package.loaded) live in each pooled state,
//     not once per worker. A run takes the state the last run to end left
//     (the idle states are a stack), so requests that do not overlap run
//     on one state and see the globals and modules the earlier ones left,
//     as in nginx. Runs that overlap (concurrent requests, a filter or
//     subrequest that runs while another run of the request waits, the
//     subrequests of capture_multi) run on different states: a global one
//     of them writes, a module's table it changes, a module-level object
//     (a cosocket a module keeps) is not seen by the others, and a
//     module's top level runs once per state. init_by_lua* is replayed in
//     every new state for its globals; its shared-dict writes and log
//     lines are not repeated.
//   - Non-integer numbers concatenated with ".." use Go's shortest form
//     ("0.3333333333333333"); tostring, string.format, ngx.say, ngx.log,
//     cjson and ngx.var writes use LuaJIT's %.14g.
//   - Runtime errors use LuaJIT's wording. A failed call or indexing
//     names the value as LuaJIT does ("attempt to call field 'echo' (a nil
//     value)", "local 't'") when its line holds one candidate, or several
//     in different functions (errnames.go); a line with two calls that
//     could have failed keeps the anonymous form ("attempt to call a nil
//     value"), and a call's value is always said to be nil.
//   - No os.exit (an error), no debug but getinfo and traceback, no ffi
//     beyond byte buffers, no C modules. io's files are not buffered by
//     the library (a write is in the file at once), io.lines(name)'s file
//     is closed at its end only, and io.popen's close reports ECHILD when
//     the child ended before it (nginx's SIGCHLD handler reaps it first,
//     most of the time; true otherwise). init_by_lua is replayed in every
//     new pooled state to rebuild its globals, so its io and os side
//     effects repeat there: a command it runs runs again, a file it opens
//     with "w" (io.output(name) too) is truncated again; nginx runs it once
//     in the master.
//   - The headers leave at the first output (Request.SendHeaders); nginx
//     holds them with the first postpone_output bytes. A runtime error
//     after output gives Close with the output not flushed yet (nginx
//     had streamed it, then aborted).
//   - coroutine.yield() at the top of several light threads resumes them
//     in the order they yielded; OpenResty's posted-thread order differs
//     when more than one thread yields by hand.
//   - ngx.thread.wait on a thread that failed gives false, error()'s
//     message without its position, then the error value: what LuaJIT
//     leaves on the thread's stack for error("msg"); other errors differ.
//   - Request bodies stay in memory (get_body_file writes a copy, in
//     client_body_temp_path when set, named as nginx's), so
//     client_max_body_size 0 lets a chunked body take any amount of
//     memory. Bodies nginx would write to a temp file give nil from
//     get_body_data, as in nginx: under client_body_in_file_only, and
//     over client_body_buffer_size (8k by
//     default) for chunked bodies, over a quarter more for a declared
//     length. nginx also keeps what it read with the header in memory, so
//     it keeps a little more than that.
//   - ngx.req.read_body counts a chunked body against client_max_body_size
//     as it reads (413 past it, as nginx), but net/http hides the chunk
//     framing: in "client intended to send too large chunked body: N+M
//     bytes" N+M is the bytes before the read that crossed the limit plus
//     that read, where nginx gives the preceding chunks plus the crossing
//     chunk's size. A declared length over the limit is refused when the
//     location is picked (the caller's job), not by read_body, as nginx.
//   - ngx.re runs on regexp2. Every pattern goes through the translator of
//     nginx.conf regexes (vars.CompilePCRE) in PCRE 8.x's dialect, which
//     Debian's lua-nginx-module links: "u" and "x" are its UTF8 and
//     Extended options. \K, \C, \X, recursion, (?|...), (*VERB)s and
//     duplicate names ((?J)) are refused; each match is bounded to 1s.
//     With "U" a search never starts inside a character (PCRE's is
//     undefined there).
//   - Each run is bounded by Options.Timeout (nginx has no limit), and
//     running hooks stop with "not enough memory" when the Go heap passes
//     Options.MemoryLimit (default 2 GiB; memguard.go).
//   - ngx.header names keep the spelling a hook gives them, but the
//     headers the server reads itself (Content-Type, Location, ETag, ...)
//     are canonical; ngx.req.get_headers lists the client's headers in the
//     order and spelling they came (then those a hook added, sorted), and
//     ngx.resp.get_headers sorts by name.
//   - Identifiers with bytes >= 0x80 (UTF-8 names, which LuaJIT takes) are
//     renamed to ASCII before gopher-lua parses them (lexer.go): such a
//     global is not _G["name"].
//   - Argument errors of standard-library functions carry a position and
//     gopher-lua's function naming ("bad argument #1 to (anonymous)").
//   - A Go function (ngx.say, ...) stored in ngx.ctx and called in a later
//     phase that runs on another pooled state acts on the state that
//     created it.
//
// # lua-nginx-module test blocks left out on purpose
//
// The issue "behave like nginx on the wire" measures luahooks with
// lua-nginx-module's own tests (test/suites, make lua-tests). Cosockets,
// timers, ngx.sleep, light threads and log_by_lua were not goals of that
// issue; the Lua ecosystem issue built them since (cosocket.go, timer.go,
// thread.go), so many of the blocks below pass now. The list was made when
// they all failed, and is kept as the record of what that issue left out
// (lua_check_client_abort is read since; blocks the runner skips on both
// servers for their echo, memc, ... directives are not listed):
//
//	102-req-start-time.t        sleep 3,4
//	043-shdict.t                sleep 45,46,51,55,60
//	044-req-body.t              cosocket 38-41; log_by_lua 49
//	104-req-raw-header.t        cosocket 35
//	023-rewrite/client-abort.t  cosocket 10-19; sleep 1-3,6,8,9,21; thread 7,20
//	023-rewrite/on-abort.t      cosocket 7; sleep 1,2,8,10-13; thread 9
//	023-rewrite/redirect.t      sleep 8
//	023-rewrite/req-socket.t    cosocket 1-7
//	023-rewrite/sleep.t         sleep 1-5
//	023-rewrite/socket-keepalive.t  cosocket 1,2
//	023-rewrite/tcp-socket-timeout.t  cosocket 1-15
//	023-rewrite/tcp-socket.t    cosocket 3-6,8,9,17,19-21
//	023-rewrite/unix-socket.t   cosocket 1
//	023-rewrite/uthread-exit.t  cosocket 5-11; sleep 1-4,12
//	023-rewrite/uthread-redirect.t  sleep 2
//	023-rewrite/uthread-spawn.t cosocket 20,21,23; sleep 3,4,11,12,14; thread 1,2,5,10,13,15-19,22,24-27
//	024-access/client-abort.t   cosocket 10-19; sleep 1-3,6,8,9,21; thread 7,20
//	024-access/on-abort.t       cosocket 7; sleep 1,2,8,10-13; thread 9
//	024-access/sleep.t          sleep 1-5
//	024-access/uthread-exit.t   cosocket 5-11; sleep 1-4,12
//	024-access/uthread-redirect.t  sleep 2
//	024-access/uthread-spawn.t  cosocket 20,21,23; sleep 3,4,11,12,14; thread 1,2,5,10,13,15-19,22
//
// Other causes found there and left to other issues: proxy_pass and
// upstream behaviour (020-subrequest.t 33-36; 016-resp-header.t 80-84,
// 94, 96), gzip, HTTP/0.9 and malformed request lines (028-req-header.t
// 17, 18, 42, 43, 54-56), lua_regex_match_limit (PCRE's
// match() count has no regexp2 equivalent: 034-match.t 45, 035-gmatch.t
// 30, 036-sub.t 28, 037-gsub.t 23).
package luahooks
