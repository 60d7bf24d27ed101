package upstream

import (
	"context"
	"testing"
	"time"
)

func TestKeepaliveCache(t *testing.T) {
	addr := listenEcho(t)
	u := New("ka", []Server{{Addr: addr}})
	u.SetKeepalive(Keepalive{Conns: 1, Requests: 1000, Timeout: time.Minute, Time: time.Hour})
	ctx := context.Background()
	var t1 Tries
	c1, _, err := u.DialNext(ctx, time.Second, &t1)
	if err != nil || t1.Cached() || t1.ConnData() != nil {
		t.Fatalf("first dial: %v, cached %v, data %v", err, t1.Cached(), t1.ConnData())
	}
	t1.SetConnData("c1's")
	u.Put(&t1, c1)
	var t2 Tries
	c2, _, err := u.DialNext(ctx, time.Second, &t2)
	if err != nil || !t2.Cached() || c2 != c1 {
		t.Fatalf("second dial: %v, cached %v, same %v", err, t2.Cached(), c2 == c1)
	}
	if d := t2.ConnData(); d != "c1's" {
		t.Errorf("cached connection's data %v, want what SetConnData kept", d)
	}
	u.Put(&t2, c2)
	// a tunnel never takes an idle HTTP connection
	c3, _, err := u.Dial(ctx, time.Second)
	if err != nil || c3 == c1 {
		t.Fatalf("Dial: %v, reused %v", err, c3 == c1)
	}
	c3.Close()
	// a stale cached connection: the server may be picked again
	var t4 Tries
	c4, _, _ := u.DialNext(ctx, time.Second, &t4)
	c4.Close()
	t4.Stale()
	if _, _, err := u.DialNext(ctx, time.Second, &t4); err != nil || t4.ConnData() != nil {
		t.Fatalf("after Stale: %v, data %v (another connection's)", err, t4.ConnData())
	}
	// without keepalive, Put closes
	u2 := New("no", []Server{{Addr: addr}})
	var t5 Tries
	c5, _, _ := u2.DialNext(ctx, time.Second, &t5)
	u2.Put(&t5, c5)
	if _, err := c5.Write([]byte("x")); err == nil {
		t.Error("Put without keepalive left the connection open")
	}
}

// TestTriedSet: past its few in place, and removal from either part.
func TestTriedSet(t *testing.T) {
	var s triedSet
	peers := make([]*peer, 7)
	for i := range peers {
		peers[i] = &peer{}
		s.add(peers[i])
		s.add(peers[i]) // twice is once
	}
	if s.n != 4 || len(s.more) != 3 {
		t.Fatalf("n %d, more %d", s.n, len(s.more))
	}
	s.remove(peers[1])
	s.remove(peers[5])
	for i, p := range peers {
		if want := i != 1 && i != 5; s.has(p) != want {
			t.Errorf("peer %d: has %v", i, !want)
		}
	}
}

func TestCheckIdleLater(t *testing.T) {
	addr := listenEcho(t)
	u := New("ka", []Server{{Addr: addr}})
	u.SetKeepalive(Keepalive{Conns: 4, Requests: 1000, Timeout: time.Minute, Time: time.Hour})
	ctx := context.Background()
	var t1, t2 Tries
	c1, _, _ := u.DialNext(ctx, time.Second, &t1)
	c2, _, _ := u.DialNext(ctx, time.Second, &t2)
	u.Put(&t1, c1)
	u.Put(&t2, c2)
	c2.Close() // as a backend's close would: DialNext no longer looks
	var t3 Tries
	t3.CheckIdleLater(true)
	c, _, err := u.DialNext(ctx, time.Second, &t3)
	if err != nil || c != c2 || !t3.Cached() {
		t.Fatalf("DialNext: %v, the last idle one %v, cached %v", err, c == c2, t3.Cached())
	}
	// the caller found it closed: the next idle one, then a new one
	if c, _, err = u.Retake(ctx, time.Second, &t3); err != nil || c != c1 || !t3.Cached() {
		t.Fatalf("Retake: %v, the other idle one %v, cached %v", err, c == c1, t3.Cached())
	}
	c1.Close()
	if c, _, err = u.Retake(ctx, time.Second, &t3); err != nil || c == c1 || c == c2 || t3.Cached() {
		t.Fatalf("Retake with none idle: %v, cached %v", err, t3.Cached())
	}
	c.Close()
	if _, _, err := u.Retake(ctx, time.Second, &Tries{}); err != ErrNoLiveUpstreams {
		t.Fatalf("Retake before DialNext: %v", err)
	}
}

// TestKeepalivePastDeadline: Put leaves a connection's deadlines as they
// are; one that passed while it was idle does not make it look dead.
func TestKeepalivePastDeadline(t *testing.T) {
	addr := listenEcho(t)
	u := New("ka", []Server{{Addr: addr}})
	u.SetKeepalive(Keepalive{Conns: 1, Requests: 1000, Timeout: time.Minute, Time: time.Hour})
	ctx := context.Background()
	var t1 Tries
	c1, _, err := u.DialNext(ctx, time.Second, &t1)
	if err != nil {
		t.Fatal(err)
	}
	c1.SetDeadline(time.Now().Add(-time.Second))
	u.Put(&t1, c1)
	var t2 Tries
	if c, _, err := u.DialNext(ctx, time.Second, &t2); err != nil || c != c1 || !t2.Cached() {
		t.Fatalf("DialNext: %v, the idle one %v, cached %v", err, c == c1, t2.Cached())
	}
	c1.Close()
}

// TestKeepaliveCallerClock: the times a caller gives (PutAt, SetClock)
// are the idle cache's clock: keepalive_timeout counts between them.
func TestKeepaliveCallerClock(t *testing.T) {
	addr := listenEcho(t)
	u := New("ka", []Server{{Addr: addr}})
	u.SetKeepalive(Keepalive{Conns: 1, Requests: 1000, Timeout: time.Minute, Time: time.Hour})
	ctx := context.Background()
	now := time.Now()
	var t1 Tries
	t1.SetClock(now)
	c1, _, err := u.DialNext(ctx, time.Second, &t1)
	if err != nil {
		t.Fatal(err)
	}
	u.PutAt(&t1, c1, now)
	var t2 Tries
	t2.SetClock(now.Add(59 * time.Second)) // within keepalive_timeout
	c2, _, err := u.DialNext(ctx, time.Second, &t2)
	if err != nil || !t2.Cached() || c2 != c1 {
		t.Fatalf("within the timeout: %v, cached %v, same %v", err, t2.Cached(), c2 == c1)
	}
	u.PutAt(&t2, c2, now.Add(59*time.Second))
	var t3 Tries
	t3.SetClock(now.Add(2 * time.Minute)) // past it
	c3, _, err := u.DialNext(ctx, time.Second, &t3)
	if err != nil || t3.Cached() || c3 == c1 {
		t.Fatalf("past the timeout: %v, cached %v, same %v", err, t3.Cached(), c3 == c1)
	}
	c3.Close()
}
