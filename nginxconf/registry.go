package nginxconf

import (
	"fmt"
	"reflect"
	"strings"
)

// A module is one nginx module's share of the compiler, as an nginx module
// file is (ngx_http_access_module.c): its command table, and through the
// entries' fields its location settings and their merge. The module files
// (mod_*.go) each declare one; modules lists them all.
type module struct {
	name string // nginx's name for it, e.g. "ngx_http_access_module"
	// create sets the module's defaults in the http level's settings
	// (nginx's create_loc_conf and the unset values its merge fills in).
	create     func(lc *LocConf)
	directives []directive
}

// A directive is one entry of a module's command table: everything
// ngxsockify knows about a directive beyond its contexts and arity, which
// come from crossplane's copy of nginx's tables (see directives.go).
type directive struct {
	name string
	// masks are the contexts and arity (directives.go's bits) of a
	// directive crossplane's tables do not have: the websockify module's
	// and ngxsockify's own. Others leave it nil.
	masks []uint
	// support says what ngxsockify does with the directive; the zero value
	// is Implemented, which needs a set function.
	support Support
	note    string // why, for refusals and fail-closed log lines
	// offDisarms marks a directive whose `off` turns its feature off, so
	// that not implementing it is harmless then.
	offDisarms bool
	// onDisarms marks a flag whose `on` is nginx's default and
	// ngxsockify's only behaviour, so that only `off` needs refusing.
	onDisarms bool

	// dup names the value a block may set once: a second directive with
	// the same slot in one block is nginx's "is duplicate" error (root and
	// alias share one). Flags get a slot of their own unless flagRepeats.
	dup         string
	flagRepeats bool
	// needsCode marks Lua directives whose handler refuses empty code.
	needsCode bool
	// opens is the context of the block the directive opens, for block
	// directives whose body holds directives; custom marks blocks whose
	// body is something else (map entries, types).
	opens  uint
	custom bool

	// inherit is how the value reaches nested levels, and field names the
	// LocConf field it lives in (for inherit rules other than
	// inheritMerge).
	inherit inheritRule
	field   string
	// set compiles one occurrence at the level lv.
	set func(c *compiler, lv *level, d *Directive)
}

// inheritRule is how a location-level value reaches nested blocks, as a
// module's merge_loc_conf decides in nginx.
type inheritRule int

const (
	// inheritMerge: a nested block inherits the value unless it sets its own.
	inheritMerge inheritRule = iota
	// inheritReplace: list directives (allow, add_header, ...); the first
	// occurrence in a block starts a new list instead of adding to the
	// inherited one.
	inheritReplace
	// inheritNone: the location's content handler and per-location flags
	// (websockify_pass, internal, limit_except): nested locations start
	// without them; if and limit_except blocks, which belong to the same
	// location, keep them.
	inheritNone
	// inheritNot: the block that sets it only; nested locations, if and
	// limit_except blocks start without it (try_files, which nginx's core
	// module does not merge: an if that matches has none).
	inheritNot
)

// modules is every module ngxsockify compiles, in nginx's order. It is
// set by init, because the modules' own functions refer to it.
var modules []*module

// registry is the directive table, by name, built from modules at init.
var registry map[string]*directive

// locFields are the LocConf field paths of directives with inherit rules.
var locFields map[string][]int

// noneFields are the fields nested locations start without; notFields
// the fields every nested block starts without.
var noneFields, notFields [][]int

func init() {
	modules = []*module{
		&coreModule, &httpCoreModule, &rewriteModule, &accessModule, &authBasicModule, &authRequestModule, &realipModule,
		&headersModule, &staticModule, &charsetModule, &subModule, &additionModule, &randomIndexModule, &ssiModule, &gzipModule, &logModule, &sslModule, &upstreamModule,
		&mapModule, &websockifyModule, &proxyModule, &luaModule, &limitModule, &statusModule, &emptyGifModule, &flvModule, &http2Module,
		&davModule, &mirrorModule, &geoModule, &splitClientsModule, &refererModule, &secureLinkModule, &useridModule, &headersMoreModule, &otherModules,
	}
	registry = map[string]*directive{}
	locFields = map[string][]int{}
	t := reflect.TypeOf(LocConf{})
	for _, m := range modules {
		for i := range m.directives {
			d := &m.directives[i]
			if _, dup := registry[d.name]; dup {
				panic("nginxconf: directive declared twice: " + d.name)
			}
			if d.support == Implemented && d.set == nil {
				panic("nginxconf: implemented directive without set: " + d.name)
			}
			registry[d.name] = d
			if d.field == "" {
				continue
			}
			f, ok := t.FieldByName(d.field)
			if !ok {
				panic(fmt.Sprintf("nginxconf: %s: no LocConf field %s", d.name, d.field))
			}
			if _, seen := locFields[d.field]; !seen && d.inherit == inheritNone {
				noneFields = append(noneFields, f.Index)
			}
			if _, seen := locFields[d.field]; !seen && d.inherit == inheritNot {
				notFields = append(notFields, f.Index)
			}
			locFields[d.field] = f.Index
		}
	}
	table = buildTable()
}

// spec returns the registry entry of name, or nil.
func spec(name string) *directive { return registry[name] }

// level is the block a directive is compiled in.
type level struct {
	ctx  blockCtx
	conf *LocConf  // the settings of this level; nil at the main level
	srv  *Server   // the server being compiled (server level and below)
	loc  *Location // the location (or if pseudo-location) being compiled
	tls  *tlsSettings
	// stmts receives rewrite-module statements; later, functions to run
	// once the block is complete; nested, the location blocks to compile
	// after it.
	stmts  *[]Stmt
	later  *[]func()
	nested *[]*Directive
}

// block compiles the directives of one block at level lv.
func (c *compiler) block(lv *level, dirs []*Directive) {
	for _, d := range dirs {
		c.apply(lv, d)
	}
}

// apply compiles one directive through its module's entry. Directives
// ngxsockify does not implement record what their class requires: a
// fail-closed access check or an unsupported content handler on the
// level's settings; ignored ones were reported by the parser.
func (c *compiler) apply(lv *level, d *Directive) {
	sp := spec(d.Name)
	if sp == nil || sp.set == nil {
		if lv.conf == nil {
			return
		}
		switch d.Support() {
		case FailClosed:
			lv.conf.FailClosed = append(lv.conf.FailClosed, Warning{File: d.File, Line: d.EndLine, Directive: d.Name})
		case UnsupportedContent:
			lv.conf.Unsupported = &Warning{File: d.File, Line: d.EndLine, Directive: d.Name}
		}
		return
	}
	if sp.inherit == inheritReplace && lv.conf != nil && lv.conf.first(sp.field) {
		f := reflect.ValueOf(lv.conf).Elem().FieldByIndex(locFields[sp.field])
		f.SetZero()
	}
	sp.set(c, lv, d)
}

// child returns the configuration a nested block starts from: everything
// inherited, nothing yet set at the new level. A nested location drops the
// inheritNone values; if and limit_except blocks keep them. Every nested
// block drops the inheritNot values.
func (lc *LocConf) child(location bool) *LocConf {
	n := *lc
	n.set = map[string]bool{}
	v := reflect.ValueOf(&n).Elem()
	for _, idx := range notFields {
		v.FieldByIndex(idx).SetZero()
	}
	if location {
		for _, idx := range noneFields {
			v.FieldByIndex(idx).SetZero()
		}
		n.Unsupported = nil // an unsupported content handler is one too
	}
	return &n
}

// first reports whether field is set for the first time at this level.
func (lc *LocConf) first(field string) bool {
	if lc.set[field] {
		return false
	}
	lc.set[field] = true
	return true
}

// handledElsewhere is the set function of directives whose meaning is
// structural and compiled by the block that holds them (include by the
// parser, map by the map pass, types inside its block).
func handledElsewhere(*compiler, *level, *Directive) {}

// Support is what ngxsockify does with this occurrence of the directive:
// the registry's answer, refined by the arguments where they matter
// (`ssl_verify_client off` is harmless, `auth_request off` checks nothing).
func (d *Directive) Support() Support {
	info, ok := lookup(d.Name)
	if !ok {
		return Refused
	}
	switch info.Support {
	case Refused, FailClosed, UnsupportedContent:
		if sp := spec(d.Name); sp != nil && (sp.offDisarms && isOff(d) || sp.onDisarms && isOn(d)) {
			return Ignored
		}
	}
	return info.Support
}

func isOff(d *Directive) bool {
	return len(d.Args) == 1 && strings.EqualFold(d.Args[0], "off")
}

func isOn(d *Directive) bool {
	return len(d.Args) == 1 && strings.EqualFold(d.Args[0], "on")
}

// silentlyIgnored reports ignored directives not worth a warning: flags and
// features set to off, and onDisarms flags set to on (ignoring them
// changes nothing).
func silentlyIgnored(d *Directive, mask uint) bool {
	sp := spec(d.Name)
	if sp != nil && sp.onDisarms && isOn(d) {
		return true
	}
	if !isOff(d) {
		return false
	}
	return mask&confFlag != 0 || (sp != nil && sp.offDisarms)
}

func refusedMessage(d *Directive) string {
	if info, ok := lookup(d.Name); ok && info.Note != "" {
		return fmt.Sprintf(`"%s" directive is not supported by ngxsockify (%s)`, d.Name, info.Note)
	}
	return fmt.Sprintf(`"%s" directive is not supported by ngxsockify`, d.Name)
}

// classify is the support class and note of a directive name: its
// registry entry's, or Ignored for names no module declares (tuning of
// features ngxsockify does not have).
func classify(name string) (Support, string) {
	if sp := spec(name); sp != nil {
		return sp.support, sp.note
	}
	return Ignored, ""
}

// dupSlot is the slot a directive fills in its block ("" for none).
func dupSlot(name string, mask uint) string {
	sp := spec(name)
	switch {
	case sp != nil && sp.dup != "":
		return sp.dup
	case mask&confFlag != 0 && (sp == nil || !sp.flagRepeats):
		return name
	case sp == nil || sp.support == Ignored:
		return ignoredDupSlot(name)
	}
	return ""
}

// luaNeedsCode reports the Lua directives whose handler refuses empty code
// (`access_by_lua_block {}`, `access_by_lua ”`, `..._file ”`).
func luaNeedsCode(name string) bool {
	sp := spec(name)
	return sp != nil && sp.needsCode
}
