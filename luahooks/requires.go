package luahooks

import (
	"os"
	"reflect"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// Require is one call of require with a single string literal argument
// (`require "resty.redis"`, `require("cjson")`) in a chunk's source.
type Require struct {
	Name string
	Line int // in the chunk's source, from 1
}

// LiteralRequires lists the literal require calls of src, in source order,
// wherever they are (top level or inside functions). Calls through pcall
// or with a computed name are left out: a hook that guards a require
// expects it may fail. src that does not parse gives nil (the load step
// reports it).
func LiteralRequires(src string, file bool) []Require {
	src, err := luajitSource(src, "require check", file)
	if err != nil {
		return nil
	}
	chunk, err := parse.Parse(strings.NewReader(src), "require check")
	if err != nil {
		return nil
	}
	var out []Require
	collectRequires(reflect.ValueOf(chunk), &out)
	return out
}

var funcCallType = reflect.TypeOf((*ast.FuncCallExpr)(nil))

// collectRequires walks the syntax tree by reflection: every statement and
// expression is a pointer to a struct whose fields hold the children.
func collectRequires(v reflect.Value, out *[]Require) {
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return
		}
		if v.Type() == funcCallType {
			call := v.Interface().(*ast.FuncCallExpr)
			if id, ok := call.Func.(*ast.IdentExpr); ok && id.Value == "require" && call.Receiver == nil && len(call.Args) == 1 {
				if s, ok := call.Args[0].(*ast.StringExpr); ok {
					*out = append(*out, Require{Name: s.Value, Line: call.Line()})
				}
			}
		}
		collectRequires(v.Elem(), out)
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			collectRequires(v.Index(i), out)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				collectRequires(v.Field(i), out)
			}
		}
	}
}

// FindModule reports whether require(name) would find a module in a state
// as requests get it, after init_by_lua: a Go-native module
// (package.preload), one init_by_lua put in package.loaded, a file on
// package.path as init_by_lua left it, or Debian's nginx.* name for a
// resty.* library. When it would not, searched holds the places looked at,
// in Lua's words ("no field package.preload['x']", "no file '...'").
func (rt *Runtime) FindModule(name string) (found bool, searched string, err error) {
	st, err := rt.get()
	if err != nil {
		return false, "", err
	}
	defer rt.put(st)
	pkg, _ := st.L.G.Global.RawGetString("package").(*lua.LTable)
	if pkg == nil {
		return false, "", nil
	}
	for _, field := range []string{"loaded", "preload"} {
		if t, ok := pkg.RawGetString(field).(*lua.LTable); ok && lua.LVAsBool(t.RawGetString(name)) {
			return true, "", nil
		}
	}
	path := lua.LVAsString(pkg.RawGetString("path"))
	file := strings.ReplaceAll(name, ".", "/")
	var msgs strings.Builder
	msgs.WriteString("no field package.preload['" + name + "']")
	for _, pat := range strings.Split(path, ";") {
		if pat == "" {
			continue
		}
		p := strings.ReplaceAll(pat, "?", file)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return true, "", nil
		}
		msgs.WriteString(", no file '" + p + "'")
	}
	if rest, ok := strings.CutPrefix(name, "resty."); ok {
		for _, pat := range strings.Split(path, ";") {
			p := strings.ReplaceAll(pat, "?", "nginx/"+strings.ReplaceAll(rest, ".", "/"))
			if fi, err := os.Stat(p); pat != "" && err == nil && !fi.IsDir() {
				return true, "", nil
			}
		}
	}
	return false, msgs.String(), nil
}
