package proxy

import "strings"

// charsetModule is nginx's ngx_http_charset_filter_module, reduced to what
// we support: `charset` adds "; charset=..." to the text types.
var charsetModule = module{
	name: "charset",
	register: func(e *engine) {
		e.addHeaderFilter(addCharset)
	},
}

func addCharset(rq *request, code int) int {
	cs := rq.conf.Charset
	if cs == "" {
		return code
	}
	h := rq.w.Header()
	if ct := h.Get("Content-Type"); ct != "" && !strings.Contains(ct, ";") && charsetTypes[ct] {
		h.Set("Content-Type", ct+"; charset="+cs)
	}
	return code
}

// charsetTypes is nginx's default charset_types: the types `charset` adds
// itself to.
var charsetTypes = map[string]bool{
	"text/html": true, "text/xml": true, "text/plain": true, "text/vnd.wap.wml": true,
	"application/javascript": true, "application/rss+xml": true,
}
