package main

import (
	"os"
	"testing"
)

func TestCheckerCatchesLossAndShift(t *testing.T) {
	stream := append(append([]byte(nil), patternAt(0, 1500000)...), patternAt(1500000, 700000)...)
	var ok checker
	for i := 0; i < len(stream); i += 65536 {
		if err := ok.check(stream[i:min(i+65536, len(stream))]); err != nil {
			t.Fatalf("intact stream rejected: %v", err)
		}
	}
	lost := append(append([]byte(nil), stream[:1000]...), stream[1001:5000]...)
	var c1 checker
	if c1.check(lost) == nil {
		t.Error("a lost byte was not seen")
	}
	flipped := append([]byte(nil), stream[:5000]...)
	flipped[4321] ^= 1
	var c2 checker
	if c2.check(flipped) == nil {
		t.Error("a changed byte was not seen")
	}
	// A shift by the pattern length would go unseen; the length is prime and
	// larger than any test message, so no test can produce it by accident.
	if len(pattern) < 1<<20-(1<<20)/10 {
		t.Errorf("pattern of %d bytes is too short", len(pattern))
	}
}

func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	if rss := memoryKiB(pid, false); rss <= 0 {
		t.Errorf("RSS %v", rss)
	}
	if pss := memoryKiB(pid, true); pss <= 0 {
		t.Errorf("PSS %v", pss)
	}
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i
	}
	_ = x
	if cpu := cpuSeconds(pid, false); cpu <= 0 {
		t.Errorf("CPU %v", cpu)
	}
}
