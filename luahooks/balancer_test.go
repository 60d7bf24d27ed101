package luahooks

import (
	"strings"
	"testing"
	"time"
)

func TestPeerAddr(t *testing.T) {
	for _, c := range []struct {
		addr      string
		port      int
		want, err string
	}{
		{"127.0.0.1", 81, "127.0.0.1:81", ""},
		{"127.0.0.1:82", 81, "127.0.0.1:82", ""},
		{"[::1]", 81, "[::1]:81", ""},
		{"[::1]:83", 81, "[::1]:83", ""},
		{"localhost", 80, "", "no host allowed"},
		{"127.0.0.1:x", 80, "", "invalid port"},
		{"[::1]:70000", 80, "", "invalid port"},
		{"1.2.3.4:0", 80, "", "invalid port"},
		{"", 80, "", "no host"},
	} {
		got, err := peerAddr(c.addr, c.port)
		if got != c.want || err != c.err {
			t.Errorf("peerAddr(%q, %d) = %q, %q; want %q, %q", c.addr, c.port, got, err, c.want, c.err)
		}
	}
}

// TestBalancerRun runs a balancer_by_lua chunk as proxy_pass does: the
// choices land in Request.Balancer, the yielding APIs are disabled, ngx.exit
// lets the hook go on.
func TestBalancerRun(t *testing.T) {
	rt, sink := newTestRuntime(t, Options{})
	b := &Balancer{Tries: 1, TotalTries: 1, MaxTries: 3}
	req := newReq("/t")
	req.Balancer = b
	out := runCode(t, rt, PhaseBalancer, `
		local bal = require "ngx.balancer"
		ngx.exit(ngx.OK)
		print(ngx.get_phase(), " ", tostring(bal.get_last_failure()))
		print(select(2, bal.set_more_tries(5)))
		assert(bal.set_timeouts(1.5, nil, 0.25))
		assert(bal.set_current_peer("10.0.0.1", 8080))`, req)
	if out.Action != Continue || out.Err != nil {
		t.Fatalf("outcome %+v", out)
	}
	want := Balancer{Tries: 1, TotalTries: 1, MaxTries: 3, Addr: "10.0.0.1:8080", MoreTries: 2,
		ConnectTimeout: 1500 * time.Millisecond, ReadTimeout: 250 * time.Millisecond}
	if *b != want {
		t.Errorf("balancer %+v, want %+v", *b, want)
	}
	log := sink.text()
	for _, s := range []string{"balancer nil", "reduced tries due to limit"} {
		if !strings.Contains(log, s) {
			t.Errorf("log lacks %q:\n%s", s, log)
		}
	}
	b.LastState, b.LastStatus = "failed", 502
	out = runCode(t, rt, PhaseBalancer, `local s, c = require("ngx.balancer").get_last_failure() print(s, c) ngx.sleep(0)`, req)
	if out.Status != 500 || out.Err == nil || !strings.Contains(out.Err.Error(),
		"failed to run balancer_by_lua*: balancer_by_lua(nginx.conf:10):1: API disabled in the context of balancer_by_lua*") {
		t.Errorf("ngx.sleep: %+v", out)
	}
	if !strings.Contains(sink.text(), "failed502") {
		t.Errorf("get_last_failure not logged:\n%s", sink.text())
	}
	out = runCode(t, rt, PhaseBalancer, `ngx.exit(403) print("after")`, req)
	if out.Action == Continue || !strings.Contains(sink.text(), "after") {
		t.Errorf("exit(403): %+v, log:\n%s", out, sink.text())
	}
}

// TestBalancerOutside: ngx.balancer in other phases answers as
// lua-resty-core does, and -t finds the module.
func TestBalancerOutside(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	req := newReq("/t")
	out := runCode(t, rt, PhaseContent, `local b = require "ngx.balancer"
		ngx.say(b.set_current_peer("127.0.0.1", 1))
		ngx.say(b.get_last_failure())
		ngx.say(b.set_timeouts(1))`, req)
	if got, want := string(out.Body), "nilno upstream found\nnilnilno upstream found\nfalseno upstream found\n"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	req.Balancer = &Balancer{}
	out = runCode(t, rt, PhaseContent, `ngx.say(require("ngx.balancer").set_more_tries(1))`, req)
	if got, want := string(out.Body), "nilAPI disabled in the current context\n"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	if found, _, err := rt.FindModule("ngx.balancer"); !found || err != nil {
		t.Errorf("FindModule(ngx.balancer) = %v, %v", found, err)
	}
}
