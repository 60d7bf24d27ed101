package upstream

import (
	"context"
	"net"
	"regexp"
	"sync"
	"testing"
	"time"
)

// TestResolveRefusedLogged: a resolver nothing listens on answers with
// ICMP port unreachable; as nginx (a connected UDP socket per server) the
// lookup logs "send() failed (111: Connection refused) while resolving"
// (or recv()) and goes on waiting until its timeout (014-bugs.t TEST 34).
func TestResolveRefusedLogged(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close() // nothing listens there now
	var mu sync.Mutex
	var lines []string
	logf := func(msg string) { mu.Lock(); lines = append(lines, msg); mu.Unlock() }
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := resolveName(ctx, []string{addr}, 0, "example.org", false, logf); err != errDNSTimeout {
		t.Errorf("err %v, want the timeout", err)
	}
	mu.Lock()
	defer mu.Unlock()
	re := regexp.MustCompile(`^(send|recv)\(\) failed \(111: Connection refused\) while resolving, resolver: ` + regexp.QuoteMeta(addr) + `$`)
	if len(lines) == 0 || !re.MatchString(lines[0]) {
		t.Errorf("logged %q", lines)
	}
}
