package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"ngxsockify/luahooks"
	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
)

// ssiModule is nginx's ngx_http_ssi_filter_module: its header filter picks
// the responses of the ssi_types (text/html by default) where `ssi on`,
// drops their Content-Length and Accept-Ranges (and Last-Modified and ETag
// unless ssi_last_modified), and its body filter runs the SSI commands
// (<!--# command param="value" ... -->) as the body streams through,
// holding back only a command not complete yet. include runs a subrequest
// through this server's locations and puts its body in the command's
// place (or in an SSI variable, with set=); echo writes a variable; set
// sets one; config sets the error message. A command it does not know, or
// a malformed one, gives the error message and an error-log line, as
// nginx's.
//
// In nginx's chain the SSI body filter comes after sub_filter and charset
// recoding: this one wraps their body filter.
var ssiModule = module{
	name: "ssi",
	register: func(e *engine) {
		e.addHeaderFilter(ssiHeaderFilter)
	},
}

// ssiDefaultErrmsg is nginx's default `config errmsg`.
const ssiDefaultErrmsg = "[an error occurred while processing the directive]"

// nginx's parser limits: a command's name and a parameter's name are at
// most 32 bytes, a command has at most 16 parameters.
const (
	ssiCommandLen = 32
	ssiParamLen   = 32
	ssiMaxParams  = 16
)

// ssiApplies reports whether a response of type ctype to rq goes through
// the SSI filter (which drops Accept-Ranges: the static module and
// proxy_force_ranges then serve no ranges of it).
func (rq *request) ssiApplies(ctype string) bool {
	conf := rq.conf
	return conf != nil && conf.SSI && subTypeMatch(conf.SSITypes, ctype)
}

// ssiHeaderFilter starts the SSI filter on a response it applies to.
func ssiHeaderFilter(rq *request, code int) int {
	conf := rq.conf
	if rq.w.discard {
		return code
	}
	h := rq.w.Header()
	if h.Get("Content-Length") == "0" || !rq.ssiApplies(h.Get("Content-Type")) {
		return code
	}
	bodyRewritten(h, conf.SSILastModified)
	h.Del("Accept-Ranges")
	rq.w.stream, rq.w.holdHead = true, true
	f := &ssiFilter{rq: rq, errmsg: ssiDefaultErrmsg, silent: conf.SSISilentErrors, valueLen: conf.SSIValueLength}
	f.run = f.command
	prev := rq.w.body // sub_filter's or charset's: they come first
	rq.w.body = func(p []byte) []byte {
		if prev != nil {
			p = prev(p)
		}
		return f.write(p)
	}
	prevTail := rq.w.tail
	rq.w.tail = func() {
		if prevTail != nil {
			prevTail()
		}
		if out := f.end(); len(out) > 0 && !rq.w.discard {
			n, _ := rq.w.write(out)
			rq.w.bytes += int64(n)
		}
	}
	return code
}

// ssiCommand is one parsed command.
type ssiCommand struct {
	name   string
	params [][2]string // in order; names lower case
}

func (c *ssiCommand) param(name string) (string, bool) {
	for _, p := range c.params {
		if p[0] == name {
			return p[1], true
		}
	}
	return "", false
}

// ssiFilter is the body filter of one response.
type ssiFilter struct {
	rq       *request
	held     []byte // from a "<" that may begin a command, not decided yet
	errmsg   string
	timefmt  string
	encoding string // echo's: an encoding= stays for the echoes after it
	// if/elif/else/endif (one level, as nginx's): inIf inside a block,
	// output while the branch being read is the chosen one, chosen once
	// a branch was.
	inIf, skip, chosen bool
	// blocks are the named blocks (block ... endblock) for include's
	// stub=, kept as text; recording names the one being read.
	blocks    map[string][]byte
	recording string
	blockText []byte
	// captures are the last if regex's groups, by number and by name
	captures map[string]string
	silent   bool
	valueLen int
	vars     map[string]string // SSI variables (set, include set=)
	// run executes a command and returns its output (a test replaces it)
	run func(c *ssiCommand) []byte
	out []byte
	// pending are the includes without wait or set= of the piece being
	// read: as nginx posts their subrequests, they run once the piece was
	// read (the commands after them saw the variables as they were
	// before), and their output goes into out at its place
	pending []ssiPending
	// waited: the command just run was a waited include (wait="yes" or
	// set=), where nginx's filter stops until its subrequest is done
	waited bool
}

type ssiPending struct {
	at  int // where in out
	run func() []byte
}

// runPending runs the subrequests posted so far (the request's, then the
// includes of this filter) and puts their output in place.
func (f *ssiFilter) runPending() {
	f.rq.runPosted()
	if len(f.pending) == 0 {
		return
	}
	pend := f.pending
	f.pending = nil
	var out []byte
	last := 0
	for _, p := range pend {
		out = append(out, f.out[last:p.at]...)
		out = append(out, p.run()...)
		last = p.at
	}
	f.out = append(out, f.out[last:]...)
}

// write filters one piece of the body.
func (f *ssiFilter) write(p []byte) []byte {
	data := p
	if len(f.held) > 0 {
		data = append(f.held, p...)
		f.held = nil
	}
	f.out = f.out[:0]
	f.rq.ssiWaits = nil
	for len(data) > 0 {
		i := bytes.IndexByte(data, '<')
		if i < 0 {
			f.emit(data)
			break
		}
		f.emit(data[:i])
		data = data[i:]
		cmd, n, st := f.parse(data)
		if f.recording != "" && st != ssiMore {
			// a block keeps its text and commands as they are, until
			// its endblock
			if st == ssiDone && cmd.name == "endblock" {
				f.blocks[f.recording], f.recording = f.blockText, ""
				f.blockText = nil
			} else {
				f.blockText = append(f.blockText, data[:n]...)
			}
			data = data[n:]
			continue
		}
		switch st {
		case ssiMore:
			f.held = append([]byte(nil), data...)
			f.runPending()
			return f.out
		case ssiNotCommand:
			f.emit(data[:n])
		case ssiInvalid:
			f.emit(f.errorText())
		case ssiDone:
			if ssiConditional[cmd.name] {
				f.out = append(f.out, f.conditional(cmd)...)
			} else if !f.skip {
				f.waited = false
				f.out = append(f.out, f.run(cmd)...)
				if f.waited {
					f.rq.ssiWaits = append(f.rq.ssiWaits, len(f.out))
				}
			}
		}
		data = data[n:]
	}
	f.runPending()
	return f.out
}

// emit outputs text unless a branch not chosen is being read (or a
// block is).
func (f *ssiFilter) emit(p []byte) {
	if f.recording != "" {
		f.blockText = append(f.blockText, p...)
		return
	}
	if !f.skip {
		f.out = append(f.out, p...)
	}
}

// end returns the bytes held at the end of the body: none, as nginx's
// parser drops what it was still looking at (the start of a command, "<"
// or "<!-" that might have begun one, a command never closed).
func (f *ssiFilter) end() []byte {
	f.held = nil
	return nil
}

// parse results
const (
	ssiMore       = iota // data ends before the command does
	ssiNotCommand        // data[:n] is text
	ssiInvalid           // data[:n] is a malformed command
	ssiDone              // data[:n] is the command
)

func ssiSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// parse reads a command at the start of data, which begins with "<", as
// nginx's SSI parser: "<!--#", spaces, the command name, then parameters
// name="value" or name='value' (a backslash before the quote keeps it),
// separated by spaces, then "-->".
func (f *ssiFilter) parse(data []byte) (*ssiCommand, int, int) {
	const open = "<!--#"
	for i := 1; i < len(open); i++ {
		if i == len(data) {
			return nil, 0, ssiMore
		}
		if data[i] != open[i] {
			return nil, i, ssiNotCommand
		}
	}
	i := len(open)
	// invalid skips to the end of the comment: nginx's error state
	invalid := func(format string, args ...any) (*ssiCommand, int, int) {
		from := min(i+1, len(data))
		end := bytes.Index(data[from:], []byte("-->"))
		if end < 0 {
			return nil, 0, ssiMore
		}
		f.rq.logf(ngxlog.Err, format, args...)
		return nil, from + end + 3, ssiInvalid
	}
	for i < len(data) && ssiSpace(data[i]) {
		i++
	}
	start := i
	for i < len(data) && !ssiSpace(data[i]) && data[i] != '-' {
		i++
		if i-start > ssiCommandLen {
			return invalid(`the "%s" SSI command is too long`, data[start:start+ssiCommandLen])
		}
	}
	if i == len(data) {
		return nil, 0, ssiMore
	}
	cmd := &ssiCommand{name: string(data[start:i])}
	if cmd.name == "" {
		return invalid(`invalid SSI command: "%c"`, data[i])
	}
	for {
		for i < len(data) && ssiSpace(data[i]) {
			i++
		}
		if i == len(data) {
			return nil, 0, ssiMore
		}
		if data[i] == '-' {
			for k := 1; k < 3; k++ {
				if i+k == len(data) {
					return nil, 0, ssiMore
				}
				if k == 1 && data[i+k] != '-' || k == 2 && data[i+k] != '>' {
					return invalid(`unexpected "-" symbol in "%s" SSI command`, cmd.name)
				}
			}
			return cmd, i + 3, ssiDone
		}
		ps := i
		for i < len(data) && data[i] != '=' && !ssiSpace(data[i]) {
			i++
			if i-ps > ssiParamLen {
				return invalid(`too long "%s" parameter in "%s" SSI command`, data[ps:ps+ssiParamLen], cmd.name)
			}
		}
		for i < len(data) && ssiSpace(data[i]) {
			i++
		}
		if i == len(data) {
			return nil, 0, ssiMore
		}
		name := nginxconf.LowerASCII(string(data[ps:i]))
		name = strings.TrimRight(name, " \t\r\n")
		if data[i] == '-' {
			// a parameter without a value ends at "-->" (measured)
			if i+3 > len(data) {
				if bytes.HasPrefix([]byte("-->"), data[i:]) {
					return nil, 0, ssiMore
				}
			} else if string(data[i:i+3]) == "-->" {
				f.rq.logf(ngxlog.Err, `unexpected "-" symbol after "%s" parameter in "%s" SSI command`, name, cmd.name)
				return nil, i + 3, ssiInvalid
			}
		}
		if data[i] != '=' {
			return invalid(`unexpected "%c" symbol after "%s" parameter in "%s" SSI command`, data[i], name, cmd.name)
		}
		i++
		for i < len(data) && ssiSpace(data[i]) {
			i++
		}
		if i == len(data) {
			return nil, 0, ssiMore
		}
		q := data[i]
		if q != '"' && q != '\'' {
			return invalid(`unexpected "%c" symbol before value of "%s" parameter in "%s" SSI command`, q, name, cmd.name)
		}
		i++
		var val []byte
		for {
			if i == len(data) {
				return nil, 0, ssiMore
			}
			c := data[i]
			if c == q {
				i++
				break
			}
			if c == '\\' {
				if i+1 == len(data) {
					return nil, 0, ssiMore
				}
				if data[i+1] == q {
					c = q
					i++
				}
			}
			val = append(val, c)
			i++
			if len(val) > f.valueLen {
				return invalid(`too long "%s" value of "%s" parameter in "%s" SSI command`, val, name, cmd.name)
			}
		}
		if len(cmd.params) == ssiMaxParams {
			return invalid(`too many SSI command parameters: "%s"`, cmd.name)
		}
		cmd.params = append(cmd.params, [2]string{name, string(val)})
		if i == len(data) {
			return nil, 0, ssiMore
		}
		if !ssiSpace(data[i]) && data[i] != '-' {
			return invalid(`unexpected "%c" symbol after "%s" parameter in "%s" SSI command`, data[i], name, cmd.name)
		}
	}
}

// errorText is what a failed command outputs.
func (f *ssiFilter) errorText() []byte {
	if f.silent {
		return nil
	}
	return []byte(f.errmsg)
}

// ssiParams lists each command's parameters and the required ones.
var ssiParams = map[string]struct{ known, required []string }{
	"include":  {known: []string{"virtual", "file", "stub", "set", "wait"}},
	"echo":     {known: []string{"var", "default", "encoding"}, required: []string{"var"}},
	"set":      {known: []string{"var", "value"}, required: []string{"var", "value"}},
	"config":   {known: []string{"errmsg", "timefmt"}},
	"if":       {known: []string{"expr"}, required: []string{"expr"}},
	"elif":     {known: []string{"expr"}, required: []string{"expr"}},
	"else":     {},
	"endif":    {},
	"block":    {known: []string{"name"}, required: []string{"name"}},
	"endblock": {},
}

// ssiConditional are the commands read in branches not chosen too.
var ssiConditional = map[string]bool{"if": true, "elif": true, "else": true, "endif": true}

// conditional runs if, elif, else and endif, which are read in branches
// not chosen too.
func (f *ssiFilter) conditional(c *ssiCommand) []byte {
	switch {
	case c.name == "if" && f.inIf:
		f.rq.logf(ngxlog.Err, `invalid context of SSI command: "if"`)
		if f.skip {
			return nil
		}
		return f.errorText()
	case c.name != "if" && !f.inIf:
		f.rq.logf(ngxlog.Err, `invalid context of SSI command: "%s"`, c.name)
		return f.errorText()
	}
	return f.command(c)
}

// command runs one command.
func (f *ssiFilter) command(c *ssiCommand) []byte {
	rq := f.rq
	spec, ok := ssiParams[c.name]
	if !ok {
		rq.logf(ngxlog.Err, `invalid SSI command: "%s"`, c.name)
		return f.errorText()
	}
	for _, p := range c.params {
		known := false
		for _, k := range spec.known {
			known = known || k == p[0]
		}
		if !known {
			rq.logf(ngxlog.Err, `invalid parameter name: "%s" in "%s" SSI command`, p[0], c.name)
			return f.errorText()
		}
	}
	for _, r := range spec.required {
		if _, ok := c.param(r); !ok {
			rq.logf(ngxlog.Err, `mandatory "%s" parameter is absent in "%s" SSI command`, r, c.name)
			return f.errorText()
		}
	}
	switch c.name {
	case "if", "elif":
		if f.chosen {
			f.skip = true
			return nil
		}
		expr, _ := c.param("expr")
		ok, err := f.test(expr)
		if err != nil {
			if err != errSSIExpr {
				f.rq.logf(ngxlog.Err, "%s", err)
			}
			return f.errorText() // nginx opens no block (measured)
		}
		f.inIf, f.skip, f.chosen = true, !ok, ok
		return nil
	case "else":
		f.skip, f.chosen = f.chosen, true
		return nil
	case "endif":
		f.inIf, f.skip, f.chosen = false, false, false
		return nil
	case "block":
		name, _ := c.param("name")
		if f.blocks == nil {
			f.blocks = map[string][]byte{}
		}
		f.recording, f.blockText = name, []byte{}
		return nil
	case "endblock":
		return nil
	case "echo":
		return f.echo(c)
	case "set":
		name, _ := c.param("var")
		value, _ := c.param("value")
		v, ok := f.evaluate(value)
		if !ok {
			return f.errorText()
		}
		f.setVar(name, v)
		return nil
	case "config":
		if v, ok := c.param("errmsg"); ok {
			f.errmsg = v
		}
		if v, ok := c.param("timefmt"); ok {
			f.timefmt = v
		}
		return nil
	}
	return f.include(c)
}

func (f *ssiFilter) setVar(name, value string) {
	if f.vars == nil {
		f.vars = map[string]string{}
	}
	f.vars[nginxconf.LowerASCII(name)] = value
}

// variable reads an SSI variable, or else the request's.
func (f *ssiFilter) variable(name string) (string, bool) {
	lname := nginxconf.LowerASCII(name)
	if v, ok := f.vars[lname]; ok {
		return v, true
	}
	if v, ok := f.captures[name]; ok {
		return v, true
	}
	if f.timefmt != "" && (lname == "date_local" || lname == "date_gmt") {
		t := time.Now()
		if lname == "date_gmt" {
			t = t.UTC()
		}
		return luahooks.Strftime(t, f.timefmt), true
	}
	return f.rq.v.Get(name)
}

// echo writes a variable's value, encoded: "(none)" or the default when
// it has none. An encoding= sets the encoding of this echo and the ones
// after it (measured: nginx keeps it in the filter's state).
func (f *ssiFilter) echo(c *ssiCommand) []byte {
	name, _ := c.param("var")
	value, ok := f.variable(name)
	if !ok {
		value, ok = c.param("default")
		if !ok {
			value = "(none)"
		}
	}
	if enc, ok := c.param("encoding"); ok {
		switch enc {
		case "entity", "none", "url":
			f.encoding = enc
		default:
			// logged only: the echo goes on with the encoding it had
			// (measured)
			f.rq.logf(ngxlog.Err, `unknown encoding "%s" in the "echo" command`, enc)
		}
	}
	switch f.encoding {
	case "", "entity":
		return []byte(htmlEscape(value))
	case "none":
		return []byte(value)
	}
	return []byte(ssiURLEscape(value))
}

// htmlEscape is nginx's ngx_escape_html: <, >, &, ".
func htmlEscape(s string) string {
	if !strings.ContainsAny(s, `<>&"`) {
		return s
	}
	return strings.NewReplacer("<", "&lt;", ">", "&gt;", "&", "&amp;", `"`, "&quot;").Replace(s)
}

// ssiURLEscape escapes as nginx's ngx_escape_uri for HTML: spaces, quotes,
// '#', '%', '?', controls and bytes above 0x7f.
func ssiURLEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"#%'<>?", c) >= 0 {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// evaluate expands $name and ${name} in a parameter's value (SSI
// variables first, then the request's; an unknown one is empty), and \$
// keeps a dollar sign. A "$" without a name, or a "${" without its "}",
// is an error (logged): ok is false.
func (f *ssiFilter) evaluate(s string) (string, bool) {
	if !strings.ContainsAny(s, `$\`) {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			i++
			continue
		}
		if c != '$' {
			b.WriteByte(c)
			continue
		}
		j := i + 1
		var name string
		if j < len(s) && s[j] == '{' {
			k := strings.IndexByte(s[j:], '}')
			if k < 0 {
				f.rq.logf(ngxlog.Err, `the closing bracket in "%s" variable is missing`, s[j+1:])
				return "", false
			}
			name, i = s[j+1:j+k], j+k
		} else {
			for j < len(s) && (s[j] == '_' || 'a' <= s[j]|0x20 && s[j]|0x20 <= 'z' || '0' <= s[j] && s[j] <= '9') {
				j++
			}
			name, i = s[i+1:j], j-1
		}
		if name == "" {
			f.rq.logf(ngxlog.Err, `invalid variable name in "%s"`, s)
			return "", false
		}
		v, _ := f.variable(name)
		b.WriteString(v)
	}
	return b.String(), true
}

// include runs the subrequest of virtual= or file= and returns its body,
// or stores it in an SSI variable (set=).
func (f *ssiFilter) include(c *ssiCommand) []byte {
	rq := f.rq
	virtual, hasV := c.param("virtual")
	file, hasF := c.param("file")
	if hasV == hasF {
		if hasV {
			rq.logf(ngxlog.Err, `inclusion may be either virtual="%s" or file="%s"`, virtual, file)
		} else {
			rq.logf(ngxlog.Err, `no parameter in "include" SSI command`)
		}
		return f.errorText()
	}
	if w, ok := c.param("wait"); ok && w != "yes" && w != "no" {
		rq.logf(ngxlog.Err, `invalid value "%s" for the "wait" parameter`, w)
		return f.errorText()
	}
	uri := virtual
	if hasF {
		uri = file
	}
	uri, ok := f.evaluate(uri)
	if !ok {
		return f.errorText()
	}
	if !strings.HasPrefix(uri, "/") {
		// relative to the directory of the request's URI
		base := rq.v.URI
		uri = base[:strings.LastIndexByte(base, '/')+1] + uri
	}
	args := ""
	if hasV {
		uri, args, _ = strings.Cut(uri, "?")
	}
	if rq.depth+1 >= maxSubrequestDepth {
		rq.logf(ngxlog.Err, `subrequests cycle while processing "%s"`, uri)
		return f.errorText()
	}
	var stub []byte // the block that stands for an empty or failed answer
	if name, ok := c.param("stub"); ok {
		if stub, ok = f.blocks[name]; !ok {
			rq.logf(ngxlog.Err, `"%s" SSI block is not found`, name)
			return f.errorText()
		}
	}
	name, set := c.param("set")
	if w, _ := c.param("wait"); w != "yes" && !set {
		// posted: it runs once this piece of the page was read
		f.pending = append(f.pending, ssiPending{at: len(f.out), run: func() []byte {
			body, _, _ := f.includeRun(uri, args, stub)
			return body
		}})
		return nil
	}
	// waited for: what was posted before runs first, then this one, and
	// the commands after it see what it did
	f.waited = true
	f.runPending()
	body, sub, rec := f.includeRun(uri, args, stub)
	if set {
		// set= keeps the subrequest's body in memory, within the
		// subrequest_output_buffer_size of the location that served it;
		// a longer body ends the main request, as in nginx
		if limit := sub.conf; limit != nil && len(rec.body.Bytes()) > limit.SubrequestOutputBufferSize && !sub.closed {
			sub.logf(ngxlog.Err, "too big subrequest response: %d", len(rec.body.Bytes()))
			main := rq.mainRequest()
			if d, ok := main.w.w.(interface{ DropUnsent() bool }); ok {
				d.DropUnsent() // what nginx holds is not sent
			}
			main.closeConn()
			return nil
		}
		f.setVar(name, string(body))
		return nil
	}
	return body
}

// includeRun runs an include's subrequest and returns its body (or, when
// stub is not nil, the stub block's output in place of an empty or failed
// one), the subrequest and its response.
func (f *ssiFilter) includeRun(uri, args string, stub []byte) ([]byte, *request, *recorder) {
	rec := &recorder{header: http.Header{}}
	sub := f.rq.bodySubrequest(percentDecode(uri), args, rec, rec)
	body := rec.body.Bytes()
	if stub != nil && (len(body) == 0 || rec.status >= 400 || sub.closed) {
		body = f.expand(stub)
	}
	return append([]byte(nil), body...), sub, rec
}

// errSSIExpr: a variable in the expression was malformed (logged).
var errSSIExpr = errors.New("")

// test evaluates an if or elif expression as nginx's SSI does: "$a" is
// true when not empty; "$a = text", "$a != text" compare; "$a = /re/",
// "$a != /re/" match a regular expression.
func (f *ssiFilter) test(expr string) (bool, error) {
	p := 0
	for p < len(expr) {
		c := expr[p] | 0x20
		if 'a' <= c && c <= 'z' || '0' <= expr[p] && expr[p] <= '9' || strings.IndexByte("$-{}_\"'", expr[p]) >= 0 {
			p++
			continue
		}
		break
	}
	left, ok := f.evaluate(expr[:p])
	if !ok {
		return false, errSSIExpr
	}
	for p < len(expr) && expr[p] == ' ' {
		p++
	}
	if p == len(expr) {
		return left != "", nil
	}
	negate := false
	switch {
	case expr[p] == '=':
		p++
	case strings.HasPrefix(expr[p:], "!="):
		negate, p = true, p+2
	default:
		return false, fmt.Errorf(`invalid expression in "%s"`, expr)
	}
	for p < len(expr) && expr[p] == ' ' {
		p++
	}
	right := expr[p:]
	var match bool
	if len(right) > 1 && right[0] == '/' {
		if right[len(right)-1] != '/' {
			return false, fmt.Errorf(`invalid expression in "%s"`, expr)
		}
		pat, ok := f.evaluate(right[1 : len(right)-1])
		if !ok {
			return false, errSSIExpr
		}
		re, err := vars.CompileRegex(pat, false) // PCRE, as nginx's
		if err != nil {
			return false, fmt.Errorf(`invalid expression in "%s"`, expr)
		}
		var m *vars.Captures
		m, match = re.Match(left)
		if match {
			f.captures = map[string]string{}
			for i := 0; i < m.Len(); i++ {
				if g, ok := m.Group(i); ok {
					f.captures[strconv.Itoa(i)] = g
				}
			}
			for _, n := range re.Names() {
				if g, ok := m.Named(n); ok {
					f.captures[n] = g
				}
			}
		}
	} else {
		r, ok := f.evaluate(right)
		if !ok {
			return false, errSSIExpr
		}
		match = left == r
	}
	return match != negate, nil
}

// expand runs a block's text through a filter that shares this one's
// variables, blocks and settings (a block's commands run where it is
// used).
func (f *ssiFilter) expand(text []byte) []byte {
	if f.vars == nil {
		f.vars = map[string]string{}
	}
	child := &ssiFilter{rq: f.rq, errmsg: f.errmsg, timefmt: f.timefmt, encoding: f.encoding, silent: f.silent,
		valueLen: f.valueLen, vars: f.vars, blocks: f.blocks, captures: f.captures}
	child.run = child.command
	out := append([]byte(nil), child.write(text)...)
	out = append(out, child.end()...)
	f.errmsg, f.timefmt, f.encoding = child.errmsg, child.timefmt, child.encoding
	return out
}
