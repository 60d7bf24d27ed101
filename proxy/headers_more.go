package proxy

import (
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"ngxsockify/luahooks"
	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
)

// headersMoreModule is OpenResty's headers-more module. Its header filter
// (more_set_headers, more_clear_headers) is, in Debian's nginx loading
// the module after lua-nginx-module, the top of the chain: it runs before
// every other module's filter (the charset, add_header, expires, gzip and
// Lua header filters see what it did, and may add to it again), for every
// response whoever answers (error pages and redirects included). Its
// input handler (more_set_input_headers, more_clear_input_headers) runs
// at the end of the rewrite phase, after the rewrite module's statements
// (which see the request's headers as received) and before
// rewrite_by_lua, for HTTP/1.0 requests and later.
var headersMoreModule = module{
	name: "headers_more",
	register: func(e *engine) {
		e.addHeaderFilter(moreOutputFilter)
		e.add(phaseRewrite, moreInputHandler)
	},
}

// moreOutputFilter runs the level's output commands in order.
func moreOutputFilter(rq *request, code int) int {
	if !rq.conf.MoreOutput {
		return code
	}
	h := rq.w.Header()
	status := code
	if code == http.StatusPartialContent && (rq.v.UpstreamStatus == 0 || rq.v.UpstreamStatus == http.StatusOK) {
		// nginx's range filter answers 206 after this filter saw the 200
		// ($status too)
		status = http.StatusOK
		rq.v.Status = status
		defer func() { rq.v.Status = code }()
	}
	for _, cmd := range rq.conf.MoreHeaders {
		if !moreApplies(cmd, responseType(h), status) {
			continue
		}
		for i := range cmd.Headers {
			mh := &cmd.Headers[i]
			v := moreValue(mh, rq.v)
			if v != "" && !mh.Wildcard && !moreLength(mh.Name, v) {
				// the module's NGX_ERROR: nginx sends nothing and closes
				rq.closeConn()
				rq.w.discard = true
				return code
			}
			rq.moreSetOutput(h, mh, v)
		}
	}
	return code
}

// moreLength reports whether v is a value the module takes for header
// name: a Content-Length must be a decimal number (nginx's ngx_atosz).
func moreLength(name, v string) bool {
	if !strings.EqualFold(name, "Content-Length") {
		return true
	}
	_, err := strconv.ParseInt(v, 10, 64)
	return err == nil && v[0] >= '0' && v[0] <= '9'
}

// moreApplies reports whether cmd, an output command, changes a response of
// type ctype and status.
func moreApplies(cmd *nginxconf.MoreCmd, ctype string, status int) bool {
	return !cmd.Input && len(cmd.Headers) > 0 &&
		(cmd.Types == nil || slices.Contains(cmd.Types, ctype)) &&
		(cmd.Statuses == nil || slices.Contains(cmd.Statuses, status))
}

// moreNoRanges reports whether the output commands clear Accept-Ranges
// from a 200 of type ctype: nginx then serves no ranges of it (the module
// turns r->allow_ranges off before the range filter runs).
func (rq *request) moreNoRanges(ctype string) bool {
	if !rq.conf.MoreOutput {
		return false
	}
	ctype = withoutCharset(ctype)
	for _, cmd := range rq.conf.MoreHeaders {
		if !moreApplies(cmd, ctype, http.StatusOK) {
			continue
		}
		for i := range cmd.Headers {
			mh := &cmd.Headers[i]
			if !mh.Wildcard && strings.EqualFold(mh.Name, "Accept-Ranges") && moreValue(mh, rq.v) == "" {
				return true
			}
		}
	}
	return false
}

func moreValue(mh *nginxconf.MoreHeader, v *vars.Request) string {
	if mh.Value == nil {
		return ""
	}
	return mh.Value.Eval(v)
}

// responseType is the response's type as -t compares it: nginx's
// content_type up to content_type_len, the value without a "; charset="
// parameter (and what follows it); other parameters stay.
func responseType(h http.Header) string { return withoutCharset(headerFirst(h, "Content-Type")) }

// withoutCharset is a Content-Type value without its "; charset="
// parameter and what follows it.
func withoutCharset(v string) string {
	if i := charsetParam(v); i >= 0 {
		return v[:i]
	}
	return v
}

// charsetParam is the index of the ";" that starts a charset parameter in
// a Content-Type value (spaces may follow the ";"), or -1.
func charsetParam(v string) int {
	for i := 0; i < len(v); i++ {
		if v[i] != ';' {
			continue
		}
		j := i + 1
		for j < len(v) && v[j] == ' ' {
			j++
		}
		if j == len(v) {
			return -1
		}
		if len(v)-j >= 8 && strings.EqualFold(v[j:j+8], "charset=") {
			return i
		}
	}
	return -1
}

// moreOutBuiltin are the response headers nginx keeps outside its list
// (r->headers_out fields) that the module handles as such: a value
// replaces theirs and takes the name as written; a clear removes them,
// also where nginx would add its own later (Server, Date).
var moreOutBuiltin = map[string]bool{
	"Server": true, "Date": true, "Content-Encoding": true, "Location": true, "Refresh": true,
	"Last-Modified": true, "Content-Range": true, "Accept-Ranges": true, "Www-Authenticate": true,
	"Expires": true, "E-Tag": true, "Content-Length": true,
}

// listEntry: a value the module sets for key is an entry of nginx's list
// even where nginx has one of its own, which its header filter writes in
// a place of its own (http1's fixed headers but Content-Type).
func listEntry(key string) bool {
	switch key {
	case "Server", "Date", "Content-Length", "Last-Modified", "Location":
		return true
	}
	return false
}

// moreSetOutput applies one header of an output command: v empty clears.
func (rq *request) moreSetOutput(h http.Header, mh *nginxconf.MoreHeader, v string) {
	if mh.Wildcard {
		moreWildcard(h, mh.Prefix, v, rq.staticFields)
		return
	}
	key := textproto.CanonicalMIMEHeaderKey(mh.Name)
	if key == "E-Tag" && len(h["Etag"]) > 0 {
		// the module's table names nginx's ETag field "E-Tag": the
		// response's ETag takes the value and that name, or goes
		if delete(h, "Etag"); v != "" {
			h["Etag"] = []string{v}
			rq.w.spell = append(rq.w.spell, spelling{mh.Name, "Etag"})
		}
		return
	}
	switch {
	case key == "Content-Type":
		// nginx's content_type: no header of the list; a clear sends none
		dropOtherSpellings(h, key)
		if v == "" {
			h[key] = nil
		} else {
			h[key] = []string{v}
		}
		return
	case key == "Cache-Control":
		// nginx 1.22 keeps its values in a list: the first takes the
		// value (under its name as it was), the others go; with none,
		// one is added, even empty
		had := ""
		for k, vs := range h {
			if len(vs) > 0 && (k == key || had == "" && strings.EqualFold(k, key)) {
				had = k
			}
		}
		switch {
		case had != "" && v == "":
			dropOtherSpellings(h, key)
			delete(h, key)
		case had != "":
			for k := range h {
				if k != had && strings.EqualFold(k, key) {
					delete(h, k)
				}
			}
			h[had] = []string{v}
		default:
			dropOtherSpellings(h, key)
			rq.w.note(key)
			h[key] = []string{v}
			rq.respellAs(key, mh.Name)
		}
		return
	case moreOutBuiltin[key]:
		dropOtherSpellings(h, key)
		if v == "" {
			if key == "Server" || key == "Date" {
				h[key] = nil // nginx's own is not added either
			} else {
				delete(h, key)
			}
			return
		}
		if _, had := h[key]; !had || listEntry(key) {
			// nginx's own value (Server, a static file's length or
			// time...) is no entry of its list: the module's is one,
			// last (made absolute, a Location goes back to its place:
			// outputHeaders)
			rq.w.note(key)
		}
		h[key] = []string{v}
		rq.respellAs(key, mh.Name)
		if key == "Location" && strings.HasPrefix(v, "/") && !rq.subrequest {
			// nginx's header filter makes it absolute, whatever the status
			rq.absLocation = rq.conf.AbsoluteRedirect
		}
		return
	}
	// a header of the list: the first one of the name takes the value,
	// the others go; none: a value adds one, as written
	found := false
	for k := range h {
		if k == key || strings.EqualFold(k, mh.Name) {
			if len(h[k]) > 0 {
				found = true
			}
			if v == "" || k != key {
				delete(h, k)
			}
		}
	}
	if v == "" {
		return
	}
	if !found {
		rq.w.note(key)
		rq.respellAs(key, mh.Name)
	}
	h[key] = []string{v}
}

// moreWildcard applies a "Prefix*" header: every name that starts with
// prefix (without case) is cleared, or, with a value, the first of them
// (in name order) takes it and the others are cleared; nothing is added.
func moreWildcard(h http.Header, prefix, v string, staticFields bool) {
	// (nginx's own Server, the type and the length are not in the list,
	// nor a static file's Last-Modified and Accept-Ranges)
	var keys []string
	for k, vs := range h {
		if len(vs) == 0 || !moreInList(k, vs) || staticFields && (k == "Last-Modified" || k == "Accept-Ranges") {
			continue
		}
		if len(k) >= len(prefix) && strings.EqualFold(k[:len(prefix)], prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for i, k := range keys {
		if v != "" && i == 0 {
			h[k] = []string{v}
			continue
		}
		delete(h, k)
	}
}

// moreInList reports whether a response header is one of nginx's header
// list, which a wildcard searches, rather than one it writes from its own
// fields: its own Server, the type and the length.
func moreInList(k string, vs []string) bool {
	switch k {
	case "Content-Type", "Content-Length":
		return false
	case "Server":
		return &vs[0] != &serverValue[0]
	}
	return true
}

// dropOtherSpellings removes the values kept under a name spelled other
// than key (a Lua hook's), which the module would have found too.
func dropOtherSpellings(h http.Header, key string) {
	for k := range h {
		if k != key && strings.EqualFold(k, key) {
			delete(h, k)
		}
	}
}

// respellAs sends key under name when they differ (the module's headers
// go out as written).
func (rq *request) respellAs(key, name string) {
	if name == key {
		return
	}
	for _, sp := range rq.w.spell {
		if sp.key == key {
			return
		}
	}
	rq.w.spell = append(rq.w.spell, spelling{name, key})
}

// moreInputHandler runs the level's input commands (the module's rewrite
// phase handler). A Host value that is not a valid host, or a
// Content-Length that is not a number, closes the connection without a
// reply, as the module's error does.
func moreInputHandler(rq *request) rc {
	if !rq.conf.MoreInput || rq.r.Proto == "HTTP/0.9" {
		return rcDeclined
	}
	for _, cmd := range rq.conf.MoreHeaders {
		if !cmd.Input || len(cmd.Headers) == 0 {
			continue
		}
		if cmd.Types != nil {
			ct := headerFirst(rq.r.Header, "Content-Type")
			if ct == "" || !slices.Contains(cmd.Types, ct) {
				continue
			}
		}
		for i := range cmd.Headers {
			mh := &cmd.Headers[i]
			if !rq.moreSetInput(mh, moreValue(mh, rq.v), cmd.Replace) {
				// the module's NGX_ERROR: nginx closes the connection
				rq.closeConn()
				return rcDone
			}
		}
	}
	return rcDeclined
}

// moreSetInput applies one header of an input command to the request: v
// empty clears; replace sets only a header the request has. It reports
// false for a Host or Content-Length value nginx refuses.
func (rq *request) moreSetInput(mh *nginxconf.MoreHeader, v string, replace bool) bool {
	r := rq.r
	if r.Header == nil {
		r.Header = http.Header{}
	}
	if mh.Wildcard && v == "" {
		for k := range r.Header {
			if len(k) >= len(mh.Prefix) && strings.EqualFold(k[:len(mh.Prefix)], mh.Prefix) {
				delete(r.Header, k)
			}
		}
		// (Host stays: nginx's $host and $http_host read its own fields)
		return true
	}
	if !moreLength(mh.Name, v) && v != "" && !mh.Wildcard {
		return false
	}
	key := textproto.CanonicalMIMEHeaderKey(mh.Name)
	if mh.Wildcard {
		// a value for a wildcard matches nothing: the name, "*" and all,
		// is added (the module's way)
		key = mh.Name
	}
	if key == "Host" {
		if v != "" {
			if _, ok := vars.ValidateHost(v); !ok {
				return false
			}
		}
		if r.Host == "" && (v == "" || replace) {
			return true
		}
		r.Host = v
		return true
	}
	had := false
	for k, vs := range r.Header {
		if k == key || strings.EqualFold(k, key) {
			had = had || len(vs) > 0
		}
	}
	if v != "" && !had && replace {
		return true
	}
	// nginx's header list: the value replaces the name's first line in
	// place, or goes at the end spelled as the command wrote it
	var vals []string
	if v != "" {
		vals = []string{v}
	}
	rq.inputOrder().Set(r.Header, key, mh.Name, vals)
	for k := range r.Header {
		if k == key || strings.EqualFold(k, key) {
			delete(r.Header, k)
		}
	}
	if v != "" {
		r.Header[key] = vals
	}
	return true
}

// inputOrder is where a change of the request's headers is recorded in
// nginx's header list order (proxyFields sends it): Lua's, or the
// request's own from now on.
func (rq *request) inputOrder() *luahooks.HeaderOrder {
	if rq.lua != nil {
		if rq.lua.HeaderOrder == nil {
			rq.lua.HeaderOrder = &luahooks.HeaderOrder{}
		}
		return rq.lua.HeaderOrder
	}
	if !rq.snapped {
		rq.order, rq.snapped = rq.headerOrder().Clone(), true
		if rq.order == nil {
			rq.order = &luahooks.HeaderOrder{}
		}
	}
	return rq.order
}

// more101 runs the output commands, for a 101, on the headers
// websockify_pass copies into its 101 (w.Header()), its Server (server,
// "" for none) among them, and returns the Server the 101 then writes
// itself: none, the commands' or ours being in w.Header() now. nginx
// runs its header filters on every response; websockify_pass has no
// nginx counterpart, so this follows what nginx does for an upgraded
// proxy_pass.
func (rq *request) more101(server string) string {
	h := rq.w.Header()
	if _, set := h["Server"]; !set && server != "" {
		h["Server"] = serverValue[:1:1]
	}
	moreOutputFilter(rq, http.StatusSwitchingProtocols)
	return ""
}

// moreField is one line of a header list the output commands run on
// outside the filter chain (moreUpgradeHead).
type moreField struct{ name, value string }

// moreUpgradeFields runs the output commands on the header lines of an
// upgraded proxy_pass's 101: proxyUpgrade writes that head itself, not
// through the filter chain, but nginx's filter runs on it too. fields are
// the backend's lines that go out; it returns them changed, and whether
// our own Server (server: under server_tokens) and Date still go out: not
// once a command names them.
func (rq *request) moreUpgradeFields(fields []moreField, server bool) ([]moreField, bool, bool) {
	date := true
	ctype := ""
	for _, f := range fields {
		if strings.EqualFold(f.name, "Content-Type") {
			ctype = withoutCharset(f.value)
			break
		}
	}
	for _, cmd := range rq.conf.MoreHeaders {
		if !moreApplies(cmd, ctype, http.StatusSwitchingProtocols) {
			continue
		}
		for i := range cmd.Headers {
			mh := &cmd.Headers[i]
			v := moreValue(mh, rq.v)
			if !mh.Wildcard {
				switch textproto.CanonicalMIMEHeaderKey(mh.Name) {
				case "Server":
					server = false
				case "Date":
					date = false
				}
			}
			fields = moreListSet(fields, mh, v)
		}
	}
	return fields, server, date
}

// moreListSet applies one header of an output command to a header list:
// the first line of the name (or, for a wildcard, of a name with the
// prefix) takes v, the others go; v empty removes them all; a name the
// list lacks is added with v (Cache-Control even empty), a wildcard never.
func moreListSet(list []moreField, mh *nginxconf.MoreHeader, v string) []moreField {
	out := list[:0:0]
	matched := false
	for _, f := range list {
		var match bool
		if mh.Wildcard {
			match = len(f.name) >= len(mh.Prefix) && strings.EqualFold(f.name[:len(mh.Prefix)], mh.Prefix)
		} else {
			match = strings.EqualFold(f.name, mh.Name)
		}
		switch {
		case !match:
			out = append(out, f)
		case v == "" || matched:
			matched = true
		default:
			matched = true
			out = append(out, moreField{f.name, v})
		}
	}
	if !matched && !mh.Wildcard && (v != "" || strings.EqualFold(mh.Name, "Cache-Control")) {
		out = append(out, moreField{mh.Name, v})
	}
	return out
}
