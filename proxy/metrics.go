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
// metric. The children requests and tunnels use are looked up once, at
// their first use (a lookup hashes the label values under the vector's
// lock), and kept: by status here, by location with the level's runtime
// (websockifyConf.metrics). A child appears in a scrape from its first
// use, as it did when every update looked it up. Nothing is kept per
// tunnel, so a scrape costs the same under 10 tunnels or 9,000 and takes
// no lock the relay takes.
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

	// the children of requests and handshakeFailures by status, of
	// tunnelBytes by direction, of the Lua metrics by the chunks' phase
	requestsBy, failuresBy statusCounters
	toClient, fromClient   child[prometheus.Counter]
	lua                    [16]child[*luaPhaseMetrics] // by luahooks.Phase
}

// luaPhaseMetrics are the children of the Lua metrics of one phase label.
type luaPhaseMetrics struct {
	label   string
	runs    prometheus.Counter
	seconds prometheus.Observer
	errors  child[prometheus.Counter]
}

// child is a metric vector's child, looked up at its first use and kept.
type child[M any] struct{ p atomic.Pointer[M] }

// get returns the child, looking it up with lookup the first time (two
// first uses find the same child).
func (c *child[M]) get(lookup func() M) M {
	if p := c.p.Load(); p != nil {
		return *p
	}
	m := lookup()
	c.p.Store(&m)
	return m
}

// statusCounters are a counter vector labelled by status, with its
// children kept by status (a lookup also formats the status).
type statusCounters struct {
	vec *prometheus.CounterVec
	by  [600]child[prometheus.Counter]
}

// inc counts one for status.
func (c *statusCounters) inc(status int) {
	if status < 0 || status >= len(c.by) {
		c.vec.WithLabelValues(statusLabel(status)).Inc()
		return
	}
	c.by[status].get(func() prometheus.Counter { return c.vec.WithLabelValues(statusLabel(status)) }).Inc()
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
	m.requestsBy.vec, m.failuresBy.vec = m.requests, m.handshakeFailures
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
func (m *metrics) request(status int) { m.requestsBy.inc(status) }

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

// locTunnels are the children of the tunnel metrics of one location
// (labelled with locationLabel), kept with a level's runtime.
type locTunnels struct {
	loc   *nginxconf.Location
	label string
	open  prometheus.Gauge
	ended [len(tunnelResults)]child[prometheus.Counter] // by tunnelResult
}

// tunnelsIn returns the tunnel metrics of rq's location, kept in its
// level's runtime from the first tunnel there.
func (m *metrics) tunnelsIn(rq *request) *locTunnels {
	slot := &rq.st.confs[rq.conf.ID].websockify.metrics
	if lt := slot.Load(); lt != nil && lt.loc == rq.loc {
		return lt
	}
	label := locationLabel(rq.loc)
	lt := &locTunnels{loc: rq.loc, label: label, open: m.tunnelsOpen.WithLabelValues(label)}
	slot.Store(lt)
	return lt
}

// handshake records a websockify_pass handshake in lt's location: its
// dial time (when it dialled) and either a failure by status or an open
// tunnel.
func (m *metrics) handshake(lt *locTunnels, res websockify.Result) {
	if res.UpstreamAddr != "" || res.ConnectTime > 0 {
		m.dialSeconds.Observe(res.ConnectTime.Seconds())
	}
	if res.Status != http.StatusSwitchingProtocols {
		m.failuresBy.inc(res.Status)
		return
	}
	m.request(http.StatusSwitchingProtocols)
	lt.open.Inc()
}

// tunnelEnded records the end of a tunnel opened in lt's location.
func (m *metrics) tunnelEnded(lt *locTunnels, end websockify.Result) {
	lt.open.Dec()
	r := tunnelResult(end.Err)
	lt.ended[r].get(func() prometheus.Counter { return m.tunnels.WithLabelValues(lt.label, tunnelResults[r].name) }).Inc()
	m.toClient.get(func() prometheus.Counter { return m.tunnelBytes.WithLabelValues("to_client") }).
		Add(float64(end.BytesSent))
	m.fromClient.get(func() prometheus.Counter { return m.tunnelBytes.WithLabelValues("from_client") }).
		Add(float64(end.BytesReceived))
}

// tunnelResults are the result label of ended tunnels and the error each
// stands for (errors.Is), in tunnelResult's order: nil first, for a
// normal close, and last, for any other error.
var tunnelResults = [...]struct {
	name string
	err  error
}{
	{"closed", nil},
	{"idle_timeout", websockify.ErrIdleTimeout},
	{"send_timeout", websockify.ErrSendTimeout},
	{"shutdown", websockify.ErrShutdown},
	{"protocol_error", websockify.ErrProtocol},
	{"bad_base64", websockify.ErrBadBase64},
	{"internal_error", websockify.ErrInternal},
	{"io_error", nil},
}

// tunnelResult is why a tunnel ended with err, as an index of
// tunnelResults.
func tunnelResult(err error) int {
	if err == nil {
		return 0
	}
	last := len(tunnelResults) - 1
	for i := 1; i < last; i++ {
		if errors.Is(err, tunnelResults[i].err) {
			return i
		}
	}
	return last
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
	m := rq.s.metrics.luaPhase(phase, ch.Phase())
	begin := time.Now()
	out := rq.st.lua.Run(ctx, ch, lr)
	m.seconds.Observe(time.Since(begin).Seconds())
	m.runs.Inc()
	if out.Err != nil {
		m.errors.get(func() prometheus.Counter { return rq.s.metrics.luaErrors.WithLabelValues(phase) }).Inc()
	}
	return out
}

// luaPhase returns the Lua metrics of phase (the label) for chunks of p,
// kept by p from their first run.
func (m *metrics) luaPhase(phase string, p luahooks.Phase) *luaPhaseMetrics {
	newPhase := func() *luaPhaseMetrics {
		return &luaPhaseMetrics{label: phase, runs: m.luaRuns.WithLabelValues(phase),
			seconds: m.luaSeconds.WithLabelValues(phase)}
	}
	if p < 0 || int(p) >= len(m.lua) {
		return newPhase()
	}
	if lp := m.lua[p].get(newPhase); lp.label == phase {
		return lp
	}
	return newPhase() // a label other than the one kept for p
}
