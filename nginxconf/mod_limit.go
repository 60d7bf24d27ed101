package nginxconf

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
)

// limitModule is ngx_http_limit_req_module and ngx_http_limit_conn_module,
// which nginx keeps apart but which share their zone syntax, their status,
// log-level and dry-run directives and their inheritance here.
//
//	limit_req_zone key zone=name:size rate=N r/s|r/m;   (http)
//	limit_req zone=name [burst=N] [nodelay | delay=N];  (http, server, location)
//	limit_conn_zone key zone=name:size;                 (http)
//	limit_conn zone N;                                  (http, server, location)
//	limit_req_status / limit_conn_status code;          (400..599, default 503)
//	limit_req_log_level / limit_conn_log_level info|notice|warn|error;
//	limit_req_dry_run / limit_conn_dry_run on|off;
//
// A level's limit_req (limit_conn) list replaces the inherited one, as
// nginx's merge does. Zones are one namespace, as nginx's shared memory
// zones are: a name is bound to one key and one kind. A zone named by
// limit_req or limit_conn but never declared is nginx's `zero size shared
// memory zone`, checked once the http block is read (checkLimitZones).
var limitModule = module{name: "ngx_http_limit_req_module, ngx_http_limit_conn_module", create: func(lc *LocConf) {
	lc.LimitReqStatus, lc.LimitConnStatus = 503, 503
	lc.LimitReqLogLevel, lc.LimitConnLogLevel = ngxlog.Err, ngxlog.Err
}, directives: []directive{
	{name: "limit_req_zone", set: func(c *compiler, _ *level, d *Directive) { c.limitZone(d, false) }},
	{name: "limit_req", inherit: inheritReplace, field: "LimitReq", set: setLimitReq},
	{name: "limit_req_status", dup: "limit_req_status", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.LimitReqStatus = c.limitStatus(d)
	}},
	{name: "limit_req_log_level", dup: "limit_req_log_level", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.LimitReqLogLevel = c.limitLogLevel(d)
	}},
	{name: "limit_req_dry_run", set: func(_ *compiler, lv *level, d *Directive) { lv.conf.LimitReqDryRun = d.Args[0] == "on" }},
	{name: "limit_conn_zone", set: func(c *compiler, _ *level, d *Directive) { c.limitZone(d, true) }},
	{name: "limit_conn", inherit: inheritReplace, field: "LimitConn", set: setLimitConn},
	{name: "limit_conn_status", dup: "limit_conn_status", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.LimitConnStatus = c.limitStatus(d)
	}},
	{name: "limit_conn_log_level", dup: "limit_conn_log_level", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.LimitConnLogLevel = c.limitLogLevel(d)
	}},
	{name: "limit_conn_dry_run", set: func(_ *compiler, lv *level, d *Directive) { lv.conf.LimitConnDryRun = d.Args[0] == "on" }},
	// ngx_http_core_module's, kept here with the other limits
	{name: "limit_rate", dup: "limit_rate", set: func(c *compiler, lv *level, d *Directive) { lv.conf.LimitRate = c.sizeValue(d) }},
	{name: "limit_rate_after", dup: "limit_rate_after", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.LimitRateAfter = c.sizeValue(d)
	}},
}}

// LimitConf is the limit modules' part of a location's settings.
type LimitConf struct {
	LimitReq          []LimitReq
	LimitReqStatus    int          // limit_req_status (default 503)
	LimitReqLogLevel  ngxlog.Level // refusals; delays log one level lower (info stays info)
	LimitReqDryRun    bool
	LimitConn         []LimitConn
	LimitConnStatus   int // limit_conn_status (default 503)
	LimitConnLogLevel ngxlog.Level
	LimitConnDryRun   bool
	// LimitRate and LimitRateAfter are limit_rate and limit_rate_after:
	// sizes that may hold variables (nil: 0, no limit).
	LimitRate      *vars.Template
	LimitRateAfter *vars.Template
}

// LimitZone is a limit_req_zone or limit_conn_zone: the state of every key
// lives in it, shared by the levels that name it.
type LimitZone struct {
	Name string
	Conn bool           // limit_conn_zone; false: limit_req_zone
	Key  *vars.Template // nil while only named by limit_req/limit_conn
	Size int64          // bytes; 0 while only named
	// Rate is limit_req_zone's rate in requests per 1000 seconds
	// (nginx's milli-requests per second): rate=2r/s is 2000, 30r/m 500.
	Rate     int64
	File     string
	Line     int
	seq      int  // declaration order, in which nginx checks its zones
	declared bool // by its *_zone directive (else only named so far)
}

// LimitReq is one limit_req directive. Burst and Delay are in
// milli-requests, as the zone's excess is: burst=5 is 5000; nodelay is
// math.MaxInt64/1000 (nginx's NGX_MAX_INT_T_VALUE/1000), so nothing is
// ever delayed.
type LimitReq struct {
	Zone  *LimitZone
	Burst int64
	Delay int64
}

// LimitConn is one limit_conn directive: at most Conn requests (and
// tunnels) per key of the zone at once.
type LimitConn struct {
	Zone *LimitZone
	Conn int
}

// minZoneSize is nginx's smallest shared zone: 8 memory pages.
const minZoneSize = 8 * 4096

// limitZone compiles limit_req_zone (conn false) or limit_conn_zone.
func (c *compiler) limitZone(d *Directive, conn bool) {
	var name string
	var size, rate int64
	scale := int64(1)
	for _, a := range d.Args[1:] {
		switch {
		case strings.HasPrefix(a, "zone="):
			spec, sz, ok := strings.Cut(a[5:], ":")
			n, err := ParseSize(sz)
			if !ok || err != nil {
				c.fail(d, `invalid zone size "%s"`, a)
				return
			}
			if n < minZoneSize {
				c.fail(d, `zone "%s" is too small`, a)
				return
			}
			name, size = spec, n
		case strings.HasPrefix(a, "rate=") && !conn:
			v := a[5:]
			if s, ok := strings.CutSuffix(v, "r/s"); ok {
				v = s
			} else if s, ok := strings.CutSuffix(v, "r/m"); ok {
				v, scale = s, 60
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 || strings.HasPrefix(v, "+") || n > math.MaxInt64/1000 {
				c.fail(d, `invalid rate "%s"`, a)
				return
			}
			rate = n
		default:
			c.fail(d, `invalid parameter "%s"`, a)
			return
		}
	}
	if name == "" {
		c.fail(d, `"%s" must have "zone" parameter`, d.Name)
		return
	}
	z := c.zoneNamed(d, name, conn, size)
	if z == nil {
		return
	}
	if z.declared {
		c.fail(d, `%s "%s" is already bound to key "%s"`, d.Name, name, z.Key.String())
		return
	}
	z.declared = true
	z.Key = c.template(d, d.Args[0])
	z.Size, z.Rate = size, rate*1000/scale
	z.File, z.Line = d.File, d.EndLine
}

// zoneNamed returns the zone called name, declaring it when new (size 0
// for a use before the declaration), with nginx's errors for a zone of the
// other kind or of another size.
func (c *compiler) zoneNamed(d *Directive, name string, conn bool, size int64) *LimitZone {
	h := c.cfg.HTTP
	if h.LimitZones == nil {
		h.LimitZones = map[string]*LimitZone{}
	}
	z := h.LimitZones[name]
	if z == nil {
		z = &LimitZone{Name: name, Conn: conn, seq: len(h.LimitZones)}
		h.LimitZones[name] = z
		return z
	}
	if z.Conn != conn {
		c.fail(d, `the shared memory zone "%s" is already declared for a different use`, name)
		return nil
	}
	if size != 0 && z.Size != 0 && size != z.Size {
		c.fail(d, `the size %d of shared memory zone "%s" conflicts with already declared size %d`, size, name, z.Size)
		return nil
	}
	return z
}

// setLimitReq compiles `limit_req zone=name [burst=N] [nodelay|delay=N]`.
func setLimitReq(c *compiler, lv *level, d *Directive) {
	var name string
	var burst, delay int64
	for _, a := range d.Args {
		switch {
		case strings.HasPrefix(a, "zone="):
			name = a[5:]
		case strings.HasPrefix(a, "burst="):
			n, err := strconv.ParseInt(a[6:], 10, 64)
			if err != nil || n <= 0 || strings.HasPrefix(a[6:], "+") {
				c.fail(d, `invalid burst value "%s"`, a)
				return
			}
			burst = n
		case strings.HasPrefix(a, "delay="):
			n, err := strconv.ParseInt(a[6:], 10, 64)
			if err != nil || n <= 0 || strings.HasPrefix(a[6:], "+") {
				c.fail(d, `invalid delay value "%s"`, a)
				return
			}
			delay = n
		case a == "nodelay":
			delay = math.MaxInt64 / 1000
		default:
			c.fail(d, `invalid parameter "%s"`, a)
			return
		}
	}
	if name == "" {
		c.fail(d, `"%s" must have "zone" parameter`, d.Name)
		return
	}
	z := c.zoneNamed(d, name, false, 0)
	if z == nil {
		return
	}
	for _, l := range lv.conf.LimitReq {
		if l.Zone == z {
			c.fail(d, `"%s" directive is duplicate`, d.Name)
			return
		}
	}
	lv.conf.LimitReq = append(lv.conf.LimitReq, LimitReq{Zone: z, Burst: milli(burst), Delay: milli(delay)})
}

// milli is n*1000, saturating where nginx's unsigned arithmetic would make
// any excess pass.
func milli(n int64) int64 {
	if n > math.MaxInt64/1000 {
		return math.MaxInt64
	}
	return n * 1000
}

// setLimitConn compiles `limit_conn zone N`.
func setLimitConn(c *compiler, lv *level, d *Directive) {
	z := c.zoneNamed(d, d.Args[0], true, 0)
	if z == nil {
		return
	}
	for _, l := range lv.conf.LimitConn {
		if l.Zone == z {
			c.fail(d, `"%s" directive is duplicate`, d.Name)
			return
		}
	}
	n, err := strconv.Atoi(d.Args[1])
	if err != nil || n <= 0 || strings.HasPrefix(d.Args[1], "+") {
		c.fail(d, `invalid number of connections "%s"`, d.Args[1])
		return
	}
	if n > 65535 {
		c.fail(d, `connection limit must be less 65536`)
		return
	}
	lv.conf.LimitConn = append(lv.conf.LimitConn, LimitConn{Zone: z, Conn: n})
}

// limitStatus compiles limit_req_status and limit_conn_status.
func (c *compiler) limitStatus(d *Directive) int {
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < 0 || strings.HasPrefix(d.Args[0], "+") {
		c.fail(d, `"%s" directive invalid number`, d.Name)
		return 503
	}
	if n < 400 || n > 599 {
		c.fail(d, `value must be between 400 and 599`)
		return 503
	}
	return n
}

// limitLogLevel compiles limit_req_log_level and limit_conn_log_level.
func (c *compiler) limitLogLevel(d *Directive) ngxlog.Level {
	switch d.Args[0] {
	case "info":
		return ngxlog.Info
	case "notice":
		return ngxlog.Notice
	case "warn":
		return ngxlog.Warn
	case "error":
		return ngxlog.Err
	}
	c.fail(d, `invalid value "%s"`, d.Args[0])
	return ngxlog.Err
}

// checkLimitZones reports a zone that limit_req or limit_conn names but
// no *_zone directive declares, as nginx does once the configuration is
// read: with no position.
func (c *compiler) checkLimitZones() {
	var first *LimitZone
	for _, z := range c.cfg.HTTP.LimitZones {
		if !z.declared && (first == nil || z.seq < first.seq) {
			first = z
		}
	}
	if first == nil {
		return
	}
	c.errs = append(c.errs, &Error{Msg: fmt.Sprintf(`zero size shared memory zone "%s"`, first.Name)})
	if !c.collectAll {
		panic(errStop{})
	}
}

// sizeValue compiles a size that may hold variables (nginx's
// ngx_http_set_complex_value_size_slot): a constant must be a size now.
func (c *compiler) sizeValue(d *Directive) *vars.Template {
	t := c.template(d, d.Args[0])
	if t == nil {
		return nil
	}
	if v, ok := t.Const(); ok {
		if _, err := ParseSize(v); err != nil {
			c.fail(d, `"%s" directive invalid value`, d.Name)
		}
	}
	return t
}
