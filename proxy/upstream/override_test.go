package upstream

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestOverride: a per-request Override picks the attempt's server ahead
// of the method, "" lets the method pick, its error ends the attempts,
// and a server it chose is not counted as failed.
func TestOverride(t *testing.T) {
	good, bad := listenEcho(t), refusedAddr(t)
	u := New("b", []Server{{Addr: bad}, {Addr: good}})
	var tr Tries
	var timeouts []time.Duration
	choices := []string{bad, good, ""}
	boom := errors.New("boom")
	tr.SetOverride(func(d time.Duration) (string, time.Duration, error) {
		timeouts = append(timeouts, d)
		if len(choices) == 0 {
			return "", 0, boom
		}
		addr := choices[0]
		choices = choices[1:]
		return addr, 2 * d, nil
	})
	ctx := context.Background()
	if _, addr, err := u.DialNext(ctx, time.Second, &tr); err == nil || addr != bad {
		t.Fatalf("first attempt: %s, %v", addr, err)
	}
	u.Failed(&tr) // not the method's server: nothing to count
	c, addr, err := u.DialNext(ctx, time.Second, &tr)
	if err != nil || addr != good {
		t.Fatalf("second attempt: %s, %v", addr, err)
	}
	c.Close()
	// the method's pick: round robin from the first server; bad is not out
	if _, addr, _ = u.DialNext(ctx, time.Second, &tr); addr != bad {
		t.Errorf("third attempt picked %s, want the method's first server %s", addr, bad)
	}
	if _, _, err := u.DialNext(ctx, time.Second, &tr); !errors.Is(err, boom) {
		t.Errorf("fourth attempt: %v, want the override's error", err)
	}
	if len(timeouts) != 4 || timeouts[0] != time.Second {
		t.Errorf("timeouts %v", timeouts)
	}
}

// TestOverrideKeepalive: a connection to a server an Override chose goes
// back to the idle pool and is reused for the same address.
func TestOverrideKeepalive(t *testing.T) {
	good := listenEcho(t)
	u := New("b", []Server{{Addr: refusedAddr(t)}})
	u.SetKeepalive(Keepalive{Conns: 2, Requests: 100, Timeout: time.Minute, Time: time.Hour})
	choose := func(d time.Duration) (string, time.Duration, error) { return good, d, nil }
	ctx := context.Background()
	var first Tries
	first.SetOverride(choose)
	c, _, err := u.DialNext(ctx, time.Second, &first)
	if err != nil {
		t.Fatal(err)
	}
	u.Put(&first, c)
	var second Tries
	second.SetOverride(choose)
	c2, addr, err := u.DialNext(ctx, time.Second, &second)
	if err != nil || addr != good || !second.Cached() || c2 != c {
		t.Errorf("second request: %s, %v, cached %v, same conn %v", addr, err, second.Cached(), c2 == c)
	}
	c2.Close()
}

func TestTriesLimit(t *testing.T) {
	var tr Tries
	for _, c := range []struct{ servers, limit, more, want int }{
		{3, 0, 0, 3}, {3, 2, 0, 2}, {1, 5, 0, 1}, {1, 5, 2, 3}, {1, 0, 3, 4},
	} {
		tr.more = c.more
		if got := tr.Limit(c.servers, c.limit); got != c.want {
			t.Errorf("Limit(%d, %d) with %d more = %d, want %d", c.servers, c.limit, c.more, got, c.want)
		}
	}
}
