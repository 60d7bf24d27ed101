package proxy

import (
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/basicauth"
)

// authBasicModule is nginx's ngx_http_auth_basic_module.
var authBasicModule = module{
	name: "auth_basic",
	provision: func(_ *Server, st *state) error {
		st.auth = newAuthCache()
		return nil
	},
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

// basicAuth checks the Authorization header against auth_basic_user_file.
// It returns the status to answer with when the check fails (401 or 500).
func (rq *request) basicAuth(conf *nginxconf.LocConf) (bool, int) {
	realm := conf.AuthBasic.Eval(rq.v)
	if realm == "off" {
		return true, 0
	}
	challenge := func() (bool, int) {
		rq.w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
		rq.w.note("Www-Authenticate") // after what Lua's rewrite set, as nginx's list
		return false, http.StatusUnauthorized
	}
	user, pass, ok := basicauth.ParseAuthorization(rq.r.Header.Get("Authorization"))
	if !ok {
		if rq.r.Header.Get("Authorization") != "" {
			rq.logf(ngxlog.Info, `no user/password was provided for basic authentication`)
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
			rq.logf(ngxlog.Err, `open() "%s" failed (%v)`, path, err)
			return false, http.StatusForbidden
		}
		rq.logf(ngxlog.Crit, `open() "%s" failed (%v)`, path, err)
		return false, http.StatusInternalServerError
	}
	switch f.Verify(user, pass) {
	case basicauth.OK:
		rq.v.RemoteUser = user
		return true, 0
	case basicauth.Unsupported:
		// Fails closed with nginx's answer for a hash its crypt() cannot
		// compute (libxcrypt's failure token never matches): 401.
		rq.logf(ngxlog.Err, `user "%s": unsupported hash format in "%s"`, user, path)
	case basicauth.NoUser:
		rq.logf(ngxlog.Err, `user "%s" was not found in "%s"`, user, path)
	default:
		rq.logf(ngxlog.Err, `user "%s": password mismatch`, user)
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
