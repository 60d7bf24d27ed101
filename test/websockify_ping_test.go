package test

import (
	"testing"
	"time"
)

// TestWebsockifyPingInterval: websockify_ping_interval (inherited, `off`
// in a location) pings idle clients; a client that answers keeps its
// tunnel past websockify_read_timeout, one that does not is closed with
// 1001 at the read timeout. (Both relay engines: proxy/websockify's
// ping_test.go.)
func TestWebsockifyPingInterval(t *testing.T) {
	echo := echoTarget(t)
	s := startNgxsockify(t, `
websockify_ping_interval 200ms;
websockify_read_timeout 1s;
server {
    listen 127.0.0.1:{{PORT}};
    location /ws { websockify_pass `+echo+`; }
    location /quiet { websockify_ping_interval off; websockify_pass `+echo+`; }
}`)
	t.Run("answered", func(t *testing.T) {
		c, br, err := robRawUpgrade(s.Addr, "/ws")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		pings := 0
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
			op, p, err := robReadFrame(c, br, 2*time.Second)
			if err != nil {
				t.Fatalf("after %d pings: %v", pings, err)
			}
			if op != 9 {
				t.Fatalf("frame op %#x %q, want pings", op, p)
			}
			pings++
			c.Write(robMaskedFrame(10, p))
		}
		if pings < 5 {
			t.Errorf("%d pings in 2s at 200ms", pings)
		}
		c.Write(robMaskedFrame(2, []byte("alive")))
		for {
			op, p, err := robReadFrame(c, br, 2*time.Second)
			if err != nil {
				t.Fatalf("no echo after 2s of answered pings: %v", err)
			}
			if op == 2 {
				if string(p) != "alive" {
					t.Errorf("echo %q", p)
				}
				break
			}
		}
		// Now silent: pinged, then closed at the read timeout.
		if err := robExpectClose(c, br, 1001); err != nil {
			t.Error(err)
		}
	})
	t.Run("off", func(t *testing.T) {
		c, br, err := robRawUpgrade(s.Addr, "/quiet")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		op, p, err := robReadFrame(c, br, 3*time.Second)
		if err != nil || op != 8 || len(p) < 2 || int(p[0])<<8|int(p[1]) != 1001 {
			t.Errorf("first frame op %#x %q (%v), want the idle close 1001 and no ping", op, p, err)
		}
	})
}
