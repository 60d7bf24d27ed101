package nginxconf

import (
	"crypto/tls"
	"net"
	"strings"
	"time"

	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
)

// Config is a loaded, checked and compiled configuration. Nothing in it is
// parsed again while requests are served.
type Config struct {
	Main   string // absolute path of the main file
	Prefix string // -p prefix, ending in "/"

	Files    []File    // every file read, in order (for -T)
	Warnings []Warning // directives accepted but not acted on, and similar notes

	// PID is the pid file path: the pid directive's, or logs/nginx.pid
	// under the prefix when that directory exists ("" when none).
	PID string
	// Daemon is the daemon directive: true (nginx's default) unless
	// "daemon off;". With several, the last one wins (-g comes last).
	Daemon bool
	// WorkerProcesses is worker_processes: how many event loops relay
	// tunnels. 0 means auto (one per CPU); the default is 1, as in nginx.
	WorkerProcesses int
	// MasterProcess is master_process (default on). With it off, nginx
	// runs one process that keeps the privileges it started with: the
	// user is not taken on.
	MasterProcess bool
	// User is who serves after the listeners and logs are open (the user
	// directive, or nginx's compiled-in nobody/nogroup when started as
	// root); nil when the process does not run as root.
	User *User
	// WorkerShutdownTimeout bounds a graceful quit (SIGQUIT): tunnels and
	// requests still open then are closed. 0: none, wait for them.
	WorkerShutdownTimeout time.Duration
	ErrorLog              []LogFile // main-level error_log targets
	// DebugConnections are debug_connection's clients (Allow set): the
	// error-log lines of their requests go to every target, debug included
	DebugConnections []AccessRule
	Env              []EnvVar // env directives, for os.getenv in Lua
	HTTP             *HTTP    // nil when the config has no http block
	Default          bool     // true for the embedded default config

	// ThreadPools are the thread_pool directives by name, for Lua's
	// ngx.run_worker_thread (luahooks/worker_thread.go).
	ThreadPools map[string]ThreadPool
}

// ThreadPool is one `thread_pool NAME threads=N [max_queue=N];`.
type ThreadPool struct {
	Threads, MaxQueue int
}

// EnvVar is one `env NAME[=VALUE];` directive.
type EnvVar struct {
	Name     string
	Value    string
	HasValue bool
}

// LogFile is an error_log target: a path (or "stderr", or "syslog:..."
// with its Syslog peer) and a level.
type LogFile struct {
	Path   string
	Level  ngxlog.Level
	Syslog *SyslogPeer
}

// HTTP is the compiled http block.
type HTTP struct {
	Vars    *vars.Registry
	Servers []*Server
	// Confs is every LocConf of the block (http, servers, locations, if
	// and limit_except blocks); a LocConf's ID is its place here, so
	// runtimes can keep what they build per level in a slice.
	Confs []*LocConf
	// LuaCodes is every Lua hook of the block (init included); a
	// LuaCode's ID is its place here.
	LuaCodes   []*LuaCode
	Upstreams  map[string]*Upstream
	LogFormats map[string]*LogFormat
	Lua        LuaMain
	Charsets   *Charsets // nil when no charset is named
	// LimitZones are the limit_req_zone and limit_conn_zone zones, by name.
	LimitZones map[string]*LimitZone
}

// LogFormat is a compiled log_format.
type LogFormat struct {
	Name     string
	Template *vars.Template
	Escape   vars.LogEscape
}

// LuaMain holds the http-level Lua settings.
type LuaMain struct {
	PackagePath  string
	PackageCPath string
	SharedDicts  map[string]int64
	CodeCache    bool
	// RewriteNoPostpone is rewrite_by_lua_no_postpone on: rewrite_by_lua
	// runs before the rewrite module's statements, not after them.
	RewriteNoPostpone bool
	// AccessNoPostpone is access_by_lua_no_postpone on: access_by_lua
	// runs before allow/deny, auth_basic and auth_request, not after them.
	AccessNoPostpone bool
	// MaxPendingTimers and MaxRunningTimers are lua_max_pending_timers
	// and lua_max_running_timers (0: lua-nginx-module's 1024 and 256).
	MaxPendingTimers, MaxRunningTimers int
	Init                               *LuaCode
	InitWorker                         *LuaCode
	ExitWorker                         *LuaCode

	// WorkerThreadVMPoolSize is lua_worker_thread_vm_pool_size when
	// WorkerThreadVMPoolSet (else the default, 100).
	WorkerThreadVMPoolSize int
	WorkerThreadVMPoolSet  bool

	// File and CloseLine place the http block's closing '}', where nginx
	// reports what goes wrong when lua-nginx-module creates its VM.
	File      string
	CloseLine int
}

// LuaCode is Lua source attached to a directive; the proxy compiles it at
// load time through luahooks.
type LuaCode struct {
	ID        int    // place in HTTP.LuaCodes
	Directive string // e.g. "access_by_lua_block"
	Phase     string // "access", "rewrite", "content", "header_filter", "set", "init", "init_worker", "exit_worker"
	Source    string // inline code (already unescaped for the string forms)
	Path      string // for *_file: the file name as written (may hold variables)
	PathTmpl  *vars.Template
	File      string
	Line      int // the line nginx names the chunk after (where the directive ends; for *_block where it starts)
}

// Upstream is an `upstream NAME {}` block.
type Upstream struct {
	Name    string
	Servers []UpstreamServer
	// Balancer is the block's balancing directive (round robin when none);
	// HashKey is hash's key.
	Balancer Balancer
	HashKey  *vars.Template
	// BalancerLua is balancer_by_lua_block/_file: it picks each
	// attempt's server for proxy_pass.
	BalancerLua *LuaCode
	// Keepalive is `keepalive N`: idle connections proxy_pass keeps to
	// the servers (0: none), each for at most KeepaliveRequests requests,
	// KeepaliveTimeout idle and KeepaliveTime in all.
	Keepalive                       int
	KeepaliveRequests               int
	KeepaliveTimeout, KeepaliveTime time.Duration
	File                            string
	Line                            int
}

// UpstreamServer is one `server` line of an upstream block.
type UpstreamServer struct {
	Addr        string // host:port or unix:/path, as written (port defaulted)
	Name        string // as written (the consistent hash places its points by it)
	Weight      int
	MaxConns    int // 0: no bound
	MaxFails    int
	FailTimeout time.Duration
	Backup      bool
	Down        bool
}

// Listen is one `listen` directive.
type Listen struct {
	Network       string // "tcp" or "unix"
	Addr          string // "127.0.0.1:80", "[::]:80", "*:80" (all addresses), or a socket path
	Port          int
	Wildcard      bool // no address given, or 0.0.0.0 / [::] / *
	DefaultServer bool
	SSL           bool
	HTTP2         bool
	// ProxyProtocol: connections start with a PROXY protocol header. As
	// nginx, one listen of an address with it gives it to the address.
	ProxyProtocol bool
	File          string
	Line          int
	options       bool // socket options (backlog=, reuseport, bind, ...): nginx's lsopt.set
}

// ServerName is one `server_name` value.
type ServerName struct {
	Name   string // as written (lowercased)
	Kind   NameKind
	Regex  *vars.Regex
	Suffix string // for *.example.com: ".example.com"; for .example.com also matches example.com
	Prefix string // for www.example.*: "www.example."
}

// NameKind tells how a server name matches.
type NameKind int

// Server name kinds, in nginx's order of precedence.
const (
	NameExact NameKind = iota
	NameWildcardPrefix
	NameWildcardSuffix
	NameRegex
)

// Server is a compiled `server` block.
type Server struct {
	Listens []Listen
	Names   []ServerName
	Stmts   []Stmt   // server-level rewrite-module statements (set, rewrite, if, return, break)
	Conf    *LocConf // server-level settings, inherited by locations
	Root    *LocTree // top-level locations
	Named   map[string]*Location
	TLS     *TLS
	ID      int // place in HTTP.Servers
	File    string
	Line    int
}

// PrimaryName is $server_name: the first name of the server, or "". A
// leading-dot name (.example.com) gives its name without the dot, as in
// nginx.
func (s *Server) PrimaryName() string {
	if len(s.Names) == 0 {
		return ""
	}
	n := s.Names[0]
	if n.Kind == NameWildcardPrefix && strings.HasPrefix(n.Name, ".") {
		return n.Name[1:]
	}
	return n.Name
}

// TLS holds a server's ssl module settings. Every server has one; a
// server without Certificates has no TLS context of its own (the
// handshake uses its address's default server's), but its VerifyClient
// still decides over the requests it serves, as in nginx.
type TLS struct {
	Certificates []CertPair
	// RejectHandshake is ssl_reject_handshake on: a handshake that selects
	// this server (by SNI, or as the default) fails with the alert
	// unrecognized_name.
	RejectHandshake bool
	// StaplingFile is ssl_stapling_file under ssl_stapling on: the DER
	// OCSP response stapled to the server's certificates; "": none.
	StaplingFile string
	// Stapling is ssl_stapling on; without StaplingFile the response is
	// asked of StaplingResponder (ssl_stapling_responder; "": the
	// certificate's OCSP URL) and checked under StaplingVerify.
	Stapling          bool
	StaplingResponder string
	StaplingVerify    bool
	StaplingTrusted   string // ssl_trusted_certificate, searched for the issuer
	// OCSP is ssl_ocsp: client certificates (OCSPLeaf: only the client's
	// own) are checked with OCSPResponder (ssl_ocsp_responder; "": each
	// certificate's OCSP URL), the answers kept in the shared cache
	// OCSPCache (ssl_ocsp_cache; "": none) of OCSPCacheSize bytes. Set only
	// on a server with certificates.
	OCSP          OCSPMode
	OCSPResponder string
	OCSPCache     string
	OCSPCacheSize int64
	// Passwords are ssl_password_file's lines, tried in turn on encrypted
	// keys; nil: none.
	Passwords []string
	Protocols []string // ssl_protocols; nil: the default
	Ciphers   string   // ssl_ciphers as written; "": the default
	// CipherSuites are the TLS 1.2 (and older) suites ssl_ciphers (or its
	// default, HIGH:!aNULL:!MD5) selects; set when Certificates are.
	CipherSuites []uint16
	// Curves are ssl_ecdh_curve's groups, in its order; nil: auto
	Curves       []tls.CurveID
	PreferServer bool

	VerifyClient VerifyClient
	VerifyDepth  int // ssl_verify_depth (default 1)
	// ClientCertificate and TrustedCertificate are the CA files client
	// certificates are checked against (full paths; "" none); only the
	// former's names are sent to the client. Set only when VerifyClient is.
	ClientCertificate  string
	TrustedCertificate string
	CRL                string // ssl_crl: full path; "" none

	SessionCache   SessionCache
	SessionTickets bool          // ssl_session_tickets (default on)
	SessionTimeout time.Duration // ssl_session_timeout (default 5m)
}

// VerifyClient is ssl_verify_client.
type VerifyClient int

// ssl_verify_client values.
const (
	VerifyOff VerifyClient = iota
	VerifyOn
	VerifyOptional
	// VerifyOptionalNoCA asks for a certificate and accepts one whose
	// issuer is unknown (nginx's ngx_ssl_verify_error_optional).
	VerifyOptionalNoCA
)

// OCSPMode is ssl_ocsp.
type OCSPMode int

// ssl_ocsp values.
const (
	OCSPOff  OCSPMode = iota
	OCSPOn            // every certificate of the chain but the root
	OCSPLeaf          // the client's certificate only
)

// SessionCache is what ssl_session_cache allows: with a cache, sessions
// resume even with ssl_session_tickets off.
type SessionCache int

// ssl_session_cache values (builtin and shared are one for ngxsockify: a
// per-server cache in memory).
const (
	SessionCacheNone SessionCache = iota // the default
	SessionCacheOff
	SessionCacheOn
)

// CertPair is one ssl_certificate with its key.
type CertPair struct {
	Cert, Key string
	// CertT and KeyT are set when the path holds variables: the proxy
	// evaluates them per handshake ($ssl_server_name, geo and map
	// variables of the connection), as nginx does.
	CertT, KeyT *vars.Template
}

// Dynamic reports whether a path of the pair holds variables.
func (cp CertPair) Dynamic() bool { return cp.CertT != nil || cp.KeyT != nil }

// LocTree holds one level of locations in nginx's search structures.
type LocTree struct {
	Exact  map[string]*Location // "=" locations
	Prefix []*Location          // prefix and "^~" locations, longest path first
	Regex  []*Location          // "~" and "~*" locations in order of appearance
	// AutoRedirect: the locations with auto_redirect, by name without the
	// final "/" (the exact one when both forms have it).
	AutoRedirect map[string]*Location
}

// Modifier is a location's match modifier.
type Modifier int

// Location modifiers.
const (
	ModPrefix  Modifier = iota // location /x
	ModExact                   // location = /x
	ModNoRegex                 // location ^~ /x
	ModRegex                   // location ~ re
	ModRegexI                  // location ~* re
	ModNamed                   // location @x
)

// Location is a compiled location block (or the pseudo-location of an `if`).
type Location struct {
	Modifier Modifier
	Path     string
	Regex    *vars.Regex
	Conf     *LocConf
	Stmts    []Stmt
	Nested   *LocTree
	File     string
	Line     int
	// AutoRedirect: the name ends in "/" and the block holds proxy_pass
	// or another *_pass (nginx's auto_redirect).
	AutoRedirect bool
}

// LocConf is the merged configuration in effect in a location (or at the
// http or server level, or in an if or limit_except block). It is nginx's
// array of module location configs: every module's settings live in that
// module's struct, declared in its mod_*.go file and embedded here, so
// that their fields read as the location's.
type LocConf struct {
	CoreConf
	AccessConf
	AuthBasicConf
	AuthRequestConf
	RealIPConf
	HeadersConf
	HeadersMoreConf
	StaticConf
	CharsetConf
	SubConf
	AdditionConf
	RandomIndexConf
	SSIConf
	LogConf
	WebsockifyConf
	ProxyConf
	LuaConf
	LimitConf
	StatusConf
	EmptyGifConf
	FlvConf
	HTTP2Conf
	DavConf
	RefererConf
	GzipConf
	MirrorConf
	SecureLinkConf

	FailClosed  []Warning // access directives we cannot enforce: every request here answers 500
	Unsupported *Warning  // content directive we do not implement: requests here answer 502

	// ID is this conf's place in HTTP.Confs.
	ID int

	set map[string]bool // which values were set at this level (for merging)
}

// Websockify is a location's websockify_pass.
type Websockify struct {
	Target   *vars.Template // host:port, host, unix:/path, [v6]:port, or an upstream name; may hold variables
	Upstream *Upstream      // set when the constant target names an upstream block
	File     string
	Line     int
}

// Expires is a compiled `expires` directive.
type Expires struct {
	Kind     ExpiresKind
	Offset   time.Duration  // ExpiresAfter: may be negative
	Modified bool           // "modified": counted from the file's mtime
	Value    *vars.Template // a value with variables, parsed per request
}

// ExpiresKind says which form of `expires` was written.
type ExpiresKind int

// The forms of `expires`.
const (
	ExpiresEpoch ExpiresKind = iota // expires epoch
	ExpiresMax                      // expires max
	ExpiresAfter                    // expires [modified] time
	ExpiresDaily                    // expires @time
	ExpiresVar                      // expires $variable
)

// ErrorPage is one error_page mapping.
type ErrorPage struct {
	Code   int            // replacement status: 0 keeps the original, -1 for "=" (status from the target)
	Target *vars.Template // URI, @named, or URL
}

// AccessRule is one allow or deny line.
type AccessRule struct {
	Allow bool
	All   bool
	Unix  bool
	Net   *net.IPNet
}

// LimitExcept is a limit_except block: methods not listed go through its rules.
type LimitExcept struct {
	Methods map[string]bool
	Conf    *LocConf
}

// AddHeader is one add_header directive.
type AddHeader struct {
	Name   string // as written: the response spells it so
	Key    string // Name in net/http's canonical form
	Value  *vars.Template
	Always bool
	// Replace: nginx keeps this header once (ETag, Last-Modified): the
	// value replaces the one already set, and an empty value removes it.
	Replace bool
}

// AccessLog is one access_log target.
type AccessLog struct {
	Path   *vars.Template // nil for a syslog target
	Syslog *SyslogPeer    // access_log syslog:...
	Format *LogFormat
	// If is the if= condition: no line when it evaluates to "" or "0".
	If *vars.Template
	// Buffer (buffer=, and 64k for gzip) and Gzip (the compression level
	// of gzip[=level], 0: none). ngxsockify writes each line as it comes,
	// as one gzip member under Gzip.
	Buffer int64
	Gzip   int
	File   string
	Line   int
}

// Stmt is one rewrite-module statement, run in order in the rewrite phases.
type Stmt interface{ stmt() }

// SetStmt is `set $var value`.
type SetStmt struct {
	Var   vars.VarRef
	Value *vars.Template
}

// SetLuaStmt is `set_by_lua* $var code args...`.
type SetLuaStmt struct {
	Var  vars.VarRef
	Code *LuaCode
	Args []*vars.Template
}

// RewriteStmt is `rewrite regex replacement [flag]`.
type RewriteStmt struct {
	Regex       *vars.Regex
	Replacement *vars.Template
	Flag        string // "", "last", "break", "redirect", "permanent"
	Redirect    bool   // replacement starts with http://, https:// or $scheme
	KeepArgs    bool   // replacement has no "?" at its end
}

// ReturnStmt is `return code [text|URL]` or `return URL`.
type ReturnStmt struct {
	Code int
	Text *vars.Template // nil when absent
}

// BreakStmt is `break`.
type BreakStmt struct{}

// IfStmt is `if (condition) { ... }`.
type IfStmt struct {
	Cond Cond
	Loc  *Location // statements and (in a location) the settings in effect when true
}

// Cond is a compiled `if` condition.
type Cond struct {
	Op    string // "" (variable truthiness), "=", "!=", "~", "~*", "!~", "!~*", "-f", "!-f", "-d", "!-d", "-e", "!-e", "-x", "!-x"
	Left  *vars.Template
	Right *vars.Template // for = and !=
	Regex *vars.Regex    // for regex operators
}

func (*SetStmt) stmt()     {}
func (*SetLuaStmt) stmt()  {}
func (*RewriteStmt) stmt() {}
func (*ReturnStmt) stmt()  {}
func (*BreakStmt) stmt()   {}
func (*IfStmt) stmt()      {}
