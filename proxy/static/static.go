package static

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Options configure Serve; they are the location's static-file settings.
type Options struct {
	// Autoindex lists a directory whose URI ends in "/" (`autoindex on`).
	Autoindex bool
	// AutoindexFormat is `autoindex_format`: "xml", "json", "jsonp"; any
	// other value (the zero value) is "html".
	AutoindexFormat string
	// AutoindexExactSize prints sizes in bytes (`autoindex_exact_size on`,
	// nginx's default; the zero value rounds to K, M, G).
	AutoindexExactSize bool
	// AutoindexLocaltime shows times in the server's zone rather than UTC
	// (`autoindex_localtime on`; html and xml only).
	AutoindexLocaltime bool
	// UTF8Names says the html listing goes out with charset utf-8 (the
	// charset filter's decision for text/html): names are then cut and
	// padded by characters, not bytes.
	UTF8Names bool
	// Callback is the request's $arg_callback, the jsonp function name
	// ("" sends plain json).
	Callback string
	// MaxRanges is `max_ranges`: a Range asking for more satisfiable
	// ranges is answered with the whole file; 0 turns ranges off (no
	// Accept-Ranges either, as when a filter such as charset recoding into
	// or out of UTF-8 drops the length); negative means no limit.
	MaxRanges int
	// IfModifiedSince is if_modified_since (the zero value: exact).
	IfModifiedSince nginxconf.IMS
	// RangeLastModified and RangeETag, when set, are the values add_header
	// gives Last-Modified and ETag: nginx's range filter runs after the
	// headers filter, so If-Range is compared with them ("" or a bad date:
	// no time to match), while the not-modified filter, before it, uses
	// the file's.
	RangeLastModified, RangeETag *string
	// PartCharset and PartRecode are the charset filter's label and
	// (one-byte) recoding for the file's type: the filter sees a multipart
	// answer as multipart/byteranges, so the parts get them here.
	PartCharset string
	PartRecode  func([]byte) []byte
	// Types maps lower-case extensions to MIME types (`types {}`); nil
	// means BuiltinTypes.
	Types map[string]string
	// DefaultType is used for unknown extensions (`default_type`); ""
	// means "text/plain", nginx's built-in default.
	DefaultType string
	// Status, when not 0, is the status the response goes out with in
	// place of 200 (an error_page's): nginx's not-modified and range
	// filters leave such a response alone, and its header filter drops
	// the Last-Modified of any status but 200, 206 and 304.
	Status int
	// Subrequest: the response is a subrequest's (SSI include, addition,
	// ngx.location.capture), which nginx's not-modified and range filters
	// leave alone: no 304 or 412, no ranges, no Accept-Ranges.
	Subrequest bool
	// Etag adds an ETag header and honours If-None-Match/If-Match
	// (`etag on`, nginx's default; the zero value is off).
	Etag bool
	// Log receives error-log lines (nginx level, message); nil drops them.
	Log func(level ngxlog.Level, msg string)
	// Open, when set, opens the path in place of a plain non-blocking
	// open(2) (disable_symlinks opens through its checks).
	Open func(path string) (*os.File, error)
	// Prefix and Offset, when Prefix is set, make the body Prefix followed
	// by the file from byte Offset on (the flv module's start=N: the FLV
	// header, then the file from N). Length, ETag and ranges are those of
	// that body, as nginx computes them from the answer's length.
	Prefix []byte
	Offset int64
}

func (o *Options) logf(level ngxlog.Level, format string, args ...any) {
	if o != nil && o.Log != nil {
		o.Log(level, fmt.Sprintf(format, args...))
	}
}

// Serve answers r with the file or directory at path, the file-system
// path the caller computed from root/alias and the normalised $uri; uri is
// that $uri (its extension picks the MIME type, its value titles listings).
// Serve opens exactly path and nothing else.
//
// What is written and what is left to the caller:
//
//	200, 206, 304, HEAD     written by Serve (status and body bytes returned)
//	301 (directory without  nothing written; Location is set to uri + "/"
//	     trailing slash)    (plus "?" + query); the caller renders the page
//	403, 404, 412, 416, 500 nothing written (416 sets Content-Range); the
//	                        caller renders nginx's error page for the status
//	StatusDrop              nothing written; the caller closes the connection
//	                        (several ranges past Options.Prefix)
//
// Methods other than GET and HEAD are the caller's business (nginx: 405).
func Serve(w http.ResponseWriter, r *http.Request, path, uri string, o *Options) (status int, bytes int64) {
	if o == nil {
		o = &Options{Etag: true, AutoindexExactSize: true, MaxRanges: -1}
	}
	if strings.IndexByte(path, 0) >= 0 {
		return http.StatusNotFound, 0
	}
	var f *os.File
	var err error
	if o.Open != nil {
		f, err = o.Open(path)
	} else {
		f, err = os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	}
	if err != nil {
		return openError(o, path, err), 0
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		o.logf(ngxlog.Crit, `fstat() "%s" failed (%v)`, path, ngxlog.Errno(err))
		return http.StatusInternalServerError, 0
	}
	return ServeOpened(w, r, f, fi, path, uri, o)
}

// ServeOpened is Serve for a file the caller opened (and checked) at path,
// with fi its fstat: the caller keeps f and closes it.
func ServeOpened(w http.ResponseWriter, r *http.Request, f *os.File, fi fs.FileInfo, path, uri string, o *Options) (status int, bytes int64) {
	if o == nil {
		o = &Options{Etag: true, AutoindexExactSize: true, MaxRanges: -1}
	}
	if fi.IsDir() {
		if !strings.HasSuffix(uri, "/") {
			loc := uri + "/"
			if r.URL.RawQuery != "" {
				loc += "?" + r.URL.RawQuery
			}
			w.Header().Set("Location", loc)
			return http.StatusMovedPermanently, 0
		}
		if !o.Autoindex {
			o.logf(ngxlog.Err, `directory index of "%s" is forbidden`, path)
			return http.StatusForbidden, 0
		}
		return autoindex(w, r, f, path, uri, o)
	}
	if !fi.Mode().IsRegular() {
		o.logf(ngxlog.Crit, `"%s" is not a regular file`, path)
		return http.StatusNotFound, 0
	}
	return serveFile(w, r, f, fi, uri, o)
}

// openError maps an open(2) failure to nginx's status and log line.
func openError(o *Options, path string, err error) int {
	var errno syscall.Errno
	errors.As(err, &errno)
	switch errno {
	case syscall.ENOENT, syscall.ENOTDIR, syscall.ENAMETOOLONG:
		o.logf(ngxlog.Err, `open() "%s" failed (%v)`, path, ngxlog.Errno(err))
		return http.StatusNotFound
	case syscall.EACCES, syscall.ELOOP, syscall.EMLINK:
		// ELOOP, EMLINK: a symlink where disable_symlinks forbids one
		o.logf(ngxlog.Err, `open() "%s" failed (%v)`, path, ngxlog.Errno(err))
		return http.StatusForbidden
	}
	o.logf(ngxlog.Crit, `open() "%s" failed (%v)`, path, ngxlog.Errno(err))
	return http.StatusInternalServerError
}

// ContentType returns the MIME type for uri's extension (the part after
// the last "." of the last segment, compared in lower case).
func ContentType(uri string, o *Options) string {
	types := BuiltinTypes
	def := "text/plain"
	if o != nil {
		if o.Types != nil {
			types = o.Types
		}
		if o.DefaultType != "" {
			def = o.DefaultType
		}
	}
	seg := uri[strings.LastIndexByte(uri, '/')+1:]
	if i := strings.LastIndexByte(seg, '.'); i >= 0 {
		if t, ok := types[strings.ToLower(seg[i+1:])]; ok {
			return t
		}
	}
	return def
}

// ETag returns nginx's entity tag for a file: "<mtime hex>-<size hex>".
func ETag(fi fs.FileInfo) string {
	return fmt.Sprintf(`"%x-%x"`, fi.ModTime().Unix(), fi.Size())
}

func serveFile(w http.ResponseWriter, r *http.Request, f *os.File, fi fs.FileInfo, uri string, o *Options) (int, int64) {
	size := fi.Size()
	mtime := fi.ModTime().Unix()
	var body io.ReaderAt = f
	if o.Prefix != nil && o.Offset < size {
		body = prefixed{o.Prefix, f, o.Offset}
		size = int64(len(o.Prefix)) + size - o.Offset
	}
	etag := ""
	if o.Etag {
		etag = fmt.Sprintf(`"%x-%x"`, mtime, size)
	}
	h := w.Header()
	plain := (o.Status == 0 || o.Status == http.StatusOK) && !o.Subrequest
	maxRanges := o.MaxRanges
	if !plain {
		maxRanges = 0
	}
	lastModified := o.Status == 0 || o.Status == http.StatusOK ||
		o.Status == http.StatusPartialContent || o.Status == http.StatusNotModified
	if plain {
		if st := Preconditions(r, mtime, etag, o.IfModifiedSince); st != 0 {
			if st == http.StatusNotModified {
				h.Set("Last-Modified", fi.ModTime().UTC().Format(http.TimeFormat))
				if etag != "" {
					h.Set("ETag", etag)
				}
				w.WriteHeader(st)
			}
			return st, 0
		}
	}
	ctype := ContentType(uri, o)
	h.Set("Content-Type", ctype)
	if lastModified {
		h.Set("Last-Modified", fi.ModTime().UTC().Format(http.TimeFormat))
	}
	if etag != "" {
		h.Set("ETag", etag)
	}
	var ranges []byteRange
	st := 0
	if maxRanges != 0 {
		rmtime, retag := mtime, etag
		if v := o.RangeLastModified; v != nil {
			rmtime = -1
			if t, err := http.ParseTime(*v); err == nil {
				rmtime = t.Unix()
			}
		}
		if v := o.RangeETag; v != nil {
			retag = *v
		}
		ranges, st = parseRange(r, size, rmtime, retag, maxRanges)
	}
	switch {
	case st == http.StatusRequestedRangeNotSatisfiable:
		h.Del("Content-Type")
		h.Del("Last-Modified")
		h.Del("ETag")
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		return st, 0
	case len(ranges) == 1:
		rg := ranges[0]
		h.Set("Content-Length", strconv.FormatInt(rg.end-rg.start, 10))
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rg.start, rg.end-1, size))
		w.WriteHeader(http.StatusPartialContent)
		if r.Method == http.MethodHead {
			return http.StatusPartialContent, 0
		}
		n, _ := io.Copy(w, io.NewSectionReader(body, rg.start, rg.end-rg.start))
		return http.StatusPartialContent, n
	case len(ranges) > 1 && body != io.ReaderAt(f) && r.Method != http.MethodHead && beyond(ranges, int64(len(o.Prefix))):
		// nginx's range filter cuts several ranges out of one buffer only:
		// the header's; it fails the request, before anything goes out,
		// when a range reaches into the file
		o.logf(ngxlog.Alert, "range in overlapped buffers")
		boundary.Add(1) // its header filter had taken a boundary
		return StatusDrop, 0
	case len(ranges) > 1:
		if o.PartCharset != "" {
			ctype += "; charset=" + o.PartCharset
		}
		return serveMultipart(w, r, body, ranges, size, ctype, o.PartRecode)
	}
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	if maxRanges != 0 {
		h.Set("Accept-Ranges", "bytes")
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return http.StatusOK, 0
	}
	var src io.Reader = io.LimitReader(f, size)
	if body != io.ReaderAt(f) {
		src = io.NewSectionReader(body, 0, size)
	}
	n, _ := io.Copy(w, src)
	return http.StatusOK, n
}

// Preconditions applies nginx's not-modified filter: 412 for a failed
// If-Unmodified-Since or If-Match, 304 when If-Modified-Since equals the
// mtime (if_modified_since exact; before: is at or after it; off: never)
// and/or If-None-Match matches; 0 to go on.
func Preconditions(r *http.Request, mtime int64, etag string, ims nginxconf.IMS) int {
	if v := r.Header.Get("If-Unmodified-Since"); v != "" {
		t, err := http.ParseTime(v)
		if err != nil || t.Unix() < mtime {
			return http.StatusPreconditionFailed
		}
	}
	if v := r.Header.Get("If-Match"); v != "" && !etagMatch(v, etag, false) {
		return http.StatusPreconditionFailed
	}
	since := r.Header.Get("If-Modified-Since")
	inm := r.Header.Get("If-None-Match")
	if since == "" && inm == "" {
		return 0
	}
	if since != "" {
		if mtime == -1 || ims == nginxconf.IMSOff {
			return 0
		}
		t, err := http.ParseTime(since)
		if err != nil || t.Unix() != mtime && (ims == nginxconf.IMSExact || t.Unix() < mtime) {
			return 0
		}
	}
	if inm != "" && !etagMatch(inm, etag, true) {
		return 0
	}
	return http.StatusNotModified
}

// etagMatch reports whether the list header matches etag; weak comparison
// ignores "W/" prefixes. "*" matches even without an ETag (etag off); any
// other list then fails, as in nginx.
func etagMatch(list, etag string, weak bool) bool {
	if strings.TrimSpace(list) == "*" {
		return true
	}
	if etag == "" {
		return false
	}
	if weak {
		etag = strings.TrimPrefix(etag, "W/")
	}
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if weak {
			t = strings.TrimPrefix(t, "W/")
		}
		if t == etag {
			return true
		}
	}
	return false
}

type byteRange struct{ start, end int64 } // [start, end)

// parseRange applies nginx's range filter: nil ranges and status 0 mean
// "send the whole file" (no or foreign Range, If-Range mismatch, ranges
// adding up to more than the file, more than max satisfiable ranges when max
// is positive); 416 when no range is satisfiable.
func parseRange(r *http.Request, size, mtime int64, etag string, max int) ([]byteRange, int) {
	v := r.Header.Get("Range")
	if len(v) < 6 || !strings.EqualFold(v[:6], "bytes=") {
		return nil, 0
	}
	if ir := r.Header.Get("If-Range"); ir != "" {
		if len(ir) >= 2 && ir[len(ir)-1] == '"' {
			if ir != etag {
				return nil, 0
			}
		} else if t, err := http.ParseTime(ir); err != nil || t.Unix() != mtime {
			return nil, 0
		}
	}
	p := v[6:]
	i := 0
	skip := func() {
		for i < len(p) && p[i] == ' ' {
			i++
		}
	}
	num := func() (int64, bool) {
		if i >= len(p) || p[i] < '0' || p[i] > '9' {
			return 0, false
		}
		var n int64
		for i < len(p) && p[i] >= '0' && p[i] <= '9' {
			if n > (1<<62)/10 {
				return 0, false
			}
			n = n*10 + int64(p[i]-'0')
			i++
		}
		return n, true
	}
	var ranges []byteRange
	var total int64
	for {
		var start, end int64
		suffix := false
		skip()
		if i < len(p) && p[i] == '-' {
			suffix = true
			i++
		} else {
			var ok bool
			if start, ok = num(); !ok {
				return nil, http.StatusRequestedRangeNotSatisfiable
			}
			skip()
			if i >= len(p) || p[i] != '-' {
				return nil, http.StatusRequestedRangeNotSatisfiable
			}
			i++
			skip()
			if i == len(p) || p[i] == ',' {
				end = size
				goto found
			}
		}
		{
			var ok bool
			if end, ok = num(); !ok {
				return nil, http.StatusRequestedRangeNotSatisfiable
			}
		}
		skip()
		if i < len(p) && p[i] != ',' {
			return nil, http.StatusRequestedRangeNotSatisfiable
		}
		if suffix {
			start = 0
			if end < size {
				start = size - end
			}
			end = size - 1
		}
		if end >= size {
			end = size
		} else {
			end++
		}
	found:
		if start < end {
			if max > 0 && len(ranges) == max {
				return nil, 0
			}
			ranges = append(ranges, byteRange{start, end})
			total += end - start
		} else if start == 0 {
			return nil, 0
		}
		if i >= len(p) || p[i] != ',' {
			break
		}
		i++
	}
	if len(ranges) == 0 {
		return nil, http.StatusRequestedRangeNotSatisfiable
	}
	if total > size {
		return nil, 0
	}
	return ranges, 0
}

// SingleRange is nginx's range filter for a response of size bytes that
// is sent in one range at most (r->single_range: proxy_force_ranges):
// status 206 with [start, end) to send, 416 when no range is satisfiable,
// 0 when the response goes whole (no or foreign Range, an If-Range that
// does not match mtime (-1: none) or etag, more than one range). The
// Range header is the caller's to look for first.
func SingleRange(r *http.Request, size, mtime int64, etag string) (start, end int64, status int) {
	ranges, st := parseRange(r, size, mtime, etag, 1)
	if len(ranges) == 1 {
		return ranges[0].start, ranges[0].end, http.StatusPartialContent
	}
	return 0, 0, st
}

// boundary numbers multipart responses like nginx: a 20-digit counter.
var boundary atomic.Uint64

func serveMultipart(w http.ResponseWriter, r *http.Request, f io.ReaderAt, ranges []byteRange, size int64, ctype string, recode func([]byte) []byte) (int, int64) {
	b := fmt.Sprintf("%020d", boundary.Add(1))
	heads := make([]string, len(ranges))
	length := int64(0)
	for k, rg := range ranges {
		heads[k] = fmt.Sprintf("\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes %d-%d/%d\r\n\r\n", b, ctype, rg.start, rg.end-1, size)
		length += int64(len(heads[k])) + rg.end - rg.start
	}
	tail := "\r\n--" + b + "--\r\n"
	length += int64(len(tail))
	h := w.Header()
	h.Set("Content-Type", "multipart/byteranges; boundary="+b)
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(http.StatusPartialContent)
	if r.Method == http.MethodHead {
		return http.StatusPartialContent, 0
	}
	var n int64
	for k, rg := range ranges {
		m, err := io.WriteString(w, heads[k])
		n += int64(m)
		if err != nil {
			return http.StatusPartialContent, n
		}
		var dst io.Writer = w
		if recode != nil {
			dst = recodeWriter{w, recode}
		}
		c, err := io.Copy(dst, io.NewSectionReader(f, rg.start, rg.end-rg.start))
		n += c
		if err != nil {
			return http.StatusPartialContent, n
		}
	}
	m, _ := io.WriteString(w, tail)
	return http.StatusPartialContent, n + int64(m)
}

// StatusDrop is the status Serve returns when nginx would close the
// connection without an answer: nothing was written, the caller closes it.
const StatusDrop = -1

// beyond reports whether a range ends past n.
func beyond(ranges []byteRange, n int64) bool {
	for _, rg := range ranges {
		if rg.end > n {
			return true
		}
	}
	return false
}

// prefixed reads as head followed by f from byte off on.
type prefixed struct {
	head []byte
	f    io.ReaderAt
	off  int64
}

func (p prefixed) ReadAt(b []byte, at int64) (int, error) {
	n := 0
	if h := int64(len(p.head)); at < h {
		n = copy(b, p.head[at:])
		at = h
	}
	if n == len(b) {
		return n, nil
	}
	m, err := p.f.ReadAt(b[n:], p.off+at-int64(len(p.head)))
	return n + m, err
}

// recodeWriter writes p through a length-preserving recoding.
type recodeWriter struct {
	w      io.Writer
	recode func([]byte) []byte
}

func (rw recodeWriter) Write(p []byte) (int, error) { return rw.w.Write(rw.recode(p)) }
