package nginxconf

// statusModule is nginx's stub_status module (ngx_http_stub_status_module)
// and ngxsockify's own Prometheus endpoint: both are content handlers
// answering with the process's counters.
//
//	stub_status [ignored];   server, location: nginx's plain-text counters
//	prometheus_metrics;      location: Prometheus text exposition
//
// Guard either with allow/deny in its location, as with any location.
var statusModule = module{name: "ngx_http_stub_status_module", directives: []directive{
	// nginx ignores the argument since 1.7.5 (it used to be on/off).
	{name: "stub_status", inherit: inheritNone, field: "StubStatus",
		set: func(_ *compiler, lv *level, _ *Directive) { lv.conf.StubStatus = true }},
	{name: "prometheus_metrics", masks: []uint{ctxHTTPLoc | confNoArgs}, dup: "prometheus_metrics",
		inherit: inheritNone, field: "PrometheusMetrics",
		set: func(_ *compiler, lv *level, _ *Directive) { lv.conf.PrometheusMetrics = true }},
}}

// StatusConf is the status module's part of a location's settings: which
// counters the location answers with (content handlers, not inherited).
type StatusConf struct {
	StubStatus        bool // stub_status
	PrometheusMetrics bool // prometheus_metrics
}
