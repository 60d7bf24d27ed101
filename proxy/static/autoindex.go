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
	"strings"
	"time"
)

// autoindexNameLen is the width of the name column in nginx's listing.
const autoindexNameLen = 50

// maxCallbackLen is the longest jsonp callback name nginx accepts.
const maxCallbackLen = 128

type dirEntry struct {
	name  string
	dir   bool
	size  int64
	mtime time.Time
}

// autoindex writes nginx's listing in the location's autoindex_format:
// dotfiles hidden, directories first, then names in byte order.
func autoindex(w http.ResponseWriter, r *http.Request, f *os.File, path, uri string, o *Options) (int, int64) {
	names, err := f.Readdirnames(-1)
	if err != nil {
		o.logf(ngxlog.Crit, `readdir() "%s" failed (%v)`, path, ngxlog.Errno(err))
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
				o.logf(ngxlog.Crit, `stat() "%s" failed (%v)`, full, ngxlog.Errno(err))
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
	var body, ctype string
	switch format, callback := o.AutoindexFormat, o.Callback; {
	case format == "xml":
		body, ctype = listingXML(entries, o), "text/xml; charset=utf-8"
	case format == "jsonp" && callback != "":
		if !validCallback(callback) {
			if len(callback) > maxCallbackLen {
				o.logf(ngxlog.Info, `client sent too long callback name: "%s"`, callback)
			} else {
				o.logf(ngxlog.Info, `client sent invalid callback name: "%s"`, callback)
			}
			return http.StatusBadRequest, 0
		}
		body, ctype = "/* callback */\r\n"+callback+"("+listingJSON(entries)+");", "application/javascript"
	case format == "json" || format == "jsonp":
		body, ctype = listingJSON(entries), "application/json"
	default:
		body, ctype = listing(uri, entries, o), "text/html"
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	// no Content-Length: nginx streams the listing (chunked, or up to the
	// close for HTTP/1.0)
	h.Del("Content-Length")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	if r.Method == http.MethodHead {
		return http.StatusOK, 0
	}
	n, _ := w.Write([]byte(body))
	return http.StatusOK, int64(n)
}

// validCallback: letters, digits, "_" and ".", at most 128 bytes (nginx's
// test of a jsonp callback name, which it takes from the raw query).
func validCallback(s string) bool {
	if len(s) > maxCallbackLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if lc := c | 0x20; lc >= 'a' && lc <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' {
			continue
		}
		return false
	}
	return true
}

// listingTime is an entry's mtime in the listing's zone: UTC, or with
// autoindex_localtime the server's current offset (nginx applies today's
// offset to every entry).
func listingTime(t time.Time, o *Options) time.Time {
	t = t.UTC()
	if o.AutoindexLocaltime {
		_, off := time.Now().Zone()
		t = t.Add(time.Duration(off) * time.Second)
	}
	return t
}

// listing renders the HTML listing of uri; entries must be sorted. Names
// are cut to the 50-column name field: counted in characters when the
// response's charset is utf-8 and the name is valid UTF-8, in bytes
// otherwise.
func listing(uri string, entries []dirEntry, o *Options) string {
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
		width, utf := len(e.name), false
		if o.UTF8Names {
			width, utf = utf8Length(e.name)
		}
		if width > autoindexNameLen {
			b.WriteString(htmlEscape(cutName(e.name, autoindexNameLen-3, utf)))
			b.WriteString("..&gt;</a>")
		} else {
			b.WriteString(htmlEscape(e.name))
			// a directory's "/" is shown only where it fits
			if e.dir && width < autoindexNameLen {
				b.WriteByte('/')
				width++
			}
			b.WriteString("</a>")
			b.WriteString(strings.Repeat(" ", autoindexNameLen-width))
		}
		t := listingTime(e.mtime, o)
		fmt.Fprintf(&b, " %02d-%s-%d %02d:%02d ", t.Day(), t.Month().String()[:3], t.Year(), t.Hour(), t.Minute())
		switch {
		case e.dir && o.AutoindexExactSize:
			fmt.Fprintf(&b, "%19s", "-")
		case e.dir:
			fmt.Fprintf(&b, "%7s", "-")
		case o.AutoindexExactSize:
			fmt.Fprintf(&b, "%19d", e.size)
		default:
			b.WriteString(approxSize(e.size))
		}
		b.WriteString("\r\n")
	}
	b.WriteString("</pre><hr></body>\r\n</html>\r\n")
	return b.String()
}

// cutName returns the first n characters (utf) or bytes of name.
func cutName(name string, n int, utf bool) string {
	if !utf {
		return name[:n]
	}
	i := 0
	for ; n > 0; n-- {
		if name[i] < 0x80 {
			i++
			continue
		}
		_, size := DecodeUTF8([]byte(name[i:]))
		i += size
	}
	return name[:i]
}

// approxSize is the size column under autoindex_exact_size off: 7
// columns, bytes up to 9999, else K, M or G rounded half up.
func approxSize(n int64) string {
	const k, m, g = 1 << 10, 1 << 20, 1 << 30
	scale, unit := int64(1), ""
	switch {
	case n >= g:
		scale, unit = g, "G"
	case n >= m:
		scale, unit = m, "M"
	case n > 9999:
		scale, unit = k, "K"
	}
	if unit == "" {
		return fmt.Sprintf(" %6d", n)
	}
	v := n / scale
	if n%scale >= scale/2 {
		v++
	}
	return fmt.Sprintf("%6d%s", v, unit)
}

// listingXML renders autoindex_format xml.
func listingXML(entries []dirEntry, o *Options) string {
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\"?>\r\n<list>\r\n")
	for _, e := range entries {
		kind := "file"
		if e.dir {
			kind = "directory"
		}
		t := listingTime(e.mtime, o)
		fmt.Fprintf(&b, `<%s mtime="%04d-%02d-%02dT%02d:%02d:%02d`, kind, t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second())
		_, off := time.Now().Zone()
		if o.AutoindexLocaltime && off != 0 {
			sign := byte('+')
			if off < 0 {
				sign, off = '-', -off
			}
			fmt.Fprintf(&b, "%c%02d:%02d", sign, off/3600, off/60%60)
		} else {
			b.WriteByte('Z')
		}
		b.WriteByte('"')
		if !e.dir {
			fmt.Fprintf(&b, ` size="%d"`, e.size)
		}
		fmt.Fprintf(&b, ">%s</%s>\r\n", htmlEscape(e.name), kind)
	}
	b.WriteString("</list>\r\n")
	return b.String()
}

// listingJSON renders autoindex_format json: mtimes in HTTP date format
// whatever autoindex_localtime says, as nginx does.
func listingJSON(entries []dirEntry) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range entries {
		if i > 0 {
			b.WriteByte(',')
		}
		kind := "file"
		if e.dir {
			kind = "directory"
		}
		fmt.Fprintf(&b, "\r\n{ \"name\":\"%s\", \"type\":\"%s\", \"mtime\":\"%s\"", jsonEscape(e.name), kind, e.mtime.UTC().Format(http.TimeFormat))
		if e.dir {
			b.WriteString(" }")
		} else {
			fmt.Fprintf(&b, ", \"size\":%d }", e.size)
		}
	}
	b.WriteString("\r\n]")
	return b.String()
}

// jsonEscape escapes like nginx's ngx_escape_json: '"' and '\' with a
// backslash, control characters as \n, \r, \t, \b, \f or \u00XX.
func jsonEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\f':
			b.WriteString(`\f`)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
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
