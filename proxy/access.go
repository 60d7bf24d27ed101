package proxy

import (
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"ngxsockify/nginxconf"
	"ngxsockify/proxy/basicauth"
)

// access runs the access phase: directives we cannot enforce (fail closed),
// limit_except, allow/deny, auth_basic (combined by satisfy), then
// access_by_lua. It reports whether the request may go on.
func (rq *request) access() bool {
	if rq.subrequest {
		return true // nginx runs no access checks for subrequests
	}
	conf := rq.conf // the limit_except block's when it applies (chosen with the location)
	if len(conf.FailClosed) > 0 {
		w := conf.FailClosed[0]
		rq.logf(LevelErr, `"%s" directive in %s:%d is not supported by ngxsockify, request refused`, w.Directive, w.File, w.Line)
		rq.finalize(http.StatusInternalServerError)
		return false
	}
	ruled, allowed := rq.checkRules(conf)
	if !conf.SatisfyAny {
		if ruled && !allowed {
			rq.logf(LevelErr, `access forbidden by rule`)
			rq.finalize(http.StatusForbidden)
			return false
		}
		if conf.AuthBasic != nil {
			if ok, code := rq.basicAuth(conf); !ok {
				rq.finalize(code)
				return false
			}
		}
		return rq.accessLua()
	}
	// satisfy any: the access handlers run in nginx's order (allow/deny,
	// auth_basic, access_by_lua); the first that grants ends the phase, and
	// a refusal only counts when none grants. Checked on nginx 1.22: a Lua
	// hook that returns normally grants, ngx.exit(>=300) answers at once.
	if ruled && allowed {
		return true
	}
	code := 0
	if ruled {
		code = http.StatusForbidden
	}
	if conf.AuthBasic != nil {
		ok, c := rq.basicAuth(conf)
		if ok {
			return true
		}
		code = c
	}
	if rq.conf.AccessLua != nil {
		return rq.accessLua()
	}
	if code != 0 {
		if code == http.StatusForbidden {
			rq.logf(LevelErr, `access forbidden by rule`)
		}
		rq.finalize(code)
		return false
	}
	return true
}

func (rq *request) accessLua() bool {
	if rq.conf.AccessLua != nil {
		return rq.runLuaPhase(rq.conf.AccessLua)
	}
	return true
}

// checkRules applies allow/deny in order; ruled is false when no rule matched.
func (rq *request) checkRules(conf *nginxconf.LocConf) (ruled, allowed bool) {
	if len(conf.Access) == 0 {
		return false, false
	}
	ip := clientIP(rq.r)
	unix := ip == nil
	for _, rule := range conf.Access {
		switch {
		case rule.All:
		case rule.Unix:
			if !unix {
				continue
			}
		case rule.Net != nil:
			if ip == nil {
				continue
			}
			v := ip
			if v4 := ip.To4(); v4 != nil && len(rule.Net.IP) == 4 {
				v = v4
			}
			if !rule.Net.Contains(v) {
				continue
			}
		}
		return true, rule.Allow
	}
	return false, false
}

// basicAuth checks the Authorization header against auth_basic_user_file.
// It returns the status to answer with when the check fails (401 or 500).
func (rq *request) basicAuth(conf *nginxconf.LocConf) (bool, int) {
	realm := conf.AuthBasic.Eval(rq.v)
	if realm == "off" {
		return true, 0
	}
	challenge := func() (bool, int) {
		rq.w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
		return false, http.StatusUnauthorized
	}
	user, pass, ok := basicauth.ParseAuthorization(rq.r.Header.Get("Authorization"))
	if !ok {
		if rq.r.Header.Get("Authorization") != "" {
			rq.logf(LevelInfo, `no user/password was provided for basic authentication`)
		}
		return challenge()
	}
	if conf.AuthUserFile == nil {
		return challenge()
	}
	path := rq.st.cfg.FullName(conf.AuthUserFile.Eval(rq.v))
	f, err := rq.st.auth.load(path)
	if err != nil {
		// nginx: a missing file is 403 (logged at error), anything else 500 (crit)
		if os.IsNotExist(err) || strings.Contains(err.Error(), "No such file") {
			rq.logf(LevelErr, `open() "%s" failed (%v)`, path, err)
			return false, http.StatusForbidden
		}
		rq.logf(LevelCrit, `open() "%s" failed (%v)`, path, err)
		return false, http.StatusInternalServerError
	}
	switch f.Verify(user, pass) {
	case basicauth.OK:
		rq.v.RemoteUser = user
		return true, 0
	case basicauth.Unsupported:
		rq.logf(LevelErr, `user "%s": the password hash in "%s" uses a scheme ngxsockify cannot check`, user, path)
		return false, http.StatusInternalServerError
	case basicauth.NoUser:
		rq.logf(LevelErr, `user "%s" was not found in "%s"`, user, path)
	default:
		rq.logf(LevelErr, `user "%s": password mismatch`, user)
	}
	return challenge()
}

// authCache keeps parsed htpasswd files, reloading one when it changes on
// disk (nginx reads the file on every request).
type authCache struct {
	mu    sync.Mutex
	files map[string]authEntry
}

type authEntry struct {
	mod  time.Time
	size int64
	f    *basicauth.File
}

func newAuthCache() *authCache { return &authCache{files: map[string]authEntry{}} }

func (c *authCache) load(path string) (*basicauth.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, unwrapPathErr(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.files[path]; ok && e.mod.Equal(fi.ModTime()) && e.size == fi.Size() {
		return e.f, nil
	}
	f, err := basicauth.Load(path)
	if err != nil {
		return nil, unwrapPathErr(err)
	}
	c.files[path] = authEntry{mod: fi.ModTime(), size: fi.Size(), f: f}
	return f, nil
}

// unwrapPathErr turns *os.PathError into nginx's "(2: No such file or directory)" shape.
func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return errnoError{pe.Err}
	}
	return err
}

type errnoError struct{ err error }

// Error prints the errno inside err the way nginx does: "2: No such file
// or directory".
func (e errnoError) Error() string {
	if e.err == nil {
		return "unknown error"
	}
	var en syscall.Errno
	if errors.As(e.err, &en) {
		return itoa(int(en)) + ": " + capitalize(en.Error())
	}
	return e.err.Error()
}

// realIP replaces the client address with the one a trusted proxy sent
// (set_real_ip_from, real_ip_header, real_ip_recursive), at most once per
// request, as nginx's realip module does in its post-read phase (server
// settings) and pre-access phase (location settings).
func (rq *request) realIP(conf *nginxconf.LocConf) {
	if rq.realIPDone || len(conf.RealIPFrom) == 0 {
		return
	}
	trusted := func(ip net.IP) bool {
		for _, r := range conf.RealIPFrom {
			switch {
			case r.Unix:
				if ip == nil {
					return true
				}
			case r.Net != nil && ip != nil:
				v := ip
				if v4 := ip.To4(); v4 != nil && len(r.Net.IP) == 4 {
					v = v4
				}
				if r.Net.Contains(v) {
					return true
				}
			}
		}
		return false
	}
	if !trusted(clientIP(rq.r)) {
		return
	}
	var addr net.IP
	if strings.EqualFold(conf.RealIPHeader, "X-Forwarded-For") {
		var list []string
		for _, v := range rq.r.Header.Values("X-Forwarded-For") {
			list = append(list, strings.Split(v, ",")...)
		}
		for i := len(list) - 1; i >= 0; i-- {
			a := net.ParseIP(strings.TrimSpace(list[i]))
			if a == nil {
				return
			}
			addr = a
			if !conf.RealIPRecursive || !trusted(a) {
				break
			}
		}
	} else {
		addr = net.ParseIP(strings.TrimSpace(rq.r.Header.Get(conf.RealIPHeader)))
	}
	if addr == nil {
		return
	}
	_, port, _ := net.SplitHostPort(rq.r.RemoteAddr)
	if port == "" {
		port = "0"
	}
	rq.r.RemoteAddr = net.JoinHostPort(addr.String(), port)
	rq.realIPDone = true // like nginx, only an address actually set ends the module's work
}
