package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"ngxsockify/proxy/static"
)

// forceRanges is nginx's range filter over a backend's 200 under
// proxy_force_ranges on (r->allow_ranges and r->single_range, set by the
// upstream module): the backend's Accept-Ranges is not passed; a Range of
// one satisfiable range (If-Range matching the response's Last-Modified or
// ETag) answers 206 with that part of the body, one that none satisfies
// 416; otherwise the whole body goes, with "Accept-Ranges: bytes". It
// returns the status to send, and whether the request was answered (416).
// A range of a response of unknown length, of a subrequest's, or where
// max_ranges is 0 is not served, nor one of a response that gets
// add_before_body or add_after_body (the addition filter comes first), or
// that the gzip filter will compress (it clears the ranges).
func (rq *request) forceRanges(status int, length int64) (int, bool) {
	h := rq.w.Header()
	delete(h, "Accept-Ranges")
	if status != http.StatusOK || length < 0 || rq.subrequest || rq.conf.MaxRanges == 0 || !rq.r.ProtoAtLeast(1, 0) ||
		rq.additionApplies(h.Get("Content-Type")) || rq.gzipWillHeaders(status, h) {
		return status, false
	}
	if v := headerFirst(rq.r.Header, "Range"); len(v) < 7 || !strings.EqualFold(v[:6], "bytes=") {
		h["Accept-Ranges"] = acceptRangesBytes[:1:1]
		return status, false
	}
	mtime := int64(-1)
	if t, err := time.Parse(http.TimeFormat, headerFirst(h, "Last-Modified")); err == nil {
		mtime = t.Unix()
	}
	start, end, st := static.SingleRange(rq.r, length, mtime, headerFirst(h, "Etag"))
	switch st {
	case http.StatusPartialContent:
		h.Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end-1, 10)+"/"+strconv.FormatInt(length, 10))
		h.Set("Content-Length", strconv.FormatInt(end-start, 10))
		off := int64(0)
		rq.w.body = func(p []byte) []byte {
			from, to := max(start-off, 0), min(end-off, int64(len(p)))
			off += int64(len(p))
			if from >= to {
				return nil
			}
			return p[from:to]
		}
		return st, false
	case http.StatusRequestedRangeNotSatisfiable:
		// the backend's other headers stay, as nginx's special response
		// keeps them
		delete(h, "Last-Modified")
		delete(h, "Etag")
		h.Set("Content-Range", "bytes */"+strconv.FormatInt(length, 10))
		rq.finalize(st)
		return st, true
	}
	h["Accept-Ranges"] = acceptRangesBytes[:1:1]
	return status, false
}

// acceptRangesBytes is the Accept-Ranges value, shared by every response
// (an append copies it).
var acceptRangesBytes = []string{"bytes"}
