package nginxconf

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// maxIncludeDepth bounds nested includes. nginx itself recurses until it
// crashes on an include cycle; we stop with an error instead.
const maxIncludeDepth = 64

// include is ngx_conf_include(): the file (or every file matching the glob)
// is parsed in the current context, and its directives replace the include
// directive. A relative name is relative to the main file's directory. A
// missing plain file is an error; a glob matching nothing is not; a glob
// skips dotfiles unless the pattern spells the dot.
func (p *parser) include(s *source, ctx *parseCtx, d *Directive) ([]*Directive, error) {
	name := d.Args[0]
	if !strings.HasPrefix(name, "/") {
		name = p.confPrefix + name
	}
	if !strings.ContainsAny(name, "*?[") {
		return p.includeFile(s, ctx, d, name)
	}
	files, err := nginxGlob(name)
	if err != nil {
		return nil, p.fail(s, "%s", withErrno(`glob() "`+name+`" failed`, err))
	}
	var out []*Directive
	for _, f := range files {
		dirs, err := p.includeFile(s, ctx, d, f)
		out = append(out, dirs...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func (p *parser) includeFile(s *source, ctx *parseCtx, d *Directive, path string) ([]*Directive, error) {
	if slices.Contains(p.stack, path) {
		return nil, p.fail(s, `include cycle: "%s" includes itself`, path)
	}
	if len(p.stack) > maxIncludeDepth {
		return nil, p.fail(s, `too deeply nested includes at "%s"`, path)
	}
	data, err := readConf(path)
	if err != nil {
		if fi, serr := os.Stat(path); serr == nil && fi.IsDir() {
			// open() succeeds on a directory, the read fails; nginx logs
			// this one without a position.
			p.errs = append(p.errs, &Error{Msg: fmt.Sprintf(`pread() "%s" failed (21: Is a directory)`, path)})
			if p.opts.CollectAll {
				return nil, nil
			}
			return nil, errAbort
		}
		return nil, p.fail(s, "%s", withErrno(`open() "`+path+`" failed`, err))
	}
	p.addFile(path, data)
	p.stack = append(p.stack, path)
	defer func() { p.stack = p.stack[:len(p.stack)-1] }()
	return p.parse(newSource(path, data), ctx, parseFile)
}

// readConf reads a config file as nginx does: as many bytes as fstat()
// reports, so a device or a /proc file reads as empty instead of forever.
func readConf(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, &os.PathError{Op: "read", Path: path, Err: syscall.EISDIR}
	}
	if !fi.Mode().IsRegular() {
		return nil, nil
	}
	data := make([]byte, fi.Size())
	n, err := io.ReadFull(f, data)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	return data[:n], nil
}

// nginxGlob expands pattern like glibc's glob(pattern, 0) as nginx calls
// it: results sorted bytewise, wildcards never match a leading dot, the
// fixed part of the pattern kept as written (not cleaned), no match is no
// error, unreadable directories are skipped.
func nginxGlob(pattern string) ([]string, error) {
	parts := strings.Split(pattern, "/")
	paths := []string{parts[0]}
	for i, part := range parts[1:] {
		lastPart := i == len(parts)-2
		var next []string
		for _, base := range paths {
			if !strings.ContainsAny(part, "*?[") {
				next = append(next, base+"/"+part)
				continue
			}
			dir := base
			if dir == "" {
				dir = "/"
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				continue
			}
			pat := strings.ReplaceAll(part, "[!", "[^")
			for _, e := range entries {
				n := e.Name()
				if n[0] == '.' && part[0] != '.' {
					continue
				}
				ok, err := filepath.Match(pat, n)
				if err != nil {
					// glob() takes a malformed bracket literally.
					ok = n == part
				}
				if !ok {
					continue
				}
				if !lastPart && !isDir(base+"/"+n) {
					continue
				}
				next = append(next, base+"/"+n)
			}
		}
		paths = next
	}
	var out []string
	for _, f := range paths {
		if _, err := os.Lstat(f); err == nil {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out, nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
