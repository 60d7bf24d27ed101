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

// accessModule is nginx's ngx_http_access_module: allow and deny.
var accessModule = module{
	name: "access",
	register: func(e *engine) {
		e.add(phaseAccess, accessRules)
	},
}

// accessRules applies allow/deny: the first rule that matches grants or
// refuses; no match has no opinion. Under satisfy all a refusal is logged
// here, under satisfy any by the post-access phase if nothing grants.
func accessRules(rq *request) rc {
	ruled, allowed := rq.checkRules(rq.conf)
	switch {
	case !ruled:
		return rcDeclined
	case allowed:
		return rcOK
	}
	if !rq.conf.SatisfyAny {
		rq.logf(LevelErr, `access forbidden by rule`)
	}
	return http.StatusForbidden
}

// authBasicModule is nginx's ngx_http_auth_basic_module.
var authBasicModule = module{
	name: "auth_basic",
	register: func(e *engine) {
		e.add(phaseAccess, authBasic)
	},
}

// authBasic checks the credentials when auth_basic is on: granted, or
// refused with 401 (and a challenge), 403 or 500.
func authBasic(rq *request) rc {
	if rq.conf.AuthBasic == nil {
		return rcDeclined
	}
	if ok, code := rq.basicAuth(rq.conf); !ok {
		return rc(code)
	}
	return rcOK
}

// realipModule is nginx's ngx_http_realip_module: in the post-read phase
// with the server's settings, in the pre-access phase with the location's.
var realipModule = module{
	name: "realip",
	register: func(e *engine) {
		e.add(phasePostRead, func(rq *request) rc { rq.realIP(rq.srv.Conf); return rcDeclined })
		e.add(phasePreAccess, func(rq *request) rc { rq.realIP(rq.conf); return rcDeclined })
	},
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
