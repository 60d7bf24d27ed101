package luahooks

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"ngxsockify/ngxlog"

	lua "github.com/yuin/gopher-lua"
)

// The io library and the full os library as LuaJIT 2.1 (Lua 5.1 semantics,
// as Debian's libluajit2 builds it) gives them to lua-nginx-module's hooks:
// failures return nil, "<name>: <strerror>", errno; os.execute returns the
// raw wait status; file:write and file:close return true. The default
// input and output files and open handles belong to the Lua state (nginx:
// to the worker's VM). Exceptions: os.exit raises an error (in nginx it
// ends one worker process, which the master replaces; here there is one
// process), and child processes (os.execute, io.popen) get nginx's
// environment: only the names listed with env, and TZ.

// luaFile is a Lua file handle.
type luaFile struct {
	f      *os.File
	r      *bufio.Reader // read buffer; its bytes are ahead of f's offset
	cmd    *exec.Cmd     // io.popen's process
	exited chan struct{} // closed when cmd has ended
	eof    bool          // a read met the end (of a pipe: the child is ending)
	std    bool          // io.stdin, io.stdout, io.stderr: never closed
	closed bool
}

const fileTypeName = "FILE*"

// errResult pushes nil, "<name>: <text>" (or "<text>"), errno.
func errResult(L *lua.LState, name string, err error) int {
	text, no := errnoOf(err)
	if name != "" {
		text = name + ": " + text
	}
	L.Push(lua.LNil)
	L.Push(lua.LString(text))
	L.Push(lua.LNumber(no))
	return 3
}

// errnoOf is the errno and glibc's strerror text of err.
func errnoOf(err error) (string, int) {
	var no syscall.Errno
	if !errors.As(err, &no) {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			no = syscall.ENOENT
		case errors.Is(err, fs.ErrPermission):
			no = syscall.EACCES
		case errors.Is(err, fs.ErrExist):
			no = syscall.EEXIST
		default:
			return err.Error(), 0
		}
	}
	text := ngxlog.Errno(no)
	if _, t, ok := strings.Cut(text, ": "); ok {
		text = t
	}
	return text, int(no)
}

// argError raises luaL_argerror's message: the function's name and
// position when Lua code called it (a file method's arguments counted
// after the file, as in f:read), '?' and none under pcall.
func argError(L *lua.LState, n int, fname, msg string) {
	if !callerIsLua(L) {
		fname = "?"
	} else if n > 1 && methodName[fname] && isFile(L.Get(1)) {
		n--
	}
	ioRaise(L, "bad argument #%d to '%s' (%s)", n, fname, msg)
}

// methodName lists the file methods.
var methodName = map[string]bool{"close": true, "flush": true, "lines": true, "read": true, "seek": true, "setvbuf": true, "write": true}

func isFile(v lua.LValue) bool {
	ud, ok := v.(*lua.LUserData)
	if ok {
		_, ok = ud.Value.(*luaFile)
	}
	return ok
}

// ioRaise raises msg with the position of the Lua code that called the
// library function, none when that was not Lua code (pcall).
func ioRaise(L *lua.LState, format string, args ...any) {
	restyError(L, 2, format, args...)
}

// stdClosed raises LuaJIT's error for a closed default file.
func stdClosed(L *lua.LState, f *luaFile) {
	if f.closed {
		ioRaise(L, "standard file is closed")
	}
}

func checkString(L *lua.LState, n int, fname string) string {
	switch v := L.Get(n).(type) {
	case lua.LString:
		return string(v)
	case lua.LNumber:
		return formatNumber(float64(v))
	}
	got := "no value"
	if n <= L.GetTop() {
		got = L.Get(n).Type().String()
	}
	argError(L, n, fname, "string expected, got "+got)
	return ""
}

func optString(L *lua.LState, n int, fname, def string) string {
	if L.Get(n) == lua.LNil {
		return def
	}
	return checkString(L, n, fname)
}

// luaIO is one state's io library: its default files.
type luaIO struct {
	st       *state
	meta     *lua.LTable
	in, out  *lua.LUserData
	stdin    *lua.LUserData
	stdout   *lua.LUserData
	stderr   *lua.LUserData
	children []string // the environment of child processes
}

func (st *state) openIO() {
	L := st.L
	lio := &luaIO{st: st}
	env := make([]string, 0, len(st.rt.opts.Env)+1)
	for k, v := range st.rt.opts.Env {
		env = append(env, k+"="+v)
	}
	if _, ok := st.rt.opts.Env["TZ"]; !ok {
		if tz, ok := os.LookupEnv("TZ"); ok {
			env = append(env, "TZ="+tz) // nginx keeps TZ unless env names it
		}
	}
	sort.Strings(env)
	lio.children = env

	meta := L.NewTable()
	lio.meta = meta
	methods := L.NewTable()
	for name, fn := range map[string]lua.LGFunction{
		"close":   lio.fileClose,
		"flush":   lio.fileFlush,
		"lines":   lio.fileLines,
		"read":    lio.fileRead,
		"seek":    lio.fileSeek,
		"setvbuf": lio.fileSetvbuf,
		"write":   lio.fileWrite,
	} {
		methods.RawSetString(name, L.NewFunction(fn))
	}
	meta.RawSetString("__index", methods)
	meta.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		f := lio.toFile(L, 1, "tostring")
		if f.closed {
			L.Push(lua.LString("file (closed)"))
		} else {
			L.Push(lua.LString(fmt.Sprintf("file (%p)", unsafe.Pointer(f))))
		}
		return 1
	}))
	lio.stdin = lio.newFile(&luaFile{f: os.Stdin, std: true})
	lio.stdout = lio.newFile(&luaFile{f: os.Stdout, std: true})
	lio.stderr = lio.newFile(&luaFile{f: os.Stderr, std: true})
	lio.in, lio.out = lio.stdin, lio.stdout

	mod := L.NewTable()
	for name, fn := range map[string]lua.LGFunction{
		"close":   lio.ioClose,
		"flush":   lio.ioFlush,
		"input":   func(L *lua.LState) int { return lio.ioDefault(L, &lio.in, "r", "input") },
		"output":  func(L *lua.LState) int { return lio.ioDefault(L, &lio.out, "w", "output") },
		"lines":   lio.ioLines,
		"open":    lio.ioOpen,
		"popen":   lio.ioPopen,
		"read":    lio.ioRead,
		"tmpfile": lio.ioTmpfile,
		"type":    lio.ioType,
		"write":   lio.ioWrite,
	} {
		mod.RawSetString(name, L.NewFunction(fn))
	}
	mod.RawSetString("stdin", lio.stdin)
	mod.RawSetString("stdout", lio.stdout)
	mod.RawSetString("stderr", lio.stderr)
	L.G.Global.RawSetString("io", mod)

	osmod := L.G.Global.RawGetString("os").(*lua.LTable)
	for name, fn := range map[string]lua.LGFunction{
		"execute":   lio.osExecute,
		"exit":      osExit,
		"remove":    osRemove,
		"rename":    osRename,
		"tmpname":   osTmpname,
		"setlocale": osSetlocale,
		"difftime":  osDifftime,
		"time":      osTime,
	} {
		osmod.RawSetString(name, L.NewFunction(fn))
	}
}

func (lio *luaIO) newFile(f *luaFile) *lua.LUserData {
	ud := lio.st.L.NewUserData()
	ud.Value = f
	ud.Metatable = lio.meta
	return ud
}

// toFile is argument n as a file (open or closed).
func (lio *luaIO) toFile(L *lua.LState, n int, fname string) *luaFile {
	if ud, ok := L.Get(n).(*lua.LUserData); ok {
		if f, ok := ud.Value.(*luaFile); ok {
			return f
		}
	}
	got := "no value"
	if n <= L.GetTop() {
		got = L.Get(n).Type().String()
	}
	argError(L, n, fname, fileTypeName+" expected, got "+got)
	return nil
}

// openFile is argument n as an open file.
func (lio *luaIO) openFile(L *lua.LState, n int, fname string) *luaFile {
	f := lio.toFile(L, n, fname)
	if f.closed {
		ioRaise(L, "attempt to use a closed file")
	}
	return f
}

// blocking runs fn with the run's clock stopped: waiting on a child
// process or a terminal is not running Lua (nginx has no limit at all).
func (lio *luaIO) blocking(f *luaFile, fn func()) {
	r := lio.st.r
	if (f == nil || f.cmd != nil || f.std) && r != nil && r.ctx != nil {
		r.ctx.pause()
		defer r.ctx.resume()
	}
	fn()
}

// openMode converts an fopen mode as glibc reads it; ok is false for
// one it refuses (EINVAL).
func openMode(mode string) (flag int, ok bool) {
	if mode == "" {
		return 0, false
	}
	switch mode[0] {
	case 'r':
		flag = os.O_RDONLY
	case 'w':
		flag = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	case 'a':
		flag = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	default:
		return 0, false
	}
	for i := 1; i < len(mode) && i < 7; i++ {
		switch mode[i] {
		case '+':
			flag &^= os.O_RDONLY | os.O_WRONLY
			flag |= os.O_RDWR
		case 'x':
			if mode[0] != 'r' {
				flag |= os.O_EXCL
			}
		case 'e':
			// O_CLOEXEC: Go's default
		case ',':
			i = len(mode)
		}
	}
	return flag, true
}

func (lio *luaIO) open(name, mode string) (*luaFile, error) {
	flag, ok := openMode(mode)
	if !ok {
		return nil, syscall.EINVAL
	}
	f, err := os.OpenFile(name, flag, 0o666)
	if err != nil {
		return nil, err
	}
	return &luaFile{f: f}, nil
}

func (lio *luaIO) ioOpen(L *lua.LState) int {
	name := checkString(L, 1, "open")
	mode := optString(L, 2, "open", "r")
	f, err := lio.open(name, mode)
	if err != nil {
		return errResult(L, name, err)
	}
	L.Push(lio.newFile(f))
	return 1
}

func (lio *luaIO) ioPopen(L *lua.LState) int {
	cmdline := checkString(L, 1, "popen")
	mode := optString(L, 2, "popen", "r")
	if mode == "" || (mode[0] != 'r' && mode[0] != 'w') {
		return errResult(L, cmdline, syscall.EINVAL)
	}
	cmd := lio.command(cmdline)
	pr, pw, err := os.Pipe()
	if err != nil {
		return errResult(L, cmdline, err)
	}
	f, child := pr, pw
	if mode[0] == 'r' {
		cmd.Stdin, cmd.Stdout = os.Stdin, pw
	} else {
		cmd.Stdin, cmd.Stdout = pr, os.Stdout
		f, child = pw, pr
	}
	err = cmd.Start()
	child.Close()
	if err != nil {
		f.Close()
		return errResult(L, cmdline, err)
	}
	// nginx's SIGCHLD handler reaps a child that ends before pclose
	// waits for it, and pclose then fails with ECHILD: exited says when.
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	L.Push(lio.newFile(&luaFile{f: f, cmd: cmd, exited: exited}))
	return 1
}

// command is system()'s and popen()'s /bin/sh -c cmdline, in nginx's
// environment.
func (lio *luaIO) command(cmdline string) *exec.Cmd {
	cmd := exec.Command("/bin/sh", "-c", cmdline)
	cmd.Env = lio.children
	cmd.Stderr = os.Stderr
	return cmd
}

func (lio *luaIO) ioTmpfile(L *lua.LState) int {
	f, err := os.CreateTemp("", "lua_")
	if err != nil {
		return errResult(L, "", err)
	}
	os.Remove(f.Name())
	L.Push(lio.newFile(&luaFile{f: f}))
	return 1
}

func (lio *luaIO) ioType(L *lua.LState) int {
	L.CheckAny(1)
	if ud, ok := L.Get(1).(*lua.LUserData); ok {
		if f, ok := ud.Value.(*luaFile); ok {
			if f.closed {
				L.Push(lua.LString("closed file"))
			} else {
				L.Push(lua.LString("file"))
			}
			return 1
		}
	}
	L.Push(lua.LNil)
	return 1
}

func (lio *luaIO) ioClose(L *lua.LState) int {
	if L.GetTop() == 0 || L.Get(1) == lua.LNil {
		stdClosed(L, lio.out.Value.(*luaFile))
		return lio.close(L, lio.out.Value.(*luaFile))
	}
	return lio.close(L, lio.openFile(L, 1, "close"))
}

func (lio *luaIO) fileClose(L *lua.LState) int {
	return lio.close(L, lio.openFile(L, 1, "close"))
}

func (lio *luaIO) close(L *lua.LState, f *luaFile) int {
	if f.closed {
		ioRaise(L, "attempt to use a closed file")
	}
	if f.std {
		L.Push(lua.LNil)
		L.Push(lua.LString("cannot close standard file"))
		return 2
	}
	f.closed = true
	err := f.f.Close()
	if f.cmd != nil {
		select {
		case <-f.exited:
			err = syscall.ECHILD // reaped already, as nginx would have
		default:
			lio.blocking(f, func() { <-f.exited })
			if f.eof {
				// it closed its output to end: exiting, its SIGCHLD
				// would have reached nginx's handler before pclose
				err = syscall.ECHILD
			}
		}
	}
	f.r = nil
	if err != nil {
		return errResult(L, "", err)
	}
	L.Push(lua.LTrue)
	return 1
}

func (lio *luaIO) ioFlush(L *lua.LState) int {
	stdClosed(L, lio.out.Value.(*luaFile))
	return lio.flush(L, lio.out.Value.(*luaFile))
}

func (lio *luaIO) fileFlush(L *lua.LState) int {
	return lio.flush(L, lio.openFile(L, 1, "flush"))
}

func (lio *luaIO) flush(L *lua.LState, f *luaFile) int {
	if f.closed {
		ioRaise(L, "attempt to use a closed file")
	}
	L.Push(lua.LTrue) // writes are not buffered
	return 1
}

// ioDefault is io.input and io.output.
func (lio *luaIO) ioDefault(L *lua.LState, cur **lua.LUserData, mode, fname string) int {
	switch v := L.Get(1).(type) {
	case *lua.LNilType:
	case lua.LString, lua.LNumber:
		name := checkString(L, 1, fname)
		f, err := lio.open(name, mode)
		if err != nil {
			text, _ := errnoOf(err)
			argError(L, 1, fname, name+": "+text)
		}
		*cur = lio.newFile(f)
	default:
		lio.openFile(L, 1, fname)
		*cur = v.(*lua.LUserData)
	}
	L.Push(*cur)
	return 1
}

func (lio *luaIO) ioRead(L *lua.LState) int {
	f := lio.in.Value.(*luaFile)
	stdClosed(L, f)
	return lio.read(L, f, 1, "read", 1)
}

func (lio *luaIO) fileRead(L *lua.LState) int {
	return lio.read(L, lio.openFile(L, 1, "read"), 2, "read", 2)
}

func (lio *luaIO) ioWrite(L *lua.LState) int {
	f := lio.out.Value.(*luaFile)
	stdClosed(L, f)
	return lio.write(L, f, 1, 1)
}

func (lio *luaIO) fileWrite(L *lua.LState) int {
	return lio.write(L, lio.openFile(L, 1, "write"), 2, 1)
}

// reader is f's read buffer.
func (f *luaFile) reader() *bufio.Reader {
	if f.r == nil {
		f.r = bufio.NewReader(f.f)
	}
	return f.r
}

// unread gives back the bytes read ahead (before a write or a seek).
func (f *luaFile) unread() error {
	if f.r == nil || f.r.Buffered() == 0 {
		f.r = nil
		return nil
	}
	n := f.r.Buffered()
	f.r = nil
	_, err := f.f.Seek(int64(-n), io.SeekCurrent)
	return err
}

func (lio *luaIO) write(L *lua.LState, f *luaFile, first, argBase int) int {
	top := L.GetTop()
	var b strings.Builder
	for i := first; i <= top; i++ {
		switch v := L.Get(i).(type) {
		case lua.LString:
			b.WriteString(string(v))
		case lua.LNumber:
			b.WriteString(formatNumber(float64(v)))
		default:
			argError(L, i, "write", "string expected, got "+v.Type().String())
		}
	}
	var err error
	lio.blocking(f, func() {
		if err = f.unread(); err == nil || f.cmd != nil || f.std {
			_, err = f.f.Write([]byte(b.String()))
		}
	})
	if err != nil {
		return errResult(L, "", err)
	}
	L.Push(lua.LTrue)
	return 1
}

// read reads the formats from argument first on (none: a line).
func (lio *luaIO) read(L *lua.LState, f *luaFile, first int, fname string, argBase int) int {
	top := L.GetTop()
	formats := []lua.LValue{lua.LString("*l")}
	if top >= first {
		formats = make([]lua.LValue, 0, top-first+1)
		for i := first; i <= top; i++ {
			formats = append(formats, L.Get(i))
		}
	}
	var results []lua.LValue
	var rerr error
	lio.blocking(f, func() {
		results, rerr = lio.readFormats(L, f, formats, fname, argBase)
	})
	if rerr != nil {
		return errResult(L, "", rerr)
	}
	for _, v := range results {
		L.Push(v)
	}
	return len(results)
}

func (lio *luaIO) readFormats(L *lua.LState, f *luaFile, formats []lua.LValue, fname string, argBase int) ([]lua.LValue, error) {
	r := f.reader()
	out := make([]lua.LValue, 0, len(formats))
	for i, fm := range formats {
		var v lua.LValue = lua.LNil
		var err error
		switch x := fm.(type) {
		case lua.LNumber:
			n := int64(x)
			if n <= 0 {
				if _, err = r.Peek(1); err == nil {
					v = lua.LString("")
				}
			} else {
				// no buffer of n bytes ahead: read(1e12) reads what there is
				buf, e := io.ReadAll(io.LimitReader(r, n))
				err = e
				if len(buf) > 0 {
					v, err = lua.LString(buf), nil
				} else if err == nil {
					err = io.EOF
				}
			}
		case lua.LString:
			s := strings.TrimPrefix(string(x), "*")
			if s == "" {
				argError(L, i+argBase, fname, "invalid format")
			}
			switch s[0] {
			case 'n':
				v, err = readNumber(r)
			case 'a':
				var data []byte
				data, err = io.ReadAll(r)
				v = lua.LString(data)
				f.eof = err == nil
			case 'l', 'L':
				var line string
				line, err = r.ReadString('\n')
				f.eof = f.eof || err == io.EOF
				if line != "" {
					if s[0] == 'l' {
						line = strings.TrimSuffix(line, "\n")
					}
					v, err = lua.LString(line), nil
				}
			default:
				argError(L, i+argBase, fname, "invalid format")
			}
		default:
			argError(L, i+argBase, fname, "invalid format")
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			f.eof = true
		} else if err != nil {
			return nil, err
		}
		out = append(out, v)
		if v == lua.LNil {
			break
		}
	}
	return out, nil
}

// readNumber reads a number as fscanf's "%lf" does: spaces, a sign, a
// decimal or hexadecimal number, inf or nan.
func readNumber(r *bufio.Reader) (lua.LValue, error) {
	for {
		c, err := r.ReadByte()
		if err != nil {
			return lua.LNil, err
		}
		if !isLuaSpace(c) {
			r.UnreadByte()
			break
		}
	}
	var b []byte
	peek := func() byte {
		p, err := r.Peek(1)
		if err != nil {
			return 0
		}
		return p[0]
	}
	take := func() { c, _ := r.ReadByte(); b = append(b, c) }
	if c := peek(); c == '+' || c == '-' {
		take()
	}
	isDigit := func(c byte, hex bool) bool {
		return c >= '0' && c <= '9' || hex && (c|0x20 >= 'a' && c|0x20 <= 'f')
	}
	hex := false
	if peek() == '0' {
		take()
		if peek()|0x20 == 'x' {
			take()
			hex = true
		}
	} else if c := peek() | 0x20; c == 'i' || c == 'n' {
		for peek() != 0 && (peek()|0x20 >= 'a' && peek()|0x20 <= 'z') && len(b) < 10 {
			take()
		}
	}
	for isDigit(peek(), hex) {
		take()
	}
	if peek() == '.' {
		take()
		for isDigit(peek(), hex) {
			take()
		}
	}
	if e := peek() | 0x20; (!hex && e == 'e') || (hex && e == 'p') {
		take()
		if c := peek(); c == '+' || c == '-' {
			take()
		}
		for isDigit(peek(), false) {
			take()
		}
	}
	s := string(b)
	if hex && !strings.ContainsAny(s, ".pP") {
		if n, ok := parseLuaNumber(s); ok {
			return lua.LNumber(n), nil
		}
		return lua.LNil, nil
	}
	if hex && !strings.ContainsAny(s, "pP") {
		s += "p0"
	}
	if n, ok := parseLuaNumber(s); ok {
		return lua.LNumber(n), nil
	}
	return lua.LNil, nil
}

func (lio *luaIO) fileSeek(L *lua.LState) int {
	f := lio.openFile(L, 1, "seek")
	whence := io.SeekCurrent
	switch opt := optString(L, 2, "seek", "cur"); opt {
	case "set":
		whence = io.SeekStart
	case "cur":
	case "end":
		whence = io.SeekEnd
	default:
		argError(L, 2, "seek", "invalid option '"+opt+"'")
	}
	off := int64(0)
	if v, ok := L.Get(3).(lua.LNumber); ok {
		off = int64(v)
	} else if L.Get(3) != lua.LNil {
		argError(L, 3, "seek", "number expected, got "+L.Get(3).Type().String())
	}
	if whence == io.SeekCurrent && f.r != nil {
		off -= int64(f.r.Buffered())
	}
	f.r = nil
	pos, err := f.f.Seek(off, whence)
	if err != nil {
		return errResult(L, "", err)
	}
	L.Push(lua.LNumber(pos))
	return 1
}

func (lio *luaIO) fileSetvbuf(L *lua.LState) int {
	lio.openFile(L, 1, "setvbuf")
	switch opt := checkString(L, 2, "setvbuf"); opt {
	case "no", "full", "line":
	default:
		argError(L, 2, "setvbuf", "invalid option '"+opt+"'")
	}
	L.Push(lua.LTrue)
	return 1
}

func (lio *luaIO) fileLines(L *lua.LState) int {
	ud := L.Get(1)
	lio.openFile(L, 1, "lines")
	return lio.lines(L, ud.(*lua.LUserData), false, 2)
}

func (lio *luaIO) ioLines(L *lua.LState) int {
	if L.Get(1) == lua.LNil {
		stdClosed(L, lio.in.Value.(*luaFile))
		return lio.lines(L, lio.in, false, 2)
	}
	name := checkString(L, 1, "lines")
	f, err := lio.open(name, "r")
	if err != nil {
		text, _ := errnoOf(err)
		argError(L, 1, "lines", name+": "+text)
	}
	return lio.lines(L, lio.newFile(f), true, 2)
}

// lines returns the iterator over ud with the formats from argument first
// on; closing closes the file at its end (io.lines(name)).
func (lio *luaIO) lines(L *lua.LState, ud *lua.LUserData, closing bool, first int) int {
	var formats []lua.LValue
	for i := first; i <= L.GetTop(); i++ {
		formats = append(formats, L.Get(i))
	}
	f := ud.Value.(*luaFile)
	L.Push(L.NewFunction(func(L *lua.LState) int {
		if f.closed {
			ioRaise(L, "attempt to use a closed file")
		}
		fmts := formats
		if len(fmts) == 0 {
			fmts = []lua.LValue{lua.LString("*l")}
		}
		var results []lua.LValue
		var rerr error
		lio.blocking(f, func() {
			results, rerr = lio.readFormats(L, f, fmts, "lines", 1)
		})
		if rerr != nil {
			text, _ := errnoOf(rerr)
			L.RaiseError("%s", text)
		}
		if len(results) > 0 && results[0] == lua.LNil && closing {
			f.closed = true
			f.f.Close()
			f.r = nil
			return 0
		}
		for _, v := range results {
			L.Push(v)
		}
		return len(results)
	}))
	return 1
}

// osExecute is system(): /bin/sh -c command, the raw wait status.
func (lio *luaIO) osExecute(L *lua.LState) int {
	if L.Get(1) == lua.LNil {
		if _, err := os.Stat("/bin/sh"); err != nil {
			L.Push(lua.LNumber(0))
		} else {
			L.Push(lua.LNumber(1))
		}
		return 1
	}
	cmdline := checkString(L, 1, "execute")
	cmd := lio.command(cmdline)
	cmd.Stdin, cmd.Stdout = os.Stdin, os.Stdout
	var err error
	lio.blocking(nil, func() { err = cmd.Run() })
	status := -1
	if cmd.ProcessState != nil {
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			if ws.Signaled() {
				status = int(ws.Signal())
			} else {
				status = ws.ExitStatus() << 8
			}
		}
	} else if err == nil {
		status = 0
	}
	L.Push(lua.LNumber(status))
	return 1
}

// osExit refuses: in nginx os.exit ends the worker process (its requests
// die, the master starts another); ngxsockify is one process for all.
func osExit(L *lua.LState) int {
	L.RaiseError("os.exit() is not supported: it would stop the whole server, not one worker process")
	return 0
}

func osRemove(L *lua.LState) int {
	name := checkString(L, 1, "remove")
	if err := os.Remove(name); err != nil {
		return errResult(L, name, err)
	}
	L.Push(lua.LTrue)
	return 1
}

func osRename(L *lua.LState) int {
	from := checkString(L, 1, "rename")
	to := checkString(L, 2, "rename")
	if err := os.Rename(from, to); err != nil {
		return errResult(L, from, err)
	}
	L.Push(lua.LTrue)
	return 1
}

// osTmpname creates an empty file /tmp/lua_XXXXXX (mkstemp) and returns
// its name.
func osTmpname(L *lua.LState) int {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	for try := 0; try < 100; try++ {
		var rnd [6]byte
		rand.Read(rnd[:])
		for i := range rnd {
			rnd[i] = chars[int(rnd[i])%len(chars)]
		}
		name := "/tmp/lua_" + string(rnd[:])
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			break
		}
		f.Close()
		L.Push(lua.LString(name))
		return 1
	}
	L.RaiseError("unable to generate a unique filename")
	return 0
}

// osSetlocale: the worker's locale is "C" (nginx never calls setlocale)
// and only "C", "POSIX" or "" (the cleared environment's) can be set.
func osSetlocale(L *lua.LState) int {
	cat := optString(L, 2, "setlocale", "all")
	switch cat {
	case "all", "collate", "ctype", "monetary", "numeric", "time":
	default:
		argError(L, 2, "setlocale", "invalid option '"+cat+"'")
	}
	switch v := L.Get(1).(type) {
	case *lua.LNilType:
		L.Push(lua.LString("C"))
	default:
		switch checkString(L, 1, "setlocale") {
		case "", "C", "POSIX":
			_ = v
			L.Push(lua.LString("C"))
		default:
			L.Push(lua.LNil)
		}
	}
	return 1
}

func checkNumber(L *lua.LState, n int, fname string) float64 {
	switch v := L.Get(n).(type) {
	case lua.LNumber:
		return float64(v)
	case lua.LString:
		if f, ok := parseLuaNumber(string(v)); ok {
			return f
		}
	}
	got := "no value"
	if n <= L.GetTop() {
		got = L.Get(n).Type().String()
	}
	argError(L, n, fname, "number expected, got "+got)
	return 0
}

// osDifftime is difftime(t2, t1 = 0).
func osDifftime(L *lua.LState) int {
	t2 := checkNumber(L, 1, "difftime")
	t1 := 0.0
	if L.Get(2) != lua.LNil {
		t1 = checkNumber(L, 2, "difftime")
	}
	L.Push(lua.LNumber(t2 - t1))
	return 1
}

// osTime is os.time([table]): now, or mktime of the table's fields in
// local time (day, month and year required; hour 12, min and sec 0 by
// default; out-of-range fields carry over as mktime's do).
func osTime(L *lua.LState) int {
	if L.Get(1) == lua.LNil {
		L.Push(lua.LNumber(time.Now().Unix()))
		return 1
	}
	t, ok := L.Get(1).(*lua.LTable)
	if !ok {
		argError(L, 1, "time", "table expected, got "+L.Get(1).Type().String())
	}
	field := func(key string, def int) int {
		switch v := t.RawGetString(key).(type) {
		case lua.LNumber:
			return int(v)
		case lua.LString:
			if f, ok := parseLuaNumber(string(v)); ok {
				return int(f)
			}
		}
		if def < 0 {
			ioRaise(L, "field '%s' missing in date table", key)
		}
		return def
	}
	sec, min, hour := field("sec", 0), field("min", 0), field("hour", 12)
	day, month, year := field("day", -1), field("month", -1), field("year", -1)
	L.Push(lua.LNumber(time.Date(year, time.Month(month), day, hour, min, sec, 0, time.Local).Unix()))
	return 1
}
