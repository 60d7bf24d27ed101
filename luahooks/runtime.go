package luahooks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"ngxsockify/ngxlog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// DefaultTimeout bounds one run of a chunk when Options.Timeout is zero.
const DefaultTimeout = time.Second

// defaultClientBodyBufferSize is nginx's client_body_buffer_size on x86-64
// (two memory pages): larger bodies go to a temp file and
// ngx.req.get_body_data() returns nil.
const defaultClientBodyBufferSize = 8 << 10

// ClientBodyBufferZero is Request.ClientBodyBufferSize for
// client_body_buffer_size 0: ngx.req.init_body() then writes every append
// to the temp file. ngx.req.read_body keeps nginx's default then, as nginx
// keeps a body that came with the header in memory.
const ClientBodyBufferZero = -1

// Options configure a Runtime. The zero value is usable.
type Options struct {
	// Prefix is nginx's -p prefix. Relative *_by_lua_file paths resolve
	// against it and "$prefix" in PackagePath is replaced by it.
	Prefix string
	// ConfPrefix is nginx's conf prefix: the directory of the main config
	// file. Inline chunk names show config files relative to it
	// ("access_by_lua(sub/x.conf:2)") or in full when outside it
	// ("access_by_lua(/etc/nginx/sites-enabled/default:25)"). Empty means
	// base names only.
	ConfPrefix string
	// PackagePath is lua_package_path; ";;" stands for the default path.
	// Empty means the default path.
	PackagePath string
	// PackageCPath is lua_package_cpath. C modules cannot be loaded; the
	// value is only visible as package.cpath.
	PackageCPath string
	// LuaPathEnv and LuaCPathEnv are the LUA_PATH and LUA_CPATH
	// environment variables (nil when unset): LuaJIT builds the default
	// package.path and package.cpath from them, from the environment the
	// configuration is loaded in, whatever `env` says.
	LuaPathEnv, LuaCPathEnv *string
	// MainRequest, when set, returns a new Request holding the http
	// block's settings (resolver, lua_socket_*, lua_ssl_*) for the runs
	// that have no request of their own, init_worker_by_lua* and
	// exit_worker_by_lua*, as nginx gives them a fake request with the
	// http level's configuration (the timers they create inherit it).
	MainRequest func() *Request
	// ConfigureArgs is what ngx.config.nginx_configure() answers: the
	// "configure arguments" of -V.
	ConfigureArgs string
	// Env holds the variables named by `env` directives: the only ones
	// os.getenv can see (nginx clears the rest of the environment).
	Env map[string]string
	// SharedDicts maps lua_shared_dict names to their sizes in bytes.
	SharedDicts map[string]int64
	// Previous is the runtime of the configuration a reload replaces:
	// its dictionaries of the same name and size are kept with their
	// contents, as nginx keeps a shared memory zone across reloads.
	Previous *Runtime
	// CodeCache is lua_code_cache. When false, *_by_lua_file chunks are
	// re-read on every run and every run gets a fresh Lua state.
	CodeCache bool
	// Timeout bounds one run of a chunk (including ngx.sleep). Zero means
	// DefaultTimeout. A run that exceeds it answers 500.
	Timeout time.Duration
	// Log receives ngx.log, print and Lua warnings with an nginx error-log
	// level (ngxlog.Stderr ... ngxlog.Debug). Nil discards them.
	Log func(level ngxlog.Level, msg string)
	// MemoryLimit is the Go heap size (bytes) past which running hooks are
	// stopped with "not enough memory" (500). Zero means
	// DefaultMemoryLimit.
	MemoryLimit uint64
	// MaxPendingTimers and MaxRunningTimers bound ngx.timer
	// (lua_max_pending_timers, lua_max_running_timers); zero means 1024
	// and 256.
	MaxPendingTimers, MaxRunningTimers int
	// PoolSize is how many idle Lua states are kept. Zero means 64 (or
	// 4*GOMAXPROCS if larger). A state costs about 250 KB and 0.3-0.6 ms to
	// build; runs beyond the pool build a state and drop it afterwards.
	PoolSize int
	// ThreadPools are the thread_pool directives, by name, and
	// WorkerThreadVMs is lua_worker_thread_vm_pool_size (0: 100; negative:
	// 0), for ngx.run_worker_thread (worker_thread.go).
	ThreadPools     map[string]ThreadPool
	WorkerThreadVMs int
}

// Phase is the nginx phase (or directive family) a chunk runs in. It
// selects the chunk name prefix and which ngx APIs are allowed.
type Phase int

// Phases, named after their directives.
const (
	PhaseSet           Phase = iota // set_by_lua*
	PhaseRewrite                    // rewrite_by_lua*
	PhaseAccess                     // access_by_lua*
	PhaseContent                    // content_by_lua*
	PhaseHeaderFilter               // header_filter_by_lua*
	PhaseLog                        // log_by_lua*
	PhaseInit                       // init_by_lua*
	PhaseInitWorker                 // init_worker_by_lua*
	PhaseTimer                      // an ngx.timer callback
	PhaseBodyFilter                 // body_filter_by_lua*
	PhaseSSLCert                    // ssl_certificate_by_lua* (ssl_cert.go)
	PhaseBalancer                   // balancer_by_lua* (balancer.go)
	PhaseServerRewrite              // server_rewrite_by_lua*: the rewrite phase's API
	PhaseExitWorker                 // exit_worker_by_lua*: init's API, when the server stops
)

var phaseNames = [...]string{"set_by_lua", "rewrite_by_lua", "access_by_lua", "content_by_lua",
	"header_filter_by_lua", "log_by_lua", "init_by_lua", "init_worker_by_lua", "ngx.timer", "body_filter_by_lua",
	"ssl_certificate_by_lua", "balancer_by_lua", "server_rewrite_by_lua", "exit_worker_by_lua"}

// String returns the directive name without the _block/_file suffix, as
// lua-nginx-module uses it in chunk names ("access_by_lua").
func (p Phase) String() string {
	if p < 0 || int(p) >= len(phaseNames) {
		return fmt.Sprintf("Phase(%d)", int(p))
	}
	return phaseNames[p]
}

// Runtime runs compiled chunks on a pool of Lua states. It is
// safe for concurrent use.
type Runtime struct {
	opts    Options
	timeout time.Duration
	path    string // resolved package.path
	cpath   string
	shared  map[string]*SharedDict
	// idle holds the idle states, the most recently used last: a run
	// takes the state the previous one left, so requests that do not
	// overlap all run on one state and see its globals and modules, as
	// in nginx's one Lua VM per worker. Overlapping runs need more.
	idleMu  sync.Mutex
	idle    []*state
	idleMax int
	modules protoCache // require()d files, compiled once
	guard   memGuard
	pool    socketPool // idle cosocket connections (setkeepalive)
	timers  timerSet   // ngx.timer.at / every (timer.go)
	sems    semaphores // ngx.semaphore objects modules create (semaphore.go)
	reOnce  sync.Map   // reKey of "jo" regexes compiled: logJIT (ngx_re.go)
	// wthreads: ngx.run_worker_thread's pools and states (worker_thread.go)
	wthreads workerThreads

	mu    sync.Mutex
	inits []*Chunk          // init_by_lua* chunks, replayed in every new state
	files map[string]*Chunk // CompileFile cache
	// failedInits are init_worker chunks that failed (RunInitWorker):
	// replayed with their error ignored.
	failedInits map[*Chunk]bool
	// vmPath and vmCPath are the package paths after init_by_lua, which
	// lua_code_cache off's per-request VMs start with (vmPathSet: known).
	vmPath, vmCPath string
	vmPathSet       bool
	closed          atomic.Bool
}

// New returns a Runtime. Shared dictionaries are created here.
func New(opts Options) (*Runtime, error) {
	rt := &Runtime{opts: opts, timeout: opts.Timeout, shared: map[string]*SharedDict{},
		files: map[string]*Chunk{}}
	if rt.timeout <= 0 {
		rt.timeout = DefaultTimeout
	}
	rt.guard.limit = opts.MemoryLimit
	if rt.guard.limit == 0 {
		rt.guard.limit = DefaultMemoryLimit
	}
	n := opts.PoolSize
	if n <= 0 {
		n = max(64, 4*runtime.GOMAXPROCS(0))
	}
	rt.idleMax = n
	for name, size := range opts.SharedDicts {
		if old := opts.Previous.SharedDict(name); old != nil && old.capacity == size {
			rt.shared[name] = old
			continue
		}
		rt.shared[name] = NewSharedDict(name, size)
	}
	rt.opts.Previous = nil // not kept alive
	path, cpath := basePackagePaths(opts.LuaPathEnv, opts.LuaCPathEnv)
	rt.path = resolvePackagePath(opts.PackagePath, path, opts.Prefix)
	rt.cpath = resolvePackagePath(opts.PackageCPath, cpath, opts.Prefix)
	rt.modules.m = map[string]*protoEntry{}
	return rt, nil
}

// Close releases the idle Lua states. Runs in flight finish normally; their
// states are then dropped.
func (rt *Runtime) Close() {
	rt.closed.Store(true)
	rt.closeTimers(rt.timeout)
	rt.pool.closeAll()
	rt.closeWorkerThreads()
	for _, st := range rt.takeIdle() {
		rt.retire(st)
	}
}

// takeIdle empties the idle states and returns them.
func (rt *Runtime) takeIdle() []*state {
	rt.idleMu.Lock()
	defer rt.idleMu.Unlock()
	idle := rt.idle
	rt.idle = nil
	return idle
}

// SharedDict returns the lua_shared_dict called name, or nil.
func (rt *Runtime) SharedDict(name string) *SharedDict {
	if rt == nil {
		return nil
	}
	return rt.shared[name]
}

// The package paths a Lua state starts with, as Debian's nginx + LuaJIT
// set them. LuaJIT's own defaults (luajitPath, luajitCPath) are replaced by
// LUA_PATH and LUA_CPATH from the environment when they are set, with ";;"
// standing for the default; Debian's lua-nginx-module then puts its
// LUA_DEFAULT_PATH in front of the path (not of the cpath).
const (
	luajitPath = "./?.lua;/usr/share/luajit-2.1.0-beta3/?.lua;/usr/local/share/lua/5.1/?.lua;" +
		"/usr/local/share/lua/5.1/?/init.lua;/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua"
	luajitCPath = "./?.so;/usr/local/lib/lua/5.1/?.so;/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;" +
		"/usr/local/lib/lua/5.1/loadall.so"
	debianLuaDefaultPath = "/usr/share/lua/5.1/?.lua;"
)

// basePackagePaths are package.path and package.cpath before
// lua_package_path and lua_package_cpath apply: LuaJIT's (or the
// environment's) with Debian's prefix on the path.
func basePackagePaths(env, cenv *string) (path, cpath string) {
	withEnv := func(v *string, def string) string {
		if v == nil {
			return def
		}
		// LuaJIT's setpath: every ";;" of the variable is ";<default>;".
		return strings.ReplaceAll(*v, ";;", ";"+def+";")
	}
	return debianLuaDefaultPath + ";" + withEnv(env, luajitPath), withEnv(cenv, luajitCPath)
}

// resolvePackagePath applies lua-nginx-module's rules to lua_package_path
// or lua_package_cpath p: "$prefix"/"${prefix}" become the prefix (with a
// trailing slash, as nginx's cycle prefix has) and every ";;" becomes
// ";<base>;", base being the path the state had before. The result is not
// trimmed: nginx keeps the separators, and require skips empty entries.
func resolvePackagePath(p, base, prefix string) string {
	if p == "" {
		return base
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	const mark = "\x01"
	p = strings.ReplaceAll(p, ";;", ";"+mark+";")
	p = strings.ReplaceAll(p, "$prefix", prefix)
	p = strings.ReplaceAll(p, "${prefix}", prefix)
	return strings.ReplaceAll(p, mark, base)
}

// Chunk is one compiled hook. It is immutable and shared by all states.
type Chunk struct {
	phase Phase
	name  string // chunk name as Lua reports it: "access_by_lua(nginx.conf:25)"
	proto *lua.FunctionProto
	// path is set for *_by_lua_file chunks (absolute).
	path string
	// loadErr is set when the code could not be loaded; running the chunk
	// then answers loadStatus and reports loadErr.
	loadErr    error
	loadStatus int
}

// Name returns the chunk name used in Lua error messages.
func (c *Chunk) Name() string { return c.name }

// Phase returns the phase the chunk was compiled for.
func (c *Chunk) Phase() Phase { return c.phase }

// LoadError is returned when Lua code cannot be loaded. Its text is the
// line nginx writes to the error log ("failed to load inlined Lua code: ...").
type LoadError struct {
	Msg string
	// Status is what a request running the chunk answers (500, or 404 for
	// a missing *_by_lua_file).
	Status int
	// Err is the underlying error (fs.ErrNotExist for a missing file).
	Err error
}

// Error returns the error-log line.
func (e *LoadError) Error() string { return e.Msg }

// Unwrap returns the underlying error, so errors.Is(err, fs.ErrNotExist)
// tells a missing file.
func (e *LoadError) Unwrap() error { return e.Err }

// CompileInline compiles the code of a *_by_lua / *_by_lua_block directive.
// file is the config file holding it and line the line nginx reports: for
// *_by_lua_block the line of the directive name, for *_by_lua '...' the
// line where the directive ends. The chunk is named like lua-nginx-module
// names it: "access_by_lua(nginx.conf:25)".
//
// A syntax error is returned (a *LoadError) AND a usable chunk is returned
// that answers 500 and reports "failed to load inlined Lua code: ...", as
// nginx does (nginx -t does not compile Lua).
func (rt *Runtime) CompileInline(phase Phase, src, file string, line int) (*Chunk, error) {
	name := inlineChunkName(phase, rt.opts.ConfPrefix, file, line)
	c := &Chunk{phase: phase, name: name}
	proto, err := compileLua(src, name, false)
	if err != nil {
		c.loadErr = &LoadError{Msg: "failed to load inlined Lua code: " + err.Error(), Status: http.StatusInternalServerError, Err: err}
		return c, c.loadErr
	}
	c.proto = proto
	return c, nil
}

// CompileFile compiles the file of a *_by_lua_file directive. A relative
// path resolves against Options.Prefix. Results are cached by path, so it
// is cheap to call per request for paths built from variables.
//
// A missing file or a syntax error is returned (a *LoadError) AND the
// returned chunk answers like nginx: 404 for a missing file, 500 for
// code that does not load, each reporting `failed to load external Lua
// file "<path>": ...`.
func (rt *Runtime) CompileFile(phase Phase, path string) (*Chunk, error) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(rt.opts.Prefix, path)
	}
	key := fmt.Sprintf("%d:%s", phase, path)
	if rt.opts.CodeCache {
		rt.mu.Lock()
		c := rt.files[key]
		rt.mu.Unlock()
		if c != nil {
			return c, c.loadErr
		}
	}
	c := &Chunk{phase: phase, path: path, name: shortSrc(path)}
	src, err := os.ReadFile(path)
	switch {
	case err != nil:
		msg := err.Error()
		var pe *os.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
			if len(msg) > 0 {
				msg = strings.ToUpper(msg[:1]) + msg[1:]
			}
		}
		// lua-nginx-module: a missing file 404, one it cannot open or
		// read otherwise (permissions) 503
		status := http.StatusServiceUnavailable
		if errors.Is(err, os.ErrNotExist) {
			status = http.StatusNotFound
		}
		c.loadErr = &LoadError{Msg: fmt.Sprintf("failed to load external Lua file %q: cannot open %s: %s", path, path, msg), Status: status, Err: err}
	default:
		proto, err := compileLua(string(src), c.name, true)
		if err != nil {
			c.loadErr = &LoadError{Msg: fmt.Sprintf("failed to load external Lua file %q: %s", path, err), Status: http.StatusInternalServerError, Err: err}
		} else {
			c.proto = proto
		}
	}
	if rt.opts.CodeCache && (c.loadErr == nil || c.loadErr.(*LoadError).Status != http.StatusNotFound) {
		rt.mu.Lock()
		rt.files[key] = c
		rt.mu.Unlock()
	}
	if c.loadErr != nil {
		return c, c.loadErr
	}
	return c, nil
}

// mainRequest is a new Request with the http block's settings
// (Options.MainRequest), or a bare one.
func (rt *Runtime) mainRequest() *Request {
	if rt.opts.MainRequest != nil {
		if r := rt.opts.MainRequest(); r != nil {
			return r
		}
	}
	return &Request{}
}

// RunInitWorker runs an init_worker_by_lua* chunk as RunInit does, except
// that its error does not stop the server: nginx logs it and the worker
// goes on with what the chunk did before it failed (its globals, its
// timers). The chunk is still replayed in every new state (its error
// then ignored). The error is returned for the caller to log.
func (rt *Runtime) RunInitWorker(c *Chunk) error {
	if c.loadErr != nil {
		return c.loadErr
	}
	st, err := rt.newState()
	if err != nil {
		return err
	}
	st.busy.Lock()
	err = st.runInitReq(c, rt.timeout, rt.mainRequest())
	st.busy.Unlock()
	rt.mu.Lock()
	rt.inits = append(rt.inits, c)
	if err != nil {
		if rt.failedInits == nil {
			rt.failedInits = map[*Chunk]bool{}
		}
		rt.failedInits[c] = true
	}
	rt.mu.Unlock()
	for _, old := range rt.takeIdle() {
		rt.retire(old)
	}
	rt.put(st)
	return err
}

// RunInit runs an init_by_lua* (or init_worker_by_lua*) chunk. Globals it
// defines are visible to every later run: the chunk is run now in a fresh
// state and replayed in every state the pool creates later. Its error is
// what makes nginx fail to start.
func (rt *Runtime) RunInit(c *Chunk) error {
	if c.loadErr != nil {
		return c.loadErr
	}
	st, err := rt.newState()
	if err != nil {
		return err
	}
	st.busy.Lock() // its init_worker timers run on it
	err = st.runInit(c, rt.timeout)
	st.busy.Unlock()
	if err != nil {
		rt.retire(st)
		return err
	}
	rt.notePackagePaths(st)
	rt.mu.Lock()
	rt.inits = append(rt.inits, c)
	rt.mu.Unlock()
	// Drop idle states: they have not seen this chunk.
	for _, old := range rt.takeIdle() {
		rt.retire(old)
	}
	rt.put(st)
	return nil
}

// RunExitWorker runs an exit_worker_by_lua* chunk, as nginx does when a
// worker exits: on a state that has the init chunks' globals, before
// Close. Its error is logged as lua-nginx-module reports it (kind is
// "exit_worker_by_lua" or "exit_worker_by_lua_file").
func (rt *Runtime) RunExitWorker(c *Chunk, kind string) {
	err := c.loadErr
	if err == nil {
		var st *state
		if st, err = rt.get(); err == nil {
			st.busy.Lock()
			err = st.runInit(c, rt.timeout)
			st.busy.Unlock()
			rt.put(st)
		}
	}
	if err != nil && rt.opts.Log != nil {
		rt.opts.Log(ngxlog.Err, kind+" error: "+err.Error())
	}
}

func (rt *Runtime) get() (*state, error) {
	if rt.opts.CodeCache {
		rt.idleMu.Lock()
		if n := len(rt.idle); n > 0 {
			st := rt.idle[n-1]
			rt.idle[n-1] = nil
			rt.idle = rt.idle[:n-1]
			rt.idleMu.Unlock()
			return st, nil
		}
		rt.idleMu.Unlock()
	}
	return rt.newState()
}

func (rt *Runtime) put(st *state) {
	if rt.closed.Load() || !rt.opts.CodeCache {
		rt.retire(st)
		return
	}
	rt.idleMu.Lock()
	if len(rt.idle) < rt.idleMax {
		rt.idle = append(rt.idle, st)
		st = nil
	}
	rt.idleMu.Unlock()
	if st != nil {
		rt.retire(st)
	}
}

// protoCache holds compiled Lua files (require) keyed by path and mtime.
type protoCache struct {
	mu sync.Mutex
	m  map[string]*protoEntry
}

type protoEntry struct {
	mod   time.Time
	size  int64
	proto *lua.FunctionProto
}

func (pc *protoCache) load(path string) (*lua.FunctionProto, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	pc.mu.Lock()
	e := pc.m[path]
	pc.mu.Unlock()
	if e != nil && e.mod.Equal(fi.ModTime()) && e.size == fi.Size() {
		return e.proto, nil
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	proto, err := compileLua(string(src), shortSrc(path), true)
	if err != nil {
		return nil, err
	}
	pc.mu.Lock()
	pc.m[path] = &protoEntry{mod: fi.ModTime(), size: fi.Size(), proto: proto}
	pc.mu.Unlock()
	return proto, nil
}

// shortSrc mimics Lua's luaO_chunkid for "@file" chunk names: file names
// longer than LUA_IDSIZE-1 keep their tail behind "...".
func shortSrc(path string) string {
	const idSize = 60 // LUA_IDSIZE
	if len(path) <= idSize-1 {
		return path
	}
	return "..." + path[len(path)-(idSize-1-3):]
}

// inlineChunkName is lua-nginx-module's name for inline code:
// "access_by_lua(<file>:<line>)" where file is relative to the conf prefix
// (the main config's directory) or in full when outside it. A name longer
// than LUA_IDSIZE-1 bytes keeps the tail of the file behind "..." (measured:
// "access_by_lua(.../TestX/001/out.conf:2)").
func inlineChunkName(phase Phase, confPrefix, file string, line int) string {
	name := filepath.Base(file)
	if confPrefix != "" {
		if !strings.HasSuffix(confPrefix, "/") {
			confPrefix += "/"
		}
		name = file
		if rel, ok := strings.CutPrefix(file, confPrefix); ok {
			name = rel
		}
	}
	s := fmt.Sprintf("%s(%s:%d)", phase, name, line)
	if over := len(s) - 59; over > 0 && over+3 < len(name) {
		s = fmt.Sprintf("%s(...%s:%d)", phase, name[over+3:], line)
	}
	return s
}

// Run runs chunk c for one request, under ctx and the runtime's timeout.
func (rt *Runtime) Run(ctx context.Context, c *Chunk, req *Request) Outcome {
	if out := req.bodyErr; out != nil && c.phase >= PhaseRewrite && c.phase <= PhaseContent {
		// lua_need_request_body failed: nginx answers before the handler
		// loads or runs its chunk.
		req.bodyErr = nil
		return *out
	}
	if c.path != "" && c.loadErr != nil && c.loadErr.(*LoadError).Status == http.StatusNotFound {
		// nginx reads *_by_lua_file at the first request, not at startup:
		// a file created since then is used.
		if nc, err := rt.CompileFile(c.phase, c.path); err == nil {
			c = nc
		}
	}
	if c.loadErr != nil {
		le := c.loadErr.(*LoadError)
		return Outcome{Action: ErrorPage, Status: le.Status, Err: c.loadErr}
	}
	if c.path != "" && !rt.opts.CodeCache {
		nc, err := rt.CompileFile(c.phase, c.path)
		if err != nil {
			le := err.(*LoadError)
			return Outcome{Action: ErrorPage, Status: le.Status, Err: err}
		}
		c = nc
	}
	if !rt.opts.CodeCache {
		if err := rt.restyCoreLoadError(); err != nil {
			return Outcome{Action: ErrorPage, Status: http.StatusInternalServerError, Err: err}
		}
	}
	st, err := rt.get()
	if err != nil {
		return Outcome{Action: ErrorPage, Status: http.StatusInternalServerError, Err: err}
	}
	st.busy.Lock() // a timer of this state may be running
	out := st.run(ctx, c, req, rt.timeout)
	st.busy.Unlock()
	if errors.Is(out.Err, ErrMemory) {
		rt.retire(st) // its globals may hold what it allocated
	} else {
		rt.put(st)
	}
	return out
}
