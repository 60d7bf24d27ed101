package nginxconf

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Directive is one directive as written in a config file.
type Directive struct {
	Name string
	// Args are nginx-unescaped. For `if` they are the condition tokens
	// without the parentheses; for *_by_lua_block the Lua source verbatim
	// as ONE arg (no braces), after the variable for set_by_lua_block.
	Args []string
	// File is the path as nginx prints it (absolute, not cleaned).
	File string
	// Line is the line where the directive starts.
	Line int
	// EndLine is the line where it ends (its ';' or '{'; for *_by_lua_block
	// the closing '}'): nginx reports THIS line in errors and Lua chunk names.
	EndLine int
	// Block holds the children of a block directive.
	Block []*Directive
	// IsBlock reports that the directive had a { } block (possibly empty).
	// It is also true for *_by_lua_block, whose body is Args[0], not Block.
	IsBlock bool
	// CloseLine is the line of a block's closing '}' (0: none read), where
	// nginx reports what a block's handler checks at its end.
	CloseLine int
}

// ParseOptions controls Parse.
type ParseOptions struct {
	// Prefix is nginx's -p. It only resolves a relative main path; include
	// paths are relative to the main file's directory, as in nginx.
	// "" resolves a relative main path against the working directory.
	Prefix string
	// CollectAll gathers every error it can instead of stopping at the
	// first one. Lexical errors still end the file they occur in.
	CollectAll bool
	// IgnoreStream accepts stream{} and mail{} blocks with a warning and
	// drops them (the command line's --ignore-stream); without it they are
	// errors, since ngxsockify serves none of their listeners.
	IgnoreStream bool
}

// File is one file read while parsing.
type File struct {
	Path string
	Data []byte
}

// Parsed is the result of Parse.
type Parsed struct {
	Main string
	// Directives is the top level of the main file; `include` directives are
	// replaced by the included files' directives (spliced in place, keeping
	// their File/Line).
	Directives []*Directive
	// Files lists every file read, in the order nginx reads them, each once.
	Files    []File
	Warnings []Warning
}

// Parse reads the nginx config at path and every file it includes, and
// checks what nginx checks while reading: syntax, known directives, the
// context each is allowed in, argument counts, on/off flags, `if`
// parentheses, a few "is duplicate" cases, and Lua blocks. Directives we
// refuse (Support Refused) are errors; ignored and partly supported ones
// become Warnings.
//
// With one error the result is a *Error; with several (CollectAll) Errors.
func Parse(path string, opts ParseOptions) (*Parsed, error) {
	path = mainPath(path, opts.Prefix)
	data, err := readConf(path)
	if err != nil {
		return nil, &Error{Msg: withErrno(`open() "`+path+`" failed`, err)}
	}
	return parseMain(path, data, opts)
}

// ParseString parses text as if it were the file at path (for the embedded
// default config, tests). Includes are read from disk relative to path's
// directory.
func ParseString(path, text string, opts ParseOptions) (*Parsed, error) {
	return parseMain(mainPath(path, opts.Prefix), []byte(text), opts)
}

// mainPath resolves the main file like nginx resolves -c: against the
// prefix when one is given (nginx adds the missing trailing slash).
func mainPath(path, prefix string) string {
	if path == "" || strings.HasPrefix(path, "/") {
		return path
	}
	if prefix != "" {
		if !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		return prefix + path
	}
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// ParseGlobals parses the directives of nginx's -g option, as nginx does:
// main-level directives only, no blocks, errors reported "in command line"
// (Error.File "command line", Line 0).
func ParseGlobals(text string) (*Parsed, error) {
	return parseSource(&source{path: commandLine, data: []byte(text), line: 1, param: true}, ParseOptions{})
}

// commandLine is the pseudo file name nginx gives -g directives.
const commandLine = "command line"

func parseMain(path string, data []byte, opts ParseOptions) (*Parsed, error) {
	return parseSource(newSource(path, data), opts)
}

func parseSource(src *source, opts ParseOptions) (*Parsed, error) {
	path, data := src.path, src.data
	p := &parser{
		opts:   opts,
		out:    &Parsed{Main: path},
		seen:   map[string]bool{},
		warned: map[Warning]bool{},
	}
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		p.confPrefix = path[:i+1]
	}
	if !src.param {
		p.addFile(path, data)
	}
	p.stack = []string{path}
	dirs, err := p.parse(src, &parseCtx{mask: ctxMain, slots: map[string]string{}}, parseFile)
	p.out.Directives = dirs
	if err != nil && !errors.Is(err, errAbort) {
		p.errs = append(p.errs, &Error{Msg: err.Error()})
	}
	if src.param {
		for _, e := range p.errs {
			if e.File == commandLine {
				e.Line = 0
			}
		}
	}
	switch len(p.errs) {
	case 0:
		return p.out, nil
	case 1:
		return p.out, p.errs[0]
	}
	return p.out, p.errs
}

// maxConfErrStr is NGX_MAX_CONF_ERRSTR: nginx cuts longer messages.
const maxConfErrStr = 1024

// errAbort unwinds the parser after an error that was already recorded.
var errAbort = errors.New("nginxconf: parse aborted")

type parseKind int

const (
	parseFile parseKind = iota
	parseBlock
)

// parseCtx is where the parser is: nginx's cmd_type for the block, plus
// state nginx keeps in the module configuration of that block.
type parseCtx struct {
	mask   uint              // one ctx* bit: which directives are allowed here
	custom string            // map, types, geo...: body entries are not directives
	quiet  bool              // inside events{}: accepted tuning, no warnings
	slots  map[string]string // "is duplicate" tracking: slot -> directive that set it
}

type parser struct {
	opts       ParseOptions
	out        *Parsed
	errs       Errors
	confPrefix string   // directory of the main file, with trailing slash
	stack      []string // files being parsed (include cycle detection)
	seen       map[string]bool
	warned     map[Warning]bool
}

func (p *parser) addFile(path string, data []byte) {
	if p.seen[path] {
		return
	}
	p.seen[path] = true
	p.out.Files = append(p.out.Files, File{Path: path, Data: data})
}

// fail records an error at the current position of s. It returns errAbort
// unless errors are being collected.
func (p *parser) fail(s *source, format string, args ...any) error {
	return p.failAt(s.path, s.line, format, args...)
}

// failAt records an error; its string arguments are printed as nginx's
// "%s" prints C strings: a NUL ends them.
func (p *parser) failAt(file string, line int, format string, args ...any) error {
	for i, a := range args {
		if s, ok := a.(string); ok {
			if j := strings.IndexByte(s, 0); j >= 0 {
				args[i] = s[:j]
			}
		}
	}
	return p.record(file, line, fmt.Sprintf(format, args...))
}

// failV is fail for messages nginx prints with "%V" (counted strings,
// NULs included).
func (p *parser) failV(s *source, format string, args ...any) error {
	return p.record(s.path, s.line, fmt.Sprintf(format, args...))
}

func (p *parser) record(file string, line int, msg string) error {
	if len(msg) > maxConfErrStr {
		msg = msg[:maxConfErrStr] // nginx formats into a fixed buffer
	}
	p.errs = append(p.errs, &Error{Msg: msg, File: file, Line: line})
	if p.opts.CollectAll {
		return nil
	}
	return errAbort
}

func (p *parser) warn(d *Directive, format string, args ...any) {
	w := Warning{File: d.File, Line: d.EndLine, Directive: d.Name, Msg: fmt.Sprintf(format, args...)}
	if p.warned[w] {
		return
	}
	p.warned[w] = true
	p.out.Warnings = append(p.out.Warnings, w)
}

// parse is ngx_conf_parse(): it reads directives until the end of the file
// (parseFile) or the closing brace (parseBlock).
func (p *parser) parse(s *source, ctx *parseCtx, kind parseKind) ([]*Directive, error) {
	var out []*Directive
	for {
		args, line, rc, lerr := s.readToken()
		if lerr != nil {
			p.errs = append(p.errs, lerr)
			return out, errAbort
		}
		switch rc {
		case tokBlockDone:
			if kind != parseBlock {
				p.fail(s, `unexpected "}"`)
				return out, errAbort
			}
			return out, nil
		case tokFileDone:
			if kind == parseBlock {
				p.fail(s, `unexpected end of file, expecting "}"`)
				return out, errAbort
			}
			return out, nil
		}
		if rc == tokBlockStart && s.param {
			p.fail(s, "block directives are not supported in -g option")
			return out, errAbort
		}
		d := &Directive{
			Name:    args[0],
			Args:    args[1:],
			File:    s.path,
			Line:    line,
			EndLine: s.line,
			IsBlock: rc == tokBlockStart,
		}
		if ctx.custom != "" {
			// A body read by a module's own handler (map, types, geo...):
			// entries are kept as directives, only `include` is special.
			if rc == tokBlockStart {
				p.fail(s, `unexpected "{"`)
				return out, errAbort
			}
			if d.Name == "include" && customInclude[ctx.custom] {
				if len(d.Args) != 1 {
					if err := p.fail(s, `invalid number of arguments in "include" directive`); err != nil {
						return out, err
					}
					continue
				}
				inc, err := p.include(s, ctx, d)
				out = append(out, inc...)
				if err != nil {
					return out, err
				}
				continue
			}
			out = append(out, d)
			continue
		}
		res, err := p.directive(s, ctx, d, rc)
		out = append(out, res...)
		if err != nil {
			return out, err
		}
	}
}

// customInclude lists the handler-read bodies that accept `include`.
var customInclude = map[string]bool{"map": true, "types": true, "geo": true}

// directive is ngx_conf_handler() plus the parts of the directive handlers
// that belong to syntax. It returns what goes into the tree in place of d.
func (p *parser) directive(s *source, ctx *parseCtx, d *Directive, rc int) ([]*Directive, error) {
	luaBlock := strings.HasSuffix(d.Name, "_by_lua_block")
	consumed := false // the Lua body has been read
	// skip consumes the block of a rejected directive (CollectAll only).
	skip := func(err error) ([]*Directive, error) {
		if err != nil || rc != tokBlockStart || consumed {
			return nil, err
		}
		if luaBlock {
			if _, lerr := s.readLuaBlock(); lerr != nil {
				p.errs = append(p.errs, lerr)
				return nil, errAbort
			}
			return nil, nil
		}
		return nil, p.skipBlock(s)
	}

	info, known := lookup(d.Name)
	if !known {
		return skip(p.fail(s, `unknown directive "%s"`, d.Name))
	}
	mask, ok := info.maskFor(ctx.mask)
	if !ok {
		return skip(p.fail(s, `"%s" directive is not allowed here`, d.Name))
	}
	if mask&confBlock == 0 && rc != tokOK {
		return skip(p.fail(s, `directive "%s" is not terminated by ";"`, d.Name))
	}
	if mask&confBlock != 0 && rc != tokBlockStart {
		return skip(p.fail(s, `directive "%s" has no opening "{"`, d.Name))
	}
	if !arityOK(mask, len(d.Args)) {
		return skip(p.fail(s, `invalid number of arguments in "%s" directive`, d.Name))
	}

	if luaBlock {
		code, lerr := s.readLuaBlock()
		if lerr != nil {
			p.errs = append(p.errs, lerr)
			return nil, errAbort
		}
		d.Args = append(d.Args, code)
		d.EndLine = s.line
		consumed = true
	}

	if msg := ctx.duplicate(d, mask); msg != "" {
		// The Lua block parser prints the handler's bare answer; everything
		// else goes through ngx_conf_handler, which names the directive.
		if luaBlock {
			return skip(p.fail(s, "%s", msg))
		}
		return skip(p.fail(s, `"%s" directive %s`, d.Name, msg))
	}

	if mask&confFlag != 0 {
		// ngx_conf_set_flag_slot(): after its duplicate check.
		v := strings.ToLower(d.Args[0])
		if v != "on" && v != "off" {
			return skip(p.fail(s, `invalid value "%s" in "%s" directive, it must be "on" or "off"`, d.Args[0], d.Name))
		}
	}

	if d.Support() == Ignored {
		// The handler nginx runs on a value ngxsockify then drops.
		if msg, bare := checkIgnoredValue(d); bare {
			return skip(p.fail(s, "%s", msg))
		} else if msg != "" {
			return skip(p.fail(s, `"%s" directive %s`, d.Name, msg))
		}
	}

	if luaNeedsCode(d.Name) && len(d.Args) == 1 && d.Args[0] == "" {
		// lua-nginx-module logs this one at level "error", and fails.
		return skip(p.fail(s, "invalid location config: no runnable Lua code"))
	}

	switch d.Name {
	case "include":
		return p.include(s, ctx, d)
	case "if":
		if bad, err := p.ifCondition(s, d); bad {
			return skip(err)
		}
	}

	switch sup := d.Support(); {
	case p.opts.IgnoreStream && (d.Name == "stream" || d.Name == "mail"):
		p.warn(d, `"%s" block is ignored (--ignore-stream): ngxsockify does not serve its listeners`, d.Name)
	case sup == Refused:
		return skip(p.fail(s, "%s", refusedMessage(d)))
	case sup == Ignored:
		if !ctx.quiet && !silentlyIgnored(d, mask) {
			p.warn(d, `"%s" directive is ignored`, d.Name)
		}
	case sup == FailClosed:
		p.warn(d, `"%s" directive is not supported by ngxsockify: requests it applies to are answered with 500`, d.Name)
	case sup == UnsupportedContent:
		p.warn(d, `"%s" directive is not supported by ngxsockify: requests here are answered with 502`, d.Name)
	}

	if rc != tokBlockStart || luaBlock {
		return []*Directive{d}, nil
	}

	child := ctx.child(d, info)
	if child == nil {
		// A block we accept without reading it (stream, mail): consume it.
		if err := p.skipBlock(s); err != nil {
			return nil, err
		}
		return []*Directive{d}, nil
	}
	block, err := p.parse(s, child, parseBlock)
	d.Block, d.CloseLine = block, s.line
	if d.Name == "http" && err == nil {
		if msg := upstreamBufferChecks(d); msg != "" {
			return nil, p.fail(s, "%s", msg)
		}
	}
	return []*Directive{d}, err
}

// skipBlock consumes a block whose opening brace was just read, checking
// only its syntax.
func (p *parser) skipBlock(s *source) error {
	for {
		args, _, rc, lerr := s.readToken()
		if lerr != nil {
			p.errs = append(p.errs, lerr)
			return errAbort
		}
		switch rc {
		case tokBlockDone:
			return nil
		case tokFileDone:
			p.fail(s, `unexpected end of file, expecting "}"`)
			return errAbort
		case tokBlockStart:
			if strings.HasSuffix(args[0], "_by_lua_block") {
				if _, lerr := s.readLuaBlock(); lerr != nil {
					p.errs = append(p.errs, lerr)
					return errAbort
				}
				continue
			}
			if err := p.skipBlock(s); err != nil {
				return err
			}
		}
	}
}

// ifCondition checks and strips the parentheses of `if` and checks the
// shape of the condition, as ngx_http_rewrite_if_condition() does (the
// variables and regexes in it are the compiler's). bad reports a rejected
// condition.
func (p *parser) ifCondition(s *source, d *Directive) (bad bool, err error) {
	// v is nginx's value[] without the directive name: indices cur..last.
	v := append([]string(nil), d.Args...)
	invalid := func(w string) (bool, error) {
		return true, p.failV(s, `invalid condition "%s"`, w)
	}
	last := len(v) - 1
	if len(v[0]) < 1 || v[0][0] != '(' {
		return invalid(v[0])
	}
	cur := 0
	if v[0] == "(" {
		cur = 1
	} else {
		v[0] = v[0][1:]
	}
	if len(v[last]) < 1 || v[last][len(v[last])-1] != ')' {
		return invalid(v[last])
	}
	if len(v[last]) == 1 {
		last--
	} else {
		v[last] = v[last][:len(v[last])-1]
	}
	if cur > last || cur >= len(v) {
		// Only "(" and ")": nginx then looks at the ")" itself.
		return invalid(v[min(cur, len(v)-1)])
	}
	w := v[cur]
	switch {
	case len(w) > 1 && w[0] == '$':
		if cur != last && cur+2 != last {
			return invalid(w)
		}
		if cur != last {
			switch op := v[cur+1]; op {
			case "=", "!=", "~", "~*", "!~", "!~*":
			default:
				return true, p.failV(s, `unexpected "%s" in condition`, op)
			}
		}
	case len(w) == 2 && w[0] == '-' || len(w) == 3 && w[0] == '!' && w[1] == '-':
		if cur+1 != last {
			return invalid(w)
		}
		if !strings.ContainsRune("fdex", rune(w[len(w)-1])) {
			return invalid(w)
		}
	default:
		return invalid(w)
	}
	d.Args = v[cur : last+1]
	return false, nil
}

// child returns the context of the block opened by d, or nil for a block
// that is consumed unread. The registry says which context a block opens.
func (ctx *parseCtx) child(d *Directive, info DirectiveInfo) *parseCtx {
	c := &parseCtx{slots: map[string]string{}}
	sp := spec(d.Name)
	switch {
	case d.Name == "stream" || d.Name == "mail":
		return nil
	case sp != nil && sp.custom:
		c.mask, c.custom = ctx.mask, d.Name
	case sp != nil && sp.opens == ctxHTTPSif|ctxHTTPLif:
		// if: the server-level form when inside a server or its ifs
		c.mask = ctxHTTPLif
		if ctx.mask == ctxHTTPSrv || ctx.mask == ctxHTTPSif {
			c.mask = ctxHTTPSif
		}
	case sp != nil && sp.opens != 0:
		c.mask, c.quiet = sp.opens, sp.opens == ctxEvent
	case info.Support == Ignored:
		return nil
	default:
		c.mask = ctx.mask
	}
	return c
}

// duplicate returns nginx's "is duplicate" complaint when d sets a value
// the block already has, and records d otherwise.
func (ctx *parseCtx) duplicate(d *Directive, mask uint) string {
	slot := dupSlot(d.Name, mask)
	if slot == "" {
		return ""
	}
	prev, set := ctx.slots[slot]
	if !set {
		ctx.slots[slot] = d.Name
		return ""
	}
	if slot == rootAliasSlot && prev != d.Name {
		// the core module names the other one; others just say duplicate
		return fmt.Sprintf(`is duplicate, "%s" directive was specified earlier`, prev)
	}
	return "is duplicate"
}

// confBuffer is NGX_CONF_BUFFER: nginx reads config files through a window
// of this size, and a word (or a Lua token) that does not fit in it is an
// error. The window is emulated so the same inputs fail.
const confBuffer = 4096

// Return codes of readToken, as ngx_conf_read_token()'s.
const (
	tokOK         = iota // a directive ended with ';'
	tokBlockStart        // a directive ended with '{'
	tokBlockDone         // '}'
	tokFileDone          // end of file
)

// source is one config file being read.
type source struct {
	path string
	data []byte
	pos  int // offset of the next byte
	last int // offset up to which nginx would have read the file
	line int
	// param marks -g text, which has no file: its end is the end of a
	// parameter, and block directives are refused.
	param bool
}

func newSource(path string, data []byte) *source {
	return &source{path: path, data: data, line: 1}
}

func (s *source) errorf(line int, format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), File: s.path, Line: line}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// readToken reads one directive's words, as ngx_conf_read_token(): it
// returns the words, the line where the first one starts, and how the
// directive ended.
func (s *source) readToken() (args []string, firstLine, rc int, err *Error) {
	var (
		found, needSpace, sharp, variable bool
		quoted, sQuoted, dQuoted          bool
		lastSpace                         = true
		start                             = s.pos
		startLine                         = s.line
	)
	for {
		if s.pos >= s.last {
			if s.last >= len(s.data) {
				if len(args) > 0 || !lastSpace {
					if s.param {
						return nil, 0, 0, s.errorf(s.line, `unexpected end of parameter, expecting ";"`)
					}
					return nil, 0, 0, s.errorf(s.line, `unexpected end of file, expecting ";" or "}"`)
				}
				return nil, 0, tokFileDone, nil
			}
			n := s.pos - start
			if n == confBuffer {
				switch {
				case dQuoted:
					return nil, 0, 0, s.errorf(startLine, `too long parameter, probably missing terminating """ character`)
				case sQuoted:
					return nil, 0, 0, s.errorf(startLine, `too long parameter, probably missing terminating "'" character`)
				}
				return nil, 0, 0, s.errorf(startLine, `too long parameter "%s..." started`, s.data[start:start+10])
			}
			s.last = min(len(s.data), s.pos+confBuffer-n)
		}

		ch := s.data[s.pos]
		s.pos++
		if ch == '\n' {
			s.line++
			sharp = false
		}
		if sharp {
			continue
		}
		if quoted {
			quoted = false
			continue
		}
		if needSpace {
			if isSpace(ch) {
				lastSpace, needSpace = true, false
				continue
			}
			switch ch {
			case ';':
				return args, firstLine, tokOK, nil
			case '{':
				return args, firstLine, tokBlockStart, nil
			case ')':
				lastSpace, needSpace = true, false
			default:
				return nil, 0, 0, s.errorf(s.line, `unexpected "%c"`, ch)
			}
		}

		if lastSpace {
			if isSpace(ch) {
				continue
			}
			start = s.pos - 1
			startLine = s.line
			switch ch {
			case ';', '{':
				if len(args) == 0 {
					return nil, 0, 0, s.errorf(s.line, `unexpected "%c"`, ch)
				}
				if ch == '{' {
					return args, firstLine, tokBlockStart, nil
				}
				return args, firstLine, tokOK, nil
			case '}':
				if len(args) != 0 {
					return nil, 0, 0, s.errorf(s.line, `unexpected "}"`)
				}
				return nil, 0, tokBlockDone, nil
			case '#':
				sharp = true
				continue
			case '\\':
				quoted = true
			case '"':
				start++
				dQuoted = true
			case '\'':
				start++
				sQuoted = true
			case '$':
				variable = true
			}
			lastSpace = false
			if len(args) == 0 {
				firstLine = startLine
			}
			continue
		}

		if ch == '{' && variable {
			continue
		}
		variable = false
		if ch == '\\' {
			quoted = true
			continue
		}
		if ch == '$' {
			variable = true
			continue
		}
		switch {
		case dQuoted:
			if ch == '"' {
				dQuoted, needSpace, found = false, true, true
			}
		case sQuoted:
			if ch == '\'' {
				sQuoted, needSpace, found = false, true, true
			}
		case isSpace(ch) || ch == ';' || ch == '{':
			lastSpace, found = true, true
		}
		if found {
			args = append(args, unescapeWord(s.data[start:s.pos-1]))
			switch ch {
			case ';':
				return args, firstLine, tokOK, nil
			case '{':
				return args, firstLine, tokBlockStart, nil
			}
			found = false
		}
	}
}
