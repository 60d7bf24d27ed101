package luahooks

import (
	"os"
	"strings"
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
