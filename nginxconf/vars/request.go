package vars

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// NginxVersion is the value of $nginx_version: the nginx we stand in for.
const NginxVersion = "1.22.1"

// slot states
const (
	slotUnset    uint8 = iota // never written in this request
	slotValue                 // holds a value
	slotNotFound              // unset through ngx.var.x = nil
)

type slot struct {
	v  string
	st uint8
}

// Request is one request's variable state. The proxy fills the exported
// fields as the request goes on (Status, BytesSent, Upstream* ...); the
// getters read them when a template or ngx.var asks. A Request belongs to
// the goroutine serving its request.
// ConnCounter reports the process's client connections as nginx's
// stub_status counts them.
type ConnCounter interface {
	ConnCounts() (active, reading, writing, waiting int64)
}

// connectionsVar makes the getter of one $connections_* variable: which
// picks the count from ConnCounts' results.
func connectionsVar(which int) builtin {
	return builtin{get: func(r *Request) (string, bool) {
		if r.Conns == nil {
			return "", false
		}
		a, rd, w, wt := r.Conns.ConnCounts()
		return found(strconv.FormatInt([4]int64{a, rd, w, wt}[which], 10))
	}}
}

// PipelinedOf reports whether a request came pipelined ($pipe: "p", else
// "."); the HTTP/1 layer's, set by the proxy (nil: never).
var PipelinedOf func(*http.Request) bool

type Request struct {
	HTTP         *http.Request
	Start        time.Time // request start ($request_time, $msec at log time)
	ConnStart    time.Time // connection start ($connection_time); zero: Start
	ConnID       uint64    // $connection
	ConnRequests int       // $connection_requests; 0 reads as 1
	// OddHeaderNames: the request may hold header names with "_" or other
	// bytes than letters, digits and "-" (underscores_in_headers on,
	// ignore_invalid_headers off); $http_ variables then also match them
	// as nginx does ("-" read as "_", case ignored).
	OddHeaderNames bool
	// ServerName is the primary server_name of the chosen server, as nginx
	// stores it (lower case); $host falls back to it.
	ServerName string
	// RequestHead is the request head as the client sent it, whose first
	// line is nginx's request line ($request as received: its spaces, an
	// absolute target, the version as written; "" where there is none,
	// HTTP/2: $request is then made of the method, URI and protocol)
	RequestHead string
	URI         string // $uri, $document_uri: decoded and normalised; rewrites change it
	// Args is $args and $query_string. Empty reads as not found (nil in
	// ngx.var), as in nginx, unless ngx.var.args = "" set it explicitly.
	Args string
	// URIErr is ErrBadURI when NewRequest found the request target invalid:
	// answer 400.
	URIErr error

	Status               int   // $status; 0 reads as "000"
	BytesSent            int64 // $bytes_sent
	BodyBytesSent        int64 // $body_bytes_sent
	RequestLength        int64 // $request_length; 0: estimated from the request line and headers
	UpstreamAddr         string
	UpstreamStatus       int
	UpstreamConnectTime  time.Duration // < 0: not measured
	UpstreamResponseTime time.Duration // < 0: not measured
	UpstreamHeader       http.Header   // $upstream_http_*, $upstream_cookie_* (read it through Upstream)
	RespHeader           http.Header   // $sent_http_*
	SentTrailer          http.Header   // $sent_trailer_*: add_trailer's so far
	DocumentRoot         string        // $document_root, $realpath_root
	Referers             *Referers     // the location's valid_referers ($invalid_referer); nil: none
	SecureLink           *SecureLink   // the location's secure_link settings ($secure_link); nil: none
	UserID               *UserID       // the location's userid settings ($uid_got, $uid_set); nil: none
	// Logf writes to the request's error log at notice (true) or info
	// level (the userid module's messages); nil: nowhere.
	Logf            func(notice bool, format string, args ...any)
	RequestFilename string // $request_filename
	RemoteUser      string // $remote_user once auth_basic accepted it; "" parses Authorization
	RealIPRemote    string // the peer's host:port when realip replaced HTTP.RemoteAddr ($realip_remote_*)
	LimitRate       string // $limit_rate (writable, kept as bytes: "40k" reads "40960"); "" reads as "0"
	// LimitReqStatus and LimitConnStatus are $limit_req_status and
	// $limit_conn_status (PASSED, DELAYED, REJECTED, ..._DRY_RUN); "" reads
	// as not found, as where no limit applied. They belong to the main
	// request (nginx's r->main): a subrequest reads and sets its Main's.
	LimitReqStatus  string
	LimitConnStatus string
	// GzipRatio is $gzip_ratio once the gzip filter compressed the body
	// ("" reads as not found).
	GzipRatio string
	// Main is the main request's variables in a subrequest (nil in the
	// main request itself).
	Main *Request
	// Completed: the response went out in full and the request ends
	// normally ($request_completion); set just before its log phase.
	Completed bool
	// Conns gives $connections_active, _reading, _writing and _waiting
	// (stub_status's counters); nil: not found.
	Conns                ConnCounter
	UpstreamHeaderTime   time.Duration // < 0: not measured
	ProxyHost, ProxyPort string        // $proxy_host, $proxy_port while proxy_pass builds its request
	// UpstreamBytesSent, UpstreamBytesReceived and UpstreamResponseLength
	// are $upstream_bytes_sent, $upstream_bytes_received and
	// $upstream_response_length (the body) of the last attempt; < 0: none.
	UpstreamBytesSent, UpstreamBytesReceived, UpstreamResponseLength int64
	// RequestBody is $request_body once a module read the body into
	// memory (proxy_pass); nil: not read (not found).
	RequestBody []byte
	// RequestBodyFile is $request_body_file: the file a body that did not
	// fit client_body_buffer_size (or any, under client_body_in_file_only)
	// was written to; RequestBody is nil then, as nginx's is not found.
	RequestBodyFile string
	// UpstreamTries are the attempts before the current one
	// (proxy_next_upstream): the upstream variables list them first,
	// ", "-separated, as nginx does.
	UpstreamTries []UpstreamTry

	// UpstreamHeaderFrom, when set, gives UpstreamHeader at its first
	// read (Upstream): most requests never read it.
	UpstreamHeaderFrom HeaderSource
	// LazyPaths, when set, gives DocumentRoot and RequestFilename when
	// they are read (ResolvePaths): most requests never read them.
	LazyPaths PathSource

	g       *Registry
	argsSet bool // ngx.var.args = "" : $args is "" rather than not found
	caps    *Captures
	vals    []slot
	// valsMu, when vals are shared with a request that runs beside this
	// one (a mirror: ShareValuesSync), guards every read and write of them
	valsMu    *sync.Mutex
	requestID string
	// spare is a cleared array of stored values kept by Reset, which the
	// first write takes instead of making one
	spare []slot

	// secureLinkExpires is $secure_link_expires, kept by the computation
	// of $secure_link (nginx's module context: an internal redirect
	// forgets it, see ForgetModuleState)
	secureLinkExpires    string
	hasSecureLinkExpires bool
	// secureLinkDepth: computations of $secure_link under way (its
	// expressions may read it)
	secureLinkDepth int
	// uid is the userid module's state (in the main request)
	uid *userIDState
	// uidGotCache, uidSetCache: $uid_got and $uid_set once read (in the
	// main request)
	uidGotCache, uidSetCache uidCache
	// uidReset is $uid_reset once `set` wrote it
	uidReset    string
	uidResetSet bool
}

// NewRequest starts the variable state of hr. It computes URI and Args from
// the raw request target (hr.RequestURI, or hr.URL for client-built
// requests); an invalid target sets URIErr.
func NewRequest(g *Registry, hr *http.Request) *Request {
	r := &Request{}
	InitRequest(r, g, hr)
	return r
}

// InitRequest is NewRequest into r, a zero Request (or one Reset).
func InitRequest(r *Request, g *Registry, hr *http.Request) {
	// field by field: a composite literal would be built aside and copied
	r.HTTP, r.Start, r.g = hr, time.Now(), g
	r.UpstreamConnectTime, r.UpstreamResponseTime, r.UpstreamHeaderTime = -1, -1, -1
	r.UpstreamBytesSent, r.UpstreamBytesReceived, r.UpstreamResponseLength = -1, -1, -1
	raw := hr.RequestURI
	if raw == "" && hr.URL != nil {
		raw = hr.URL.RequestURI()
	}
	path, args, _ := SplitRequestURI(raw)
	r.Args = args
	r.URI, r.URIErr = NormalizeURI(path)
}

// PathSource computes $document_root and $request_filename; fixed: they
// stay what they are (no variable in them), else each read computes them
// again, as nginx does.
type PathSource interface {
	Paths() (docRoot, filename string, fixed bool)
}

// HeaderSource makes a header map (a backend's answer).
type HeaderSource interface {
	Header() http.Header
}

// Upstream returns UpstreamHeader, made from UpstreamHeaderFrom first.
func (r *Request) Upstream() http.Header {
	if src := r.UpstreamHeaderFrom; src != nil {
		r.UpstreamHeaderFrom = nil
		r.UpstreamHeader = src.Header()
	}
	return r.UpstreamHeader
}

// ResolvePaths fills DocumentRoot and RequestFilename from LazyPaths.
func (r *Request) ResolvePaths() {
	if p := r.LazyPaths; p != nil {
		var fixed bool
		r.DocumentRoot, r.RequestFilename, fixed = p.Paths()
		if fixed {
			r.LazyPaths = nil
		}
	}
}

// ShareValues makes r read and write the stored values (set, map, the
// kept values of cached variables) of parent: a write in either is seen by
// both, as nginx's subrequests share their parent's (SSI include,
// auth_request, addition; ngx.location.capture with share_all_vars).
func (r *Request) ShareValues(parent *Request) {
	r.vals, r.valsMu = parent.slots(), parent.valsMu
}

// ShareValuesSync is ShareValues for a request that runs beside parent on
// another goroutine (a mirror): from now on every read and write of the
// values, by either or by the requests that share them later, takes a
// lock. Call it on parent's goroutine, before r's starts.
func (r *Request) ShareValuesSync(parent *Request) {
	if parent.valsMu == nil {
		parent.valsMu = new(sync.Mutex)
	}
	r.ShareValues(parent)
}

// slotAt returns the value stored in slot i (vals made).
func (r *Request) slotAt(i int) slot {
	if mu := r.valsMu; mu != nil {
		mu.Lock()
		defer mu.Unlock()
	}
	return r.vals[i]
}

// setSlot stores s in slot i, making the values first.
func (r *Request) setSlot(i int, s slot) {
	vals := r.slots()
	if mu := r.valsMu; mu != nil {
		mu.Lock()
		defer mu.Unlock()
	}
	vals[i] = s
}

// slots returns the stored values, made at the first write: most requests
// never write one (every config declares the slots of otherNginxVariables),
// and an idle tunnel keeps its request for its log line.
func (r *Request) slots() []slot {
	if r.vals == nil {
		if n := r.g.nslots; cap(r.spare) >= n {
			r.vals = r.spare[:n]
		} else {
			r.vals = make([]slot, n)
		}
		r.spare = nil
	}
	return r.vals
}

// Reset makes r a zero Request again, for InitRequest, keeping the array
// of its stored values, cleared, for the next request's first write. Call
// it only when nothing else holds r or shares its values (ShareValues).
func (r *Request) Reset() {
	vals := r.vals
	if vals == nil {
		vals = r.spare
	}
	clear(vals)
	*r = Request{spare: vals[:0]}
}

// CopyValues gives r a copy of parent's stored values (copy_all_vars).
func (r *Request) CopyValues(parent *Request) {
	if mu := parent.valsMu; mu != nil {
		mu.Lock()
		defer mu.Unlock()
	}
	r.vals, r.valsMu = append([]slot(nil), parent.vals...), nil
}

// OwnValues gives r stored values of its own, none written yet (a Lua
// capture without share_all_vars or copy_all_vars).
func (r *Request) OwnValues() { r.vals, r.valsMu = nil, nil }

// SetCaptures records the captures of a successful regex match (location,
// if, rewrite, server_name, map): $1..$9 read them (a regex without groups
// leaves them all empty) and every named group sets its variable, as nginx
// does. A nil c clears $1..$9: call it when an `if` or `rewrite` regex does
// not match (nginx sets r->ncaptures = 0 there; measured: after a failed
// `if ($uri ~ x)` the location's $1 reads ""). A failed location or map
// regex leaves the captures alone.
func (r *Request) SetCaptures(c *Captures) {
	r.caps = c
	if c == nil {
		return
	}
	for i, name := range c.re.names {
		if name == "" {
			continue
		}
		if d, ok := r.g.defs[lowerName(name)]; ok && d.kind == kindSet {
			v, _ := c.Group(i)
			r.setSlot(d.slot, slot{v: v, st: slotValue})
		}
	}
}

// lowerName is a variable's name as the registry keys it: nginx's variable
// names are caseless, and a named capture may be spelled in capitals.
func lowerName(name string) string {
	for i := 0; i < len(name); i++ {
		if 'A' <= name[i] && name[i] <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}

// Captures returns the captures of the last successful match, or nil.
func (r *Request) Captures() *Captures { return r.caps }

// Capture returns $n of the last successful match (ngx.var[n]).
func (r *Request) Capture(n int) (string, bool) { return r.caps.Group(n) }

// Registry returns the registry the request was made from.
func (r *Request) Registry() *Registry { return r.g }

// value reads a variable; ok is false for "not found" (ngx.var gives nil,
// templates give "").
func (r *Request) value(d *varDef) (string, bool) {
	switch d.kind {
	case kindSet:
		if v, ok, kept := r.kept(d); kept {
			return v, ok
		}
		// nginx: an uninitialized `set` variable reads as "", a capture
		// variable as not found, a prefix name as the prefix variable.
		if d.get != nil {
			return d.get(r)
		}
		return "", d.setDeclared
	case kindMap:
		// a value kept, or written by `set $m` (nginx keeps that one even
		// for a volatile map)
		if v, ok, kept := r.kept(d); kept {
			return v, ok
		}
		v := d.m.eval(r)
		if !d.m.volatile && d.indexed {
			r.setSlot(d.slot, slot{v: v, st: slotValue})
		}
		return v, true
	case kindCached:
		if !d.indexed {
			return d.get(r)
		}
		if v, ok, kept := r.kept(d); kept {
			return v, ok
		}
		v, ok := d.get(r)
		st := slotNotFound
		if ok {
			st = slotValue
		}
		r.setSlot(d.slot, slot{v: v, st: st})
		return v, ok
	}
	return d.get(r)
}

// logValue is value for an access-log line, the request's last reader: a
// cached variable's kept value, or else its value now, not kept (no slots
// made for it).
//
// A subrequest's log line (log_subrequest) is not the last reader: it keeps
// the value as any other read does, in values its main request may share.
func (r *Request) logValue(d *varDef) (string, bool) {
	if d.logDirect {
		return d.get(r)
	}
	if d.kind != kindCached || r.Main != nil {
		return r.value(d)
	}
	if v, ok, kept := r.kept(d); kept {
		return v, ok
	}
	return d.get(r)
}

// kept returns the value stored in d's slot, if one was: kept is false
// when the slot was never written (or no slots were made).
func (r *Request) kept(d *varDef) (v string, ok, kept bool) {
	if r.vals == nil {
		return "", false, false
	}
	switch s := r.slotAt(d.slot); s.st {
	case slotValue:
		return s.v, true, true
	case slotNotFound:
		return "", false, true
	}
	return "", false, false
}

func (r *Request) store(d *varDef, v string, ok bool) {
	switch {
	case d.set != nil:
		d.set(r, v, ok)
	case d.kind == kindSet || d.kind == kindMap:
		if ok {
			r.setSlot(d.slot, slot{v: v, st: slotValue})
		} else {
			r.setSlot(d.slot, slot{st: slotNotFound})
		}
	}
}

// Get reads a variable with ngx.var semantics: an unknown or not-found
// variable gives false ($arg_x absent, $args empty, an unset `set`
// variable); a declared `set` variable never written gives "". Names are
// case-insensitive. An all-digit name reads capture $n.
func (r *Request) Get(name string) (string, bool) {
	if allDigits(name) {
		n, err := strconv.Atoi(name)
		if err != nil {
			return "", false
		}
		return r.caps.Group(n)
	}
	d := r.g.findDef(lower(name))
	if d == nil {
		return "", false
	}
	return r.value(d)
}

// Set writes a variable with ngx.var semantics and lua-nginx-module's
// errors: `variable "nope" not found for writing; maybe it is a built-in
// variable that is not changeable or you forgot to use "set $nope ”;" in
// the config file to define it first` for undeclared names and $arg_*,
// $http_* ..., `variable "uri" not changeable` for read-only built-ins.
// $args is writable and changes $query_string, $is_args and $arg_*.
func (r *Request) Set(name, value string) error {
	d, err := r.writable(name)
	if err != nil {
		return err
	}
	r.store(d, value, true)
	return nil
}

// Unset is ngx.var.x = nil: later reads of the variable give not found.
func (r *Request) Unset(name string) error {
	d, err := r.writable(name)
	if err != nil {
		return err
	}
	r.store(d, "", false)
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func (r *Request) writable(name string) (*varDef, error) {
	if name == "" || allDigits(name) {
		return nil, errors.New("bad variable name")
	}
	lname := lower(name)
	d, ok := r.g.defs[lname]
	if !ok || d.kind == kindPrefix {
		return nil, fmt.Errorf("variable \"%s\" not found for writing; maybe it is a built-in variable that is not changeable or you forgot to use \"set $%s '';\" in the config file to define it first", lname, lname)
	}
	if !d.changeable {
		return nil, fmt.Errorf("variable \"%s\" not changeable", lname)
	}
	if d.kind == kindMap {
		return nil, fmt.Errorf("variable \"%s\" cannot be assigned a value", lname)
	}
	return d, nil
}

func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// builtin is one of nginx's named variables.
type builtin struct {
	get func(r *Request) (string, bool)
	set func(r *Request, v string, ok bool)
	// cached: the first read's value (found or not) stays for the rest of
	// the request, in a slot, as nginx keeps a variable that its module
	// does not mark as not cacheable ($secure_link)
	cached bool
	// logDirect: an access-log line computes the value itself, whatever
	// was kept (nginx's log module has its own code for these names)
	logDirect bool
}

func found(s string) (string, bool) { return s, true }

func nonEmpty(s string) (string, bool) { return s, s != "" }

var hostname, _ = os.Hostname()

var builtins = map[string]builtin{
	"uri":          {get: func(r *Request) (string, bool) { return found(r.URI) }},
	"document_uri": {get: func(r *Request) (string, bool) { return found(r.URI) }},
	"args":         {get: getArgs, set: setArgs},
	"query_string": {get: getArgs},
	"is_args": {get: func(r *Request) (string, bool) {
		if r.Args != "" {
			return "?", true
		}
		return "", true
	}},
	"request_uri":    {get: func(r *Request) (string, bool) { return found(r.requestURI()) }},
	"request_method": {get: func(r *Request) (string, bool) { return found(r.HTTP.Method) }},
	"server_protocol": {get: func(r *Request) (string, bool) {
		if r.RequestHead != "" {
			return lineProtocol(requestLine(r.RequestHead)), true
		}
		return found(r.HTTP.Proto)
	}},
	"request": {get: func(r *Request) (string, bool) {
		if r.RequestHead != "" {
			return requestLine(r.RequestHead), true
		}
		u := r.HTTP.RequestURI
		if u == "" {
			u = r.HTTP.URL.RequestURI()
		}
		return found(r.HTTP.Method + " " + u + " " + r.HTTP.Proto)
	}},
	"host":        {get: func(r *Request) (string, bool) { return found(r.Host()) }},
	"hostname":    {get: func(*Request) (string, bool) { return found(hostname) }},
	"server_name": {get: func(r *Request) (string, bool) { return found(r.ServerName) }},
	"scheme": {get: func(r *Request) (string, bool) {
		if r.HTTP.TLS != nil {
			return "https", true
		}
		return "http", true
	}},
	"http2": {get: func(r *Request) (string, bool) {
		// the protocol of an HTTP/2 request: "h2" over TLS, "h2c" in clear
		switch {
		case r.HTTP.ProtoMajor != 2:
			return "", true
		case r.HTTP.TLS != nil:
			return "h2", true
		}
		return "h2c", true
	}},
	"https": {get: func(r *Request) (string, bool) {
		if r.HTTP.TLS != nil {
			return "on", true
		}
		return "", true
	}},
	"ssl_server_name": {get: func(r *Request) (string, bool) {
		if r.HTTP.TLS == nil || r.HTTP.TLS.ServerName == "" {
			return "", false
		}
		return r.HTTP.TLS.ServerName, true
	}},
	"ssl_session_reused": {get: func(r *Request) (string, bool) {
		if r.HTTP.TLS == nil {
			return "", false
		}
		if r.HTTP.TLS.DidResume {
			return "r", true
		}
		return ".", true
	}},
	"secure_link": {get: (*Request).secureLink, cached: true},
	"uid_got":     {get: (*Request).uidGot},
	"uid_set":     {get: (*Request).uidSet},
	// $uid_reset is the userid module's: "0" unless a map or set gives
	// it another value (changeable)
	"uid_reset": {get: func(r *Request) (string, bool) {
		if r.uidResetSet {
			return r.uidReset, true
		}
		return "0", true
	}, set: func(r *Request, v string, ok bool) { r.uidReset, r.uidResetSet = v, true }},
	"secure_link_expires": {get: (*Request).secureLinkExpiresValue, cached: true},
	// nginx keeps $invalid_referer once read, for the whole request (its
	// module does not mark it not cacheable): another location's
	// valid_referers does not change it
	"invalid_referer": {cached: true, get: func(r *Request) (string, bool) {
		ref, has := "", false
		if r.HTTP != nil {
			if vs := r.HTTP.Header.Values("Referer"); len(vs) > 0 {
				ref, has = vs[0], true
			}
		}
		if r.Referers.Invalid(ref, has) {
			return "1", true
		}
		return "", true
	}},
	"remote_addr": {get: func(r *Request) (string, bool) { return found(r.remoteHost()) }},
	"remote_port": {get: func(r *Request) (string, bool) { return found(addrPort(r.HTTP.RemoteAddr)) }},
	"realip_remote_addr": {get: func(r *Request) (string, bool) {
		if r.RealIPRemote == "" {
			return found(r.remoteHost())
		}
		h, _, _ := net.SplitHostPort(r.RealIPRemote)
		return found(h)
	}},
	"realip_remote_port": {get: func(r *Request) (string, bool) {
		if r.RealIPRemote == "" {
			return found(addrPort(r.HTTP.RemoteAddr))
		}
		return found(addrPort(r.RealIPRemote))
	}},
	"binary_remote_addr": {get: func(r *Request) (string, bool) {
		ip := net.ParseIP(r.remoteHost())
		if ip == nil {
			return "", false
		}
		if v4 := ip.To4(); v4 != nil {
			return string(v4), true
		}
		return string(ip), true
	}},
	"server_addr": {get: func(r *Request) (string, bool) { h, _ := r.local(); return found(h) }},
	"server_port": {get: func(r *Request) (string, bool) { _, p := r.local(); return found(p) }},
	"remote_user": {get: func(r *Request) (string, bool) {
		if r.RemoteUser != "" {
			return r.RemoteUser, true
		}
		// Header.Get's result without its canonicalizing of the key
		// (some 400 instructions a log line in the combined format)
		var auth string
		if vs := r.HTTP.Header["Authorization"]; len(vs) > 0 {
			auth = vs[0]
		}
		return basicUser(auth)
	}},
	"content_type":   {get: func(r *Request) (string, bool) { return firstHeader(r.HTTP.Header, "Content-Type") }},
	"content_length": {get: func(r *Request) (string, bool) { return firstHeader(r.HTTP.Header, "Content-Length") }},
	"request_id": {get: func(r *Request) (string, bool) {
		r = r.MainRequest() // one id for a request and its subrequests
		if r.requestID == "" {
			var b [16]byte
			rand.Read(b[:])
			r.requestID = hex.EncodeToString(b[:])
		}
		return r.requestID, true
	}},
	"connection": {get: func(r *Request) (string, bool) { return found(strconv.FormatUint(r.ConnID, 10)) }},
	"pipe": {get: func(r *Request) (string, bool) {
		if PipelinedOf != nil && PipelinedOf(r.HTTP) {
			return "p", true
		}
		return ".", true
	}},
	"connection_requests": {get: func(r *Request) (string, bool) {
		return found(strconv.Itoa(max(r.ConnRequests, 1)))
	}},
	"connection_time": {get: func(r *Request) (string, bool) {
		s := r.ConnStart
		if s.IsZero() {
			s = r.Start
		}
		return found(seconds(time.Since(s)))
	}},
	"msec": {get: func(*Request) (string, bool) {
		now := time.Now()
		return found(fmt.Sprintf("%d.%03d", now.Unix(), now.Nanosecond()/1e6))
	}},
	"time_local": {get: func(*Request) (string, bool) { return found(timeLocal.now()) }},
	// the SSI module's: its default timefmt "%A, %d-%b-%Y %H:%M:%S %Z"
	// (an SSI page's own timefmt is applied by the SSI filter)
	"date_gmt": {get: func(*Request) (string, bool) {
		return found(time.Now().UTC().Format("Monday, 02-Jan-2006 15:04:05 GMT"))
	}},
	"date_local": {get: func(*Request) (string, bool) {
		return found(time.Now().Format("Monday, 02-Jan-2006 15:04:05 MST"))
	}},
	"time_iso8601":        {get: func(*Request) (string, bool) { return found(timeISO8601.now()) }},
	"connections_active":  connectionsVar(0),
	"connections_reading": connectionsVar(1),
	"connections_writing": connectionsVar(2),
	"connections_waiting": connectionsVar(3),
	"pid":                 {get: func(*Request) (string, bool) { return found(strconv.Itoa(os.Getpid())) }},
	"nginx_version":       {get: func(*Request) (string, bool) { return found(NginxVersion) }},
	"status": {get: func(r *Request) (string, bool) {
		if n := r.Status; n >= 0 && n < 1000 {
			return found(statusDigits[3*n : 3*n+3])
		}
		return found(fmt.Sprintf("%03d", r.Status))
	}},
	// nginx keeps $bytes_sent and $body_bytes_sent once read (add_header,
	// set, a map): later reads give that value, save the log line's own
	// $bytes_sent and $body_bytes_sent, which the log module computes
	// (logDirect)
	"bytes_sent": {cached: true, logDirect: true, get: func(r *Request) (string, bool) {
		return found(strconv.FormatInt(r.BytesSent, 10))
	}},
	"body_bytes_sent": {cached: true, logDirect: true, get: func(r *Request) (string, bool) {
		return found(strconv.FormatInt(r.BodyBytesSent, 10))
	}},
	"request_length": {get: func(r *Request) (string, bool) {
		if r.Main != nil {
			return "0", true // a subrequest read nothing (measured)
		}
		n := r.RequestLength
		if n == 0 {
			n = r.estimateLength()
		}
		return found(strconv.FormatInt(n, 10))
	}},
	"request_time": {get: func(r *Request) (string, bool) { return found(seconds(time.Since(r.Start))) }},
	// $request_completion is "OK" once the main request was answered in
	// full (nginx's r->request_complete: not after 444, 499, 408 or a
	// failed send), which only its log line and post_action see; nginx
	// keeps the first value read, so a read while the request runs (or a
	// subrequest's log line) leaves "" for the log line too
	"request_completion": {cached: true, get: func(r *Request) (string, bool) {
		if r.Completed && r.Main == nil {
			return "OK", true
		}
		return "", true
	}},
	"upstream_addr": {get: func(r *Request) (string, bool) {
		return r.upstreamList(func(t UpstreamTry) string { return t.Addr }, r.UpstreamAddr, r.UpstreamAddr != "")
	}},
	"upstream_status": {get: func(r *Request) (string, bool) {
		return r.upstreamList(func(t UpstreamTry) string { return statusOrDash(t.Status) },
			statusOrDash(r.UpstreamStatus), r.UpstreamStatus != 0)
	}},
	"upstream_connect_time": {get: func(r *Request) (string, bool) {
		return r.upstreamList(func(t UpstreamTry) string { return secondsOrDash(t.Connect) },
			secondsOrDash(r.UpstreamConnectTime), r.UpstreamConnectTime >= 0)
	}},
	"upstream_response_time": {get: func(r *Request) (string, bool) {
		return r.upstreamList(func(t UpstreamTry) string { return secondsOrDash(t.Response) },
			secondsOrDash(r.UpstreamResponseTime), r.UpstreamResponseTime >= 0)
	}},
	"upstream_header_time": {get: func(r *Request) (string, bool) {
		return r.upstreamList(func(t UpstreamTry) string { return secondsOrDash(t.Header) },
			secondsOrDash(r.UpstreamHeaderTime), r.UpstreamHeaderTime >= 0)
	}},
	"upstream_bytes_sent":      {get: func(r *Request) (string, bool) { return count(r.UpstreamBytesSent) }},
	"upstream_bytes_received":  {get: func(r *Request) (string, bool) { return count(r.UpstreamBytesReceived) }},
	"upstream_response_length": {get: func(r *Request) (string, bool) { return count(r.UpstreamResponseLength) }},
	"proxy_host":               {get: func(r *Request) (string, bool) { return nonEmpty(r.ProxyHost) }},
	"proxy_port":               {get: func(r *Request) (string, bool) { return nonEmpty(r.ProxyPort) }},
	"document_root": {get: func(r *Request) (string, bool) {
		r.ResolvePaths()
		return nonEmpty(r.DocumentRoot)
	}},
	"realpath_root": {get: func(r *Request) (string, bool) {
		r.ResolvePaths()
		if r.DocumentRoot == "" {
			return "", false
		}
		p, err := filepath.EvalSymlinks(r.DocumentRoot)
		if err != nil {
			return "", false
		}
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		return p, true
	}},
	"request_filename": {get: func(r *Request) (string, bool) {
		r.ResolvePaths()
		return nonEmpty(r.RequestFilename)
	}},
	"request_body": {get: func(r *Request) (string, bool) {
		return string(r.RequestBody), r.RequestBody != nil
	}},
	"request_body_file": {get: func(r *Request) (string, bool) { return nonEmpty(r.RequestBodyFile) }},
	"limit_rate": {get: func(r *Request) (string, bool) {
		if r.LimitRate == "" {
			return "0", true
		}
		return r.LimitRate, true
	}, set: setLimitRate},
	"limit_req_status":  {get: func(r *Request) (string, bool) { return nonEmpty(r.MainRequest().LimitReqStatus) }},
	"limit_conn_status": {get: func(r *Request) (string, bool) { return nonEmpty(r.MainRequest().LimitConnStatus) }},
	"gzip_ratio":        {get: func(r *Request) (string, bool) { return nonEmpty(r.GzipRatio) }},
	"proxy_add_x_forwarded_for": {get: func(r *Request) (string, bool) {
		if xff, ok := xffGetter(r); ok {
			return xff + ", " + r.remoteHost(), true
		}
		return found(r.remoteHost())
	}},
}

var xffGetter = headerGetter("x_forwarded_for")

func getArgs(r *Request) (string, bool) {
	return r.Args, r.Args != "" || r.argsSet
}

// basicUser extracts the user of "Basic" credentials the way nginx's
// ngx_http_auth_basic_user does (it sets $remote_user whether or not
// auth_basic is on).
// requestLine is the first line of a request head, without its CR LF.
func requestLine(head string) string {
	line, _, _ := strings.Cut(head, "\n")
	return strings.TrimRight(line, "\r")
}

// lineProtocol is the protocol of a request line as written (nginx's
// r->http_protocol): what follows the method, the target and the spaces
// after each; "" for HTTP/0.9's two words.
func lineProtocol(line string) string {
	skip := func(s string, space bool) string {
		i := 0
		for i < len(s) && (s[i] == ' ') == space {
			i++
		}
		return s[i:]
	}
	rest := skip(skip(skip(line, false), true), false) // method, spaces, target
	return skip(rest, true)
}

func basicUser(h string) (string, bool) {
	const prefix = "Basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	enc := strings.TrimLeft(h[len(prefix):], " ")
	if i := strings.IndexByte(enc, '='); i >= 0 {
		enc = enc[:i]
	}
	dec, err := base64.RawStdEncoding.DecodeString(enc)
	if err != nil || len(dec) == 0 {
		return "", false
	}
	i := bytes.IndexByte(dec, ':')
	if i <= 0 {
		return "", false
	}
	return string(dec[:i]), true
}

// setLimitRate is nginx's set handler of $limit_rate: the value is a size
// ("40k", "1m"), kept in bytes; an invalid one ("", "x") changes nothing
// (nginx logs "invalid size" at error level).
func setLimitRate(r *Request, v string, _ bool) {
	mult := int64(1)
	if v != "" {
		switch v[len(v)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
	}
	if mult != 1 {
		v = v[:len(v)-1]
	}
	if v == "" || strings.Trim(v, "0123456789") != "" {
		return
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return
	}
	r.LimitRate = strconv.FormatInt(n*mult, 10)
}

func setArgs(r *Request, v string, ok bool) {
	if !ok {
		v = ""
	}
	r.Args, r.argsSet = v, ok
}

// seconds formats d like nginx's "%T.%03M": seconds with milliseconds.
func seconds(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	ms := d.Milliseconds()
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}

// Host returns $host: the request line's or Host header's host, lower case,
// without port or trailing dot; the server name when there is none.
func (r *Request) Host() string {
	h := ""
	if r.HTTP != nil {
		h = r.HTTP.Host
	}
	if h == "" {
		return r.ServerName
	}
	if v, ok := ValidateHost(h); ok && v != "" {
		return v
	}
	return r.ServerName
}

// ValidateHost checks a Host value like nginx (which answers 400 when it
// fails) and returns it lower case, without port and trailing dot.
func ValidateHost(h string) (string, bool) {
	hostLen := len(h)
	dotPos := hostLen // no dot yet
	inBracket := false
loop:
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case c == '.':
			if dotPos == i-1 {
				return "", false
			}
			dotPos = i
		case c == ':' && !inBracket:
			hostLen = i
			break loop
		case c == '[' && i == 0:
			inBracket = true
		case c == ']':
			inBracket = false
		case c == '/' || c <= 0x20 || c == 0x7f:
			return "", false
		}
	}
	if dotPos == hostLen-1 {
		hostLen--
	}
	if hostLen <= 0 {
		return "", false
	}
	return strings.ToLower(h[:hostLen]), true
}

// requestURI is $request_uri: the raw target, without the scheme and host
// of an absolute-form target.
func (r *Request) requestURI() string {
	u := r.HTTP.RequestURI
	if u == "" {
		return r.HTTP.URL.RequestURI()
	}
	if u[0] != '/' {
		if i := strings.Index(u, "://"); i > 0 {
			rest := u[i+3:]
			j := strings.IndexAny(rest, "/?")
			if j < 0 {
				return "/"
			}
			return rest[j:]
		}
	}
	return u
}

// addrPort is the port of a host:port address, "" when it has none or 0
// (nginx leaves $remote_port empty then).
func addrPort(a string) string {
	_, p, _ := net.SplitHostPort(a)
	if p == "0" {
		return ""
	}
	return p
}

func (r *Request) remoteHost() string {
	if strings.HasPrefix(r.HTTP.RemoteAddr, "unix:") {
		return r.HTTP.RemoteAddr // a unix socket's client, as nginx names it
	}
	h, _, err := net.SplitHostPort(r.HTTP.RemoteAddr)
	if err != nil {
		return r.HTTP.RemoteAddr
	}
	return h
}

func (r *Request) local() (host, port string) {
	a, ok := r.HTTP.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return "", ""
	}
	h, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String(), ""
	}
	return h, p
}

// estimateLength approximates $request_length from the request line and
// headers (net/http does not expose the bytes read).
func (r *Request) estimateLength() int64 {
	n := len(r.HTTP.Method) + 1 + len(r.requestURI()) + 1 + len(r.HTTP.Proto) + 2
	if r.HTTP.Host != "" {
		n += len("Host: ") + len(r.HTTP.Host) + 2
	}
	for k, vs := range r.HTTP.Header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	n += 2
	if r.HTTP.ContentLength > 0 {
		n += int(r.HTTP.ContentLength)
	}
	return int64(n)
}

// MainRequest is the main request's variables: r itself, or its Main.
func (r *Request) MainRequest() *Request {
	if r.Main != nil {
		return r.Main
	}
	return r
}

// UpstreamTry is one earlier attempt of a request at an upstream server.
type UpstreamTry struct {
	Addr                      string
	Status                    int           // 0: none ("-")
	Connect, Header, Response time.Duration // < 0: not measured ("-")
}

// upstreamList is an upstream variable's value: the earlier attempts' values,
// then the current one ("-" when it has none), ", "-separated; without
// earlier attempts, the current one alone (not found when it has none).
func (r *Request) upstreamList(each func(UpstreamTry) string, cur string, ok bool) (string, bool) {
	if len(r.UpstreamTries) == 0 {
		if !ok {
			return "", false
		}
		return cur, true
	}
	var b strings.Builder
	for _, t := range r.UpstreamTries {
		b.WriteString(each(t))
		b.WriteString(", ")
	}
	if !ok {
		cur = "-"
	}
	b.WriteString(cur)
	return b.String(), true
}

func statusOrDash(s int) string {
	if s == 0 {
		return "-"
	}
	return strconv.Itoa(s)
}

func secondsOrDash(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return seconds(d)
}

// count is a byte count variable's value: not found below 0.
func count(n int64) (string, bool) {
	if n < 0 {
		return "", false
	}
	return strconv.FormatInt(n, 10), true
}

// statusDigits are the three digits of every number below 1000, one after
// the other: $status is a part of it rather than a new string.
var statusDigits = func() string {
	b := make([]byte, 0, 3000)
	for n := 0; n < 1000; n++ {
		b = append(b, byte('0'+n/100), byte('0'+n/10%10), byte('0'+n%10))
	}
	return string(b)
}()

// secondText is the current time in one layout, formatted once a second
// (nginx too keeps its log times formatted, ngx_cached_http_log_time):
// $time_local and $time_iso8601, which access logs read per request.
type secondText struct {
	layout string
	last   atomic.Pointer[formattedSecond]
}

type formattedSecond struct {
	unix int64
	text string
}

var (
	timeLocal   = secondText{layout: "02/Jan/2006:15:04:05 -0700"}
	timeISO8601 = secondText{layout: "2006-01-02T15:04:05-07:00"}
)

// now is the current time in t's layout.
func (t *secondText) now() string {
	now := time.Now()
	if f := t.last.Load(); f != nil && f.unix == now.Unix() {
		return f.text
	}
	f := &formattedSecond{unix: now.Unix(), text: now.Format(t.layout)}
	t.last.Store(f)
	return f.text
}
