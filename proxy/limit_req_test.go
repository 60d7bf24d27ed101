package proxy

import (
	"fmt"
	"math"
	"testing"

	"ngxsockify/nginxconf"
)

func testReqZone(size int64) *reqZone {
	return newReqZone(&nginxconf.LimitZone{Name: "one", Size: size})
}

// TestReqZoneBucket walks nginx's leaky bucket arithmetic on one key:
// excess in milli-requests, +1000 per request, minus rate*ms/1000 leaked.
func TestReqZoneBucket(t *testing.T) {
	const rate = 2000 // 2r/s
	z := testReqZone(1 << 20)
	steps := []struct {
		at     int64 // ms
		burst  int64
		res    lookupResult
		excess int64
	}{
		{0, 1000, lookupOK, 0},        // a new key starts empty
		{0, 1000, lookupOK, 1000},     // at once: one request over the rate
		{0, 1000, lookupBusy, 2000},   // over burst=1: refused, not counted
		{100, 1000, lookupBusy, 1800}, // 100 ms leaked 200
		{500, 1000, lookupOK, 1000},   // 500 ms after the last accounted: 1000-1000+1000
		{5000, 0, lookupOK, 0},        // leaked out, never below zero
		{4990, 1000, lookupOK, 1000},  // the clock went back 10 ms: no time
	}
	for i, s := range steps {
		res, excess, _ := z.lookup("k", rate, s.burst, true, s.at)
		if res != s.res || excess != s.excess {
			t.Errorf("step %d at %d ms: got %v excess %d, want %v excess %d", i, s.at, res, excess, s.res, s.excess)
		}
	}
}

// TestReqZoneHeldAccount checks a request with two limits: the first is
// held (count) until the last decides, then accounted; a refusal by the
// last releases it uncounted.
func TestReqZoneHeldAccount(t *testing.T) {
	const rate = 1000
	a, b := testReqZone(1<<20), testReqZone(1<<20)
	limits := []nginxconf.LimitReq{
		{Zone: &nginxconf.LimitZone{Name: "a", Rate: rate}, Burst: 5000, Delay: 0},
		{Zone: &nginxconf.LimitZone{Name: "b", Rate: rate}, Burst: 0, Delay: math.MaxInt64},
	}
	zones := []*reqZone{a, b}

	res, _, n := a.lookup("k", rate, 5000, false, 0)
	if res != lookupAgain || n == nil || n.count != 1 {
		t.Fatalf("first limit: %v %+v", res, n)
	}
	if res, _, _ := b.lookup("k", rate, 0, true, 0); res != lookupOK {
		t.Fatalf("last limit: %v", res)
	}
	held := []heldReq{{0, n}}
	delay, _, _ := limitReqAccount(limits, zones, held, 0, 1, 0)
	if n.count != 0 || n.excess != 1000 {
		t.Fatalf("after account: count %d excess %d, want 0 and 1000", n.count, n.excess)
	}
	// delay=0 on a: its excess of one request is 1 s at 1r/s
	if delay != 1000 {
		t.Errorf("delay %d ms, want 1000", delay)
	}

	// second request: b refuses (burst 0), a's hold is released uncounted
	res, _, n = a.lookup("k", rate, 5000, false, 0)
	if res != lookupAgain {
		t.Fatalf("first limit again: %v", res)
	}
	if res, _, _ := b.lookup("k", rate, 0, true, 0); res != lookupBusy {
		t.Fatalf("last limit again: %v", res)
	}
	a.release(n)
	if n.count != 0 || n.excess != 1000 {
		t.Errorf("after release: count %d excess %d, want 0 and 1000", n.count, n.excess)
	}
}

// TestReqZoneEvicts fills a zone of 8 pages: a state still held by a
// request is never evicted, else the oldest goes when there is no room.
func TestReqZoneEvicts(t *testing.T) {
	z := testReqZone(32 << 10)
	n := 0
	for ; ; n++ {
		res, _, _ := z.lookup(fmt.Sprint(n), 1000, 0, true, 0)
		if res != lookupOK {
			t.Fatalf("key %d: %v", n, res)
		}
		if _, ok := z.nodes["0"]; !ok {
			break // key 0 was evicted to make room
		}
	}
	// 7 pages of 32 chunks of 128 bytes, less one page of small chunks and the zone's header
	if n != 191 {
		t.Errorf("the zone held %d keys, want 191", n)
	}
	// hold every state: a new key finds no room
	for _, node := range z.nodes {
		node.count++
	}
	if res, _, _ := z.lookup("new", 1000, 0, true, 0); res != lookupError {
		t.Errorf("full zone of held states: %v, want lookupError", res)
	}
}

func TestMilliString(t *testing.T) {
	for v, want := range map[int64]string{0: "0.000", 520: "0.520", 1000: "1.000", 12345: "12.345"} {
		if got := milliString(v); got != want {
			t.Errorf("milliString(%d) = %q, want %q", v, got, want)
		}
	}
}

// TestConnZone counts and releases, and frees a key's node at zero. A
// full key tells to wait only when a holder's client is gone, and the
// wait ends at a release.
func TestConnZone(t *testing.T) {
	z := newConnZone(&nginxconf.LimitZone{Name: "c", Size: 32 << 10})
	gone := false
	holds := []*connHold{{gone: func() bool { return gone }}, {}}
	for i, h := range holds {
		if full, noMem, _ := z.acquire("k", 2, h); full || noMem {
			t.Fatalf("acquire %d: full %v noMemory %v", i, full, noMem)
		}
	}
	third := &connHold{}
	if full, _, wait := z.acquire("k", 2, third); !full || wait != nil {
		t.Fatalf("third acquire under limit 2: full %v, wait %v", full, wait != nil)
	}
	gone = true
	full, _, wait := z.acquire("k", 2, third)
	if !full || wait == nil {
		t.Fatalf("third acquire, a holder gone: full %v, wait %v", full, wait != nil)
	}
	z.release("k", holds[0])
	select {
	case <-wait:
	default:
		t.Fatal("release did not end the wait")
	}
	if full, _, _ := z.acquire("k", 2, third); full {
		t.Fatal("acquire after the release refused")
	}
	z.release("k", holds[1])
	z.release("k", third)
	if len(z.nodes) != 0 {
		t.Errorf("nodes left after the last release: %d", len(z.nodes))
	}
}
