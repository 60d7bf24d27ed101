package luahooks

import (
	"errors"
	"os"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// builtinRestyCorePath is the package.path entry under which Debian's
// lua-resty-core installs resty/core.lua: ngxsockify's built-in resty.core
// stands in for that file, so a path with this entry finds it.
const builtinRestyCorePath = "/usr/share/lua/5.1/?.lua"

// RestyCoreMissing reports why lua-nginx-module could not load resty.core
// when it creates the VM with the package paths of opts (lua_package_path
// and lua_package_cpath over the defaults), in LuaJIT's words ("module
// 'resty.core' not found:" and every place tried), or "" when it is found:
// the path has the entry where the built-in one stands, or a file of
// either path exists. nginx then refuses to start.
func RestyCoreMissing(opts Options) string {
	path, cpath := basePackagePaths(opts.LuaPathEnv, opts.LuaCPathEnv)
	path = resolvePackagePath(opts.PackagePath, path, opts.Prefix)
	cpath = resolvePackagePath(opts.PackageCPath, cpath, opts.Prefix)
	return restyCoreMissing(path, cpath)
}

// restyCoreMissing is RestyCoreMissing for package.path path and
// package.cpath cpath.
func restyCoreMissing(path, cpath string) string {
	var b strings.Builder
	b.WriteString("module 'resty.core' not found:\n\tno field package.preload['resty.core']")
	tried := func(p, name string) bool {
		for _, tmpl := range strings.Split(p, ";") {
			if tmpl == "" {
				continue
			}
			if tmpl == builtinRestyCorePath && name == "resty/core" && p == path {
				return true
			}
			file := strings.ReplaceAll(tmpl, "?", name)
			if st, err := os.Stat(file); err == nil && !st.IsDir() {
				return true
			}
			b.WriteString("\n\tno file '" + file + "'")
		}
		return false
	}
	// LuaJIT's loaders in order: the Lua one, the C one, the all-in-one
	// C loader of the name's root.
	if tried(path, "resty/core") || tried(cpath, "resty/core") || tried(cpath, "resty") {
		return ""
	}
	return b.String()
}

// restyCoreLoadError is lua-nginx-module's error when the VM it creates
// for a request under lua_code_cache off cannot load resty.core: that VM
// starts with the package paths the first VM has after init_by_lua.
func (rt *Runtime) restyCoreLoadError() error {
	rt.mu.Lock()
	set, path, cpath := rt.vmPathSet, rt.vmPath, rt.vmCPath
	rt.mu.Unlock()
	if !set {
		return nil
	}
	if why := restyCoreMissing(path, cpath); why != "" {
		return errors.New(RestyCoreFailure(why))
	}
	return nil
}

// RestyCoreFailure is lua-nginx-module's message when it cannot load
// resty.core, why being RestyCoreMissing's answer.
func RestyCoreFailure(why string) string {
	return "failed to load the 'resty.core' module (https://github.com/openresty/lua-resty-core); " +
		"ensure you are using an OpenResty release from https://openresty.org/en/download.html (reason: " + why + ")"
}

// notePackagePaths keeps the package paths st has after init_by_lua.
func (rt *Runtime) notePackagePaths(st *state) {
	pkg, ok := st.L.GetGlobal("package").(*lua.LTable)
	if !ok {
		return
	}
	path, ok1 := pkg.RawGetString("path").(lua.LString)
	cpath, ok2 := pkg.RawGetString("cpath").(lua.LString)
	if !ok1 || !ok2 {
		return
	}
	rt.mu.Lock()
	rt.vmPathSet, rt.vmPath, rt.vmCPath = true, string(path), string(cpath)
	rt.mu.Unlock()
}
