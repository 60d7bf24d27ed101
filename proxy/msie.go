package proxy

import (
	"net/http"
	"strings"
)

// What nginx's core module does for two browsers it recognises by their
// User-Agent (ngx_http_process_user_agent): MSIE and Chrome get error
// pages padded past the size under which they show their own "friendly"
// page instead (msie_padding, on by default), and MSIE gets 301 and 302
// redirects as a page that refreshes to the Location (msie_refresh).

// msiePadding is what nginx appends to an error page (status >= 400) for
// MSIE and Chrome.
const msiePadding = "" +
	"<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n" +
	"<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n" +
	"<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n" +
	"<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n" +
	"<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n" +
	"<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n"

// browserOf is nginx's reading of a User-Agent: MSIE ("MSIE " and at least
// three bytes more, not Opera) or Chrome ("Chrome/", neither MSIE, Opera
// nor Gecko).
func browserOf(r *http.Request) (msie, chrome bool) {
	ua := headerFirst(r.Header, "User-Agent")
	if ua == "" || strings.Contains(ua, "Opera") {
		return false, false
	}
	if i := strings.Index(ua, "MSIE "); i >= 0 && i+7 < len(ua) {
		return true, false
	}
	return false, !strings.Contains(ua, "Gecko/") && strings.Contains(ua, "Chrome/")
}

// specialPage is nginx's page for status (nil: none), padded for the
// browsers msie_padding names.
func (rq *request) specialPage(status int) []byte {
	page := errorPage(status, rq.conf.ServerTokens)
	if page == nil || status < 400 || rq.conf.NoMSIEPadding || !rq.r.ProtoAtLeast(1, 0) {
		return page
	}
	if msie, chrome := browserOf(rq.r); msie || chrome {
		page = append(page, msiePadding...)
	}
	return page
}

// msieRefreshes reports whether a redirect with status answers as a
// refresh page (msie_refresh on, an MSIE client, 301 or 302).
func (rq *request) msieRefreshes(status int) bool {
	if !rq.conf.MSIERefresh || status != http.StatusMovedPermanently && status != http.StatusFound {
		return false
	}
	msie, _ := browserOf(rq.r)
	return msie
}

// sendRefresh answers a redirect as nginx's ngx_http_send_refresh: 200, a
// page whose meta refresh names the Location as it was set (not made
// absolute), escaped; no Location, Accept-Ranges, Last-Modified or ETag.
func (rq *request) sendRefresh() {
	h := rq.w.Header()
	loc := headerFirst(h, "Location")
	for _, k := range []string{"Location", "Accept-Ranges", "Last-Modified", "Etag"} {
		delete(h, k)
	}
	rq.absLocation = false
	body := make([]byte, 0, len(refreshHead)+3*len(loc)+len(refreshTail))
	body = append(body, refreshHead...)
	for i := 0; i < len(loc); i++ {
		// nginx's NGX_ESCAPE_REFRESH: controls, space, " ' < > and
		// bytes from 0x7f
		switch c := loc[i]; {
		case c <= ' ' || c >= 0x7f || c == '"' || c == '\'' || c == '<' || c == '>':
			body = append(body, '%', upperHex[c>>4], upperHex[c&15])
		default:
			body = append(body, c)
		}
	}
	body = append(body, refreshTail...)
	rq.send(http.StatusOK, "text/html", body)
}

const (
	refreshHead = `<html><head><meta http-equiv="Refresh" content="0; URL=`
	refreshTail = "\"></head><body></body></html>\r\n"
	upperHex    = "0123456789ABCDEF"
)
