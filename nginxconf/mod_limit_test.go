package nginxconf

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLimitModel checks the compiled limits: rates in milli-requests per
// second, burst and delay in milli-requests, nodelay, and a level's list
// replacing its parent's.
func TestLimitModel(t *testing.T) {
	cfg, err := loadHTTP(t, `
limit_req_zone $binary_remote_addr zone=s:1m rate=2r/s;
limit_req_zone $uri zone=m:32k rate=30r/m;
limit_conn_zone $binary_remote_addr zone=c:1m;
limit_req zone=s burst=5;
limit_conn c 10;
server {
    limit_req_status 429;
    location /inherit { }
    location /own { limit_req zone=m nodelay; limit_req zone=s delay=2 burst=3; }
    location /conn { limit_conn c 1; limit_conn_dry_run on; }
}`)
	if err != nil {
		t.Fatal(err)
	}
	zones := cfg.HTTP.LimitZones
	if zones["s"].Rate != 2000 || zones["m"].Rate != 500 || zones["m"].Size != 32<<10 || !zones["c"].Conn {
		t.Errorf("zones: s %+v, m %+v, c %+v", *zones["s"], *zones["m"], *zones["c"])
	}
	type req struct {
		Zone         string
		Burst, Delay int64
	}
	reqs := func(lc *LocConf) []req {
		var out []req
		for _, l := range lc.LimitReq {
			out = append(out, req{l.Zone.Name, l.Burst, l.Delay})
		}
		return out
	}
	locs := map[string]*LocConf{}
	for _, l := range cfg.HTTP.Servers[0].Root.Prefix {
		locs[l.Path] = l.Conf
	}
	for _, tc := range []struct {
		loc    string
		want   []req
		conn   int
		status int
		dry    bool
	}{
		{"/inherit", []req{{"s", 5000, 0}}, 10, 429, false},
		{"/own", []req{{"m", 0, math.MaxInt64 / 1000 * 1000}, {"s", 3000, 2000}}, 10, 429, false},
		{"/conn", []req{{"s", 5000, 0}}, 1, 429, true},
	} {
		lc := locs[tc.loc]
		if lc == nil {
			t.Fatalf("no location %s", tc.loc)
		}
		if d := cmp.Diff(tc.want, reqs(lc)); d != "" {
			t.Errorf("%s limit_req (-want +got):\n%s", tc.loc, d)
		}
		if len(lc.LimitConn) != 1 || lc.LimitConn[0].Conn != tc.conn || lc.LimitReqStatus != tc.status || lc.LimitConnDryRun != tc.dry {
			t.Errorf("%s: limit_conn %+v, limit_req_status %d, limit_conn_dry_run %v", tc.loc, lc.LimitConn, lc.LimitReqStatus, lc.LimitConnDryRun)
		}
	}
}
