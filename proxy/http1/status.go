package http1

import (
	"strconv"
	"sync/atomic"
	"time"
)

// reasons are the reason phrases of nginx's status lines; a status not
// here is sent as "NNN " (code and a space), as nginx does.
var reasons = map[int]string{
	200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 206: "Partial Content",
	301: "Moved Permanently", 302: "Moved Temporarily", 303: "See Other", 304: "Not Modified",
	307: "Temporary Redirect", 308: "Permanent Redirect",
	400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
	404: "Not Found", 405: "Not Allowed", 406: "Not Acceptable", 408: "Request Time-out",
	409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed",
	413: "Request Entity Too Large", 414: "Request-URI Too Large", 415: "Unsupported Media Type",
	416: "Requested Range Not Satisfiable", 421: "Misdirected Request", 429: "Too Many Requests",
	500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
	503: "Service Temporarily Unavailable", 504: "Gateway Time-out", 505: "HTTP Version Not Supported",
	507: "Insufficient Storage",
	101: "Switching Protocols",
}

// StatusLine is the status line after "HTTP/1.1 ": "404 Not Found", or
// "299 " for a status nginx has no phrase for.
func StatusLine(code int) string {
	if code >= 100 && code < 100+len(statusLines) {
		return statusLines[code-100]
	}
	return statusLine(code)
}

// statusLines are the status lines of 100 to 599, built once.
var statusLines = func() (lines [500]string) {
	for i := range lines {
		lines[i] = statusLine(100 + i)
	}
	return lines
}()

func statusLine(code int) string {
	if r, ok := reasons[code]; ok {
		return strconv.Itoa(code) + " " + r
	}
	s := strconv.Itoa(code)
	for len(s) < 3 {
		s = "0" + s
	}
	return s + " "
}

// dateCache holds the Date header of the current second.
var dateCache atomic.Pointer[date]

type date struct {
	// until is when the second ends, by the monotonic clock; the wall
	// clock is read again then
	until  mono
	values []string // {value}, for a header
}

// dateValues is the Date header's values at now: one slice shared by the
// responses of the second (of capacity 1, so that an append copies it).
func dateValues(now mono) []string {
	if d := dateCache.Load(); d != nil && now < d.until {
		return d.values
	}
	wall := time.Now()
	v := wall.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")
	// the second ends at most that far from now, which was read first
	left := time.Second - time.Duration(wall.Nanosecond())
	d := &date{now + mono(left), []string{v}}
	dateCache.Store(d)
	return d.values
}
