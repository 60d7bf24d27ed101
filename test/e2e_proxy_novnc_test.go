package test

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestNoVNCThroughProxyPass is "nginx in front of websockify": Debian's
// noVNC in headless chromium, served by fcwu's desktop site from the corpus
// (see TestProxyCorpusFcwu), whose "location @apiwebsocket" proxy_passes
// the WebSocket upgrade to Debian's Python websockify, which relays to a
// real Xvnc painted desktopColour. It runs on nginx too, so a failure that
// nginx shares is the test's, not ngxsockify's. Each page must connect and
// show the desktop, and closing its tab must end the connection to Xvnc
// (the close travels through the proxied upgrade to websockify).
func TestNoVNCThroughProxyPass(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end browser test skipped in -short mode")
	}
	requireNgxsockify(t)
	frontend := newFcwuFrontend(t)
	display, xvnc := startXvnc(t)
	vncPort := 5900 + display
	ws := startWebsockifyAt(t, vncPort)
	app := startProxyBackend(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*e2eTimeout)
	defer cancel()
	root := newBrowser(t, ctx)
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	for _, kind := range []string{"ngxsockify", "nginx"} { // nginx's run skips without nginx
		t.Run(kind, func(t *testing.T) {
			front := startFcwu(t, kind, frontend, app.addr(), ws.Addr)
			for _, sc := range []novncScenario{
				// vnc_lite.html connects to "websockify" beside the page:
				// /static/novnc/websockify matches the site's regex location
				{name: "lite", page: "/static/novnc/vnc_lite.html", connect: true},
				{name: "full client", page: "/static/novnc/vnc.html?autoconnect=1&path=websockify", connect: true, full: true},
			} {
				t.Run(sc.name, func(t *testing.T) {
					runNoVNCScenario(t, root, front, xvnc, vncPort, sc)
				})
			}
		})
	}
}
