package proxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"ngxsockify/luahooks"
	"ngxsockify/nginxconf"
	"ngxsockify/proxy/websockify"
)

// metrics are the Server's Prometheus metrics, answered by
// `prometheus_metrics;` locations (prometheusContent). Each Server has its
// own registry, so that servers in one process (tests) do not share them.
//
// The relay never touches them per byte: a tunnel is counted when its
// handshake ends and when it ends (its byte counts then), requests when
// they end, Lua hooks per run. Every update is an atomic add on a child
// metric; the vectors' label lookups take a read lock that only the first
// use of a new label value (a new location, status or result) upgrades.
// Nothing is kept per tunnel, so a scrape costs the same under 10 tunnels
// or 9,000 and takes no lock the relay takes.
type metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	tunnelsOpen       *prometheus.GaugeVec   // location
	tunnels           *prometheus.CounterVec // location, result
	tunnelBytes       *prometheus.CounterVec // direction
	handshakeFailures *prometheus.CounterVec // status
	dialSeconds       prometheus.Histogram
	luaRuns           *prometheus.CounterVec   // phase
	luaErrors         *prometheus.CounterVec   // phase
	luaSeconds        *prometheus.HistogramVec // phase
	requests          *prometheus.CounterVec   // status
	reloads           *prometheus.CounterVec   // result
	// byStatus are requests' children by status, looked up once each
	// (a label lookup hashes the value and formats the status)
	byStatus [600]atomic.Pointer[prometheus.Counter]
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	const ns = "ngxsockify"
	m.tunnelsOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "tunnels_open",
		Help: "WebSocket tunnels running, by location."}, []string{"location"})
	m.tunnels = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "tunnels_total",
		Help: "WebSocket tunnels ended, by location and how they ended."}, []string{"location", "result"})
	m.tunnelBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "tunnel_bytes_total",
		Help: "Bytes relayed by ended tunnels: to_client (frames and the 101 response) and " +
			"from_client (WebSocket bytes after the request head)."}, []string{"direction"})
	m.handshakeFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns,
		Name: "handshake_failures_total",
		Help: "websockify_pass requests that did not become a tunnel, by the status answered."},
		[]string{"status"})
	m.dialSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns,
		Name: "upstream_connect_seconds", Help: "Time to connect to websockify_pass targets, failures included.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}})
	m.luaRuns = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "lua_runs_total",
		Help: "Lua hook runs, by phase."}, []string{"phase"})
	m.luaErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "lua_errors_total",
		Help: "Lua hook runs that raised an error, by phase."}, []string{"phase"})
	m.luaSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns,
		Name: "lua_duration_seconds", Help: "Time a Lua hook run took, by phase.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}},
		[]string{"phase"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "http_requests_total",
		Help: "Client requests, by the status answered (101 for tunnels, counted when they start)."},
		[]string{"status"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "reloads_total",
		Help: "Configuration reloads, by result (ok, failed)."}, []string{"result"})
	m.reg.MustRegister(m.tunnelsOpen, m.tunnels, m.tunnelBytes, m.handshakeFailures, m.dialSeconds,
		m.luaRuns, m.luaErrors, m.luaSeconds, m.requests, m.reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// prometheusContent answers a scrape (GET or HEAD, as stub_status).
func prometheusContent(rq *request) {
	if rq.r.Method != http.MethodGet && rq.r.Method != http.MethodHead {
		rq.finalize(http.StatusMethodNotAllowed)
		return
	}
	rq.s.metrics.handler.ServeHTTP(rq.w, rq.r)
}

// request counts a request that ended with status.
func (m *metrics) request(status int) {
	if status < 0 || status >= len(m.byStatus) {
		m.requests.WithLabelValues(statusLabel(status)).Inc()
		return
	}
	c := m.byStatus[status].Load()
	if c == nil {
		// two first requests of a status get the same child
		child := m.requests.WithLabelValues(statusLabel(status))
		c = &child
		m.byStatus[status].Store(c)
	}
	(*c).Inc()
}

func statusLabel(status int) string {
	if status == 0 {
		return "000" // closed without a response
	}
	return strconv.Itoa(status)
}

// locationLabel names the location a tunnel runs in as its block is
// written ("= /ws", "~ ^/vnc/", "/"); "" at the server level.
func locationLabel(loc *nginxconf.Location) string {
	if loc == nil {
		return ""
	}
	switch loc.Modifier {
	case nginxconf.ModExact:
		return "= " + loc.Path
	case nginxconf.ModNoRegex:
		return "^~ " + loc.Path
	case nginxconf.ModRegex:
		return "~ " + loc.Path
	case nginxconf.ModRegexI:
		return "~* " + loc.Path
	}
	return loc.Path
}

// handshake records a websockify_pass handshake: its dial time (when it
// dialled) and either a failure by status or an open tunnel.
func (m *metrics) handshake(loc string, res websockify.Result) {
	if res.UpstreamAddr != "" || res.ConnectTime > 0 {
		m.dialSeconds.Observe(res.ConnectTime.Seconds())
	}
	if res.Status != http.StatusSwitchingProtocols {
		m.handshakeFailures.WithLabelValues(statusLabel(res.Status)).Inc()
		return
	}
	m.requests.WithLabelValues("101").Inc()
	m.tunnelsOpen.WithLabelValues(loc).Inc()
}

// tunnelEnded records the end of a tunnel opened in loc.
func (m *metrics) tunnelEnded(loc string, end websockify.Result) {
	m.tunnelsOpen.WithLabelValues(loc).Dec()
	m.tunnels.WithLabelValues(loc, tunnelResult(end.Err)).Inc()
	m.tunnelBytes.WithLabelValues("to_client").Add(float64(end.BytesSent))
	m.tunnelBytes.WithLabelValues("from_client").Add(float64(end.BytesReceived))
}

// tunnelResult names why a tunnel ended.
func tunnelResult(err error) string {
	switch {
	case err == nil:
		return "closed"
	case errors.Is(err, websockify.ErrIdleTimeout):
		return "idle_timeout"
	case errors.Is(err, websockify.ErrSendTimeout):
		return "send_timeout"
	case errors.Is(err, websockify.ErrShutdown):
		return "shutdown"
	case errors.Is(err, websockify.ErrProtocol):
		return "protocol_error"
	case errors.Is(err, websockify.ErrBadBase64):
		return "bad_base64"
	case errors.Is(err, websockify.ErrInternal):
		return "internal_error"
	}
	return "io_error"
}

// CountReload records the result of a reload attempt (SIGHUP), whether it
// failed loading the configuration or in Reload.
func (s *Server) CountReload(err error) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	s.metrics.reloads.WithLabelValues(result).Inc()
}

// runLua runs a Lua hook of phase, counting it.
func (rq *request) runLua(phase string, ch *luahooks.Chunk, lr *luahooks.Request) luahooks.Outcome {
	return rq.runLuaIn(rq.r.Context(), phase, ch, lr)
}

// runLuaIn is runLua under ctx (the log phase runs after the client may
// have gone).
func (rq *request) runLuaIn(ctx context.Context, phase string, ch *luahooks.Chunk, lr *luahooks.Request) luahooks.Outcome {
	m := rq.s.metrics
	begin := time.Now()
	out := rq.st.lua.Run(ctx, ch, lr)
	m.luaSeconds.WithLabelValues(phase).Observe(time.Since(begin).Seconds())
	m.luaRuns.WithLabelValues(phase).Inc()
	if out.Err != nil {
		m.luaErrors.WithLabelValues(phase).Inc()
	}
	return out
}
