package static

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"ngxsockify/ngxlog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// autoindexNameLen is the width of the name column in nginx's listing.
const autoindexNameLen = 50

type dirEntry struct {
	name  string
	dir   bool
	size  int64
	mtime time.Time
}

// autoindex writes nginx's HTML listing (autoindex_format html,
// autoindex_exact_size on, autoindex_localtime off): dotfiles hidden,
// directories first, then names in byte order.
func autoindex(w http.ResponseWriter, r *http.Request, f *os.File, path, uri string, o *Options) (int, int64) {
	names, err := f.Readdirnames(-1)
	if err != nil {
		o.logf(ngxlog.Crit, `readdir() "%s" failed (%v)`, path, errnoText(err))
		return http.StatusInternalServerError, 0
	}
	entries := make([]dirEntry, 0, len(names))
	for _, name := range names {
		if strings.HasPrefix(name, ".") {
			continue
		}
		full := filepath.Join(path, name)
		fi, err := os.Stat(full)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				o.logf(ngxlog.Crit, `stat() "%s" failed (%v)`, full, errnoText(err))
				if errors.Is(err, fs.ErrPermission) {
					continue
				}
				return http.StatusInternalServerError, 0
			}
			if fi, err = os.Lstat(full); err != nil { // a dangling symlink
				continue
			}
		}
		entries = append(entries, dirEntry{name: name, dir: fi.IsDir(), size: fi.Size(), mtime: fi.ModTime()})
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].dir != entries[j].dir {
			return entries[i].dir
		}
		return entries[i].name < entries[j].name
	})
	body := listing(uri, entries)
	h := w.Header()
	h.Set("Content-Type", "text/html")
	// nginx streams the listing chunked; a length is as valid and cheaper.
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return http.StatusOK, 0
	}
	n, _ := w.Write([]byte(body))
	return http.StatusOK, int64(n)
}

// listing renders the listing of uri; entries must be sorted.
func listing(uri string, entries []dirEntry) string {
	var b strings.Builder
	title := htmlEscape(uri)
	b.WriteString("<html>\r\n<head><title>Index of " + title + "</title></head>\r\n<body>\r\n")
	b.WriteString("<h1>Index of " + title + "</h1><hr><pre><a href=\"../\">../</a>\r\n")
	for _, e := range entries {
		b.WriteString(`<a href="`)
		b.WriteString(escapeHref(e.name))
		if e.dir {
			b.WriteByte('/')
		}
		b.WriteString(`">`)
		// Widths count bytes: nginx counts characters only under
		// `charset utf-8`, which ngxsockify does not implement.
		name := e.name
		if e.dir {
			name += "/"
		}
		n := len(name)
		if n > autoindexNameLen {
			b.WriteString(htmlEscape(name[:autoindexNameLen-3]))
			b.WriteString("..&gt;</a>")
		} else {
			b.WriteString(htmlEscape(name))
			b.WriteString("</a>")
			b.WriteString(strings.Repeat(" ", autoindexNameLen-n))
		}
		t := e.mtime.UTC()
		fmt.Fprintf(&b, " %02d-%s-%d %02d:%02d ", t.Day(), t.Month().String()[:3], t.Year(), t.Hour(), t.Minute())
		if e.dir {
			fmt.Fprintf(&b, "%19s", "-")
		} else {
			fmt.Fprintf(&b, "%19d", e.size)
		}
		b.WriteString("\r\n")
	}
	b.WriteString("</pre><hr></body>\r\n</html>\r\n")
	return b.String()
}

var htmlEscaper = strings.NewReplacer("<", "&lt;", ">", "&gt;", "&", "&amp;", `"`, "&quot;")

func htmlEscape(s string) string { return htmlEscaper.Replace(s) }

// escapeHref percent-encodes a file name for an href like nginx's
// ngx_escape_uri(NGX_ESCAPE_HTML).
func escapeHref(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if hrefEscaped(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// hrefEscaped: everything but letters, digits and "-._~" (measured on
// nginx 1.22 with every printable ASCII character in a file name).
func hrefEscaped(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return false
	}
	return strings.IndexByte("-._~", c) < 0
}
