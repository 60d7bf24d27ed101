package luahooks

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"ngxsockify/ngxlog"
	"strings"
	"sync"
	"testing"
)

// fakeVars is a small VarStore: declared variables are writable, "uri" is
// not changeable, $arg_* are read from the query, others are unknown.
type fakeVars struct {
	mu  sync.Mutex
	m   map[string]string
	set map[string]bool // has a value
	req *http.Request
}

func newFakeVars(r *http.Request, declared ...string) *fakeVars {
	v := &fakeVars{m: map[string]string{}, set: map[string]bool{}, req: r}
	for _, d := range declared {
		v.m[d] = ""
		v.set[d] = true
	}
	return v
}

func (v *fakeVars) Get(name string) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.m[name]; ok {
		return v.m[name], v.set[name]
	}
	switch {
	case name == "uri":
		return v.req.URL.Path, true
	case name == "args":
		return v.req.URL.RawQuery, true
	case strings.HasPrefix(name, "arg_"):
		for _, kv := range strings.Split(v.req.URL.RawQuery, "&") {
			k, val, _ := strings.Cut(kv, "=")
			if strings.EqualFold(k, name[4:]) {
				return val, true
			}
		}
		return "", false
	case strings.HasPrefix(name, "http_"):
		h := strings.ReplaceAll(name[5:], "_", "-")
		if strings.EqualFold(h, "host") {
			return v.req.Host, true
		}
		if vals := v.req.Header.Values(h); len(vals) > 0 {
			return strings.Join(vals, ", "), true
		}
		return "", false
	}
	return "", false
}

func (v *fakeVars) Set(name, value string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if name == "uri" {
		return fmt.Errorf("variable \"uri\" not changeable")
	}
	if name == "args" {
		v.req.URL.RawQuery = value
		return nil
	}
	if _, ok := v.m[name]; !ok {
		return fmt.Errorf("variable \"%s\" not found for writing; maybe it is a built-in variable that is not changeable or you forgot to use \"set $%s '';\" in the config file to define it first", name, name)
	}
	v.m[name] = value
	v.set[name] = true
	return nil
}

func (v *fakeVars) Unset(name string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.m[name]; !ok {
		return fmt.Errorf("variable \"%s\" not found for writing; maybe it is a built-in variable that is not changeable or you forgot to use \"set $%s '';\" in the config file to define it first", name, name)
	}
	v.set[name] = false
	return nil
}

var _ VarStore = (*fakeVars)(nil)

type logLine struct {
	level ngxlog.Level
	msg   string
}

type logSink struct {
	mu    sync.Mutex
	lines []logLine
}

func (s *logSink) log(level ngxlog.Level, msg string) {
	s.mu.Lock()
	s.lines = append(s.lines, logLine{level, msg})
	s.mu.Unlock()
}

func (s *logSink) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, l := range s.lines {
		fmt.Fprintf(&b, "[%d] %s\n", l.level, l.msg)
	}
	return b.String()
}

func newTestRuntime(t testing.TB, opts Options) (*Runtime, *logSink) {
	t.Helper()
	sink := &logSink{}
	if opts.Log == nil {
		opts.Log = sink.log
	}
	if opts.SharedDicts == nil {
		opts.SharedDicts = map[string]int64{"dogs": 1 << 20, "tiny": 1024}
	}
	opts.CodeCache = true
	rt, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt, sink
}

func newReq(target string, declared ...string) *Request {
	r := httptest.NewRequest("GET", target, nil)
	return &Request{HTTP: r, Vars: newFakeVars(r, declared...)}
}

// runCode compiles src as an inline chunk (nginx.conf line 10) and runs it.
func runCode(t testing.TB, rt *Runtime, phase Phase, src string, req *Request) Outcome {
	t.Helper()
	c, err := rt.CompileInline(phase, src, "/etc/nginx/nginx.conf", 10)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return rt.Run(context.Background(), c, req)
}

func ioCopy(dst io.Writer, src io.Reader) (int64, error) { return io.Copy(dst, src) }

// errHead is the first line of a run's error: the message, without the
// stack traceback that follows an entry thread's runtime error.
func errHead(err error) string {
	head, _, _ := strings.Cut(err.Error(), "\n")
	return head
}
