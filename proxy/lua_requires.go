package proxy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"ngxsockify/luahooks"
)

// checkRequires is part of -t (Options.CheckRequires): every literal
// require of a hook must find its module, or the test fails naming the
// directive's file and line. nginx itself only finds out per request (a
// 500 and "module 'x' not found" in the error log); a `-t` that passes
// before a reload should mean the hooks can run. Hooks whose file name
// holds variables cannot be read before a request and are not checked.
func (st *state) checkRequires() error {
	if st.lua == nil {
		return nil
	}
	for _, c := range st.cfg.HTTP.LuaCodes {
		src, file, where := c.Source, false, ""
		if c.PathTmpl != nil {
			name, ok := c.PathTmpl.Const()
			if !ok {
				continue
			}
			if !filepath.IsAbs(name) {
				name = filepath.Join(st.cfg.Prefix, name)
			}
			data, err := os.ReadFile(name)
			if err != nil {
				continue // reported by the load step
			}
			src, file, where = string(data), true, name
		}
		for _, r := range luahooks.LiteralRequires(src, file) {
			found, searched, err := st.lua.FindModule(r.Name)
			if err != nil {
				return err
			}
			if found {
				continue
			}
			line := c.Line
			at := fmt.Sprintf("line %d of %s", r.Line, where)
			if !file {
				at = c.Directive
				if strings.HasSuffix(c.Directive, "_block") {
					line = c.Line + r.Line - 1
				}
			}
			return fmt.Errorf("module '%s' not found (required at %s; %s) in %s:%d", r.Name, at, searched, c.File, line)
		}
	}
	return nil
}
