package main

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"
)

// The "scrape" test group (-tests scrape) checks that a Prometheus scrape
// does not stall the relay: a new ngxsockify holds n idle tunnels (9,000
// by default) while one more tunnel makes 64-byte round trips, in
// alternating phases without and with a client scraping /metrics back to
// back. The relay never touches the metrics per byte, so the round trips
// should only feel the scraper's CPU (the machine has two cores), not wait
// for it.

// scrapePhase is how long each phase runs.
const scrapePhase = 3 * time.Second

func (b *bench) scrapeUnderLoad(ngxBin string, n int) error {
	cmd, addr, err := b.startFresh(ngxBin, false)
	if err != nil {
		return err
	}
	defer func() {
		killGroup(cmd)
		cmd.Wait()
	}()
	r := &relay{name: "ngxsockify", url: "ws://" + addr + "/websockify", pid: cmd.Process.Pid}
	streams, failed, first := b.openMany(r, n)
	defer closeAll(streams)
	fmt.Printf("scrape under load: %d idle tunnels (%d failed%s)\n", n, failed, firstErrNote(first))
	s, err := b.open(r, false, []byte{'E'}, wsDialer)
	if err != nil {
		return err
	}
	defer s.close()
	// Let the handshake burst settle (its memory trim included).
	time.Sleep(3 * time.Second)
	phases := []struct {
		name  string
		every time.Duration // -1: nobody scrapes; 0: back to back
	}{{"nobody scraping", -1}, {"a scrape every 100 ms", 100 * time.Millisecond}, {"scraping back to back", 0}}
	rtts := make([][]float64, len(phases))
	var scrapes []float64
	var size int
	for round := 0; round < 3 && b.ctx.Err() == nil; round++ {
		for i, ph := range phases {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if ph.every >= 0 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := http.Client{Timeout: 10 * time.Second}
					for {
						select {
						case <-stop:
							return
						case <-time.After(ph.every):
						}
						t0 := time.Now()
						resp, err := c.Get("http://" + addr + "/metrics")
						if err != nil {
							continue
						}
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						scrapes = append(scrapes, float64(time.Since(t0).Microseconds()))
						size = len(body)
					}
				}()
			}
			rtt, err := roundTrips(s, scrapePhase)
			close(stop)
			wg.Wait()
			if err != nil {
				return err
			}
			rtts[i] = append(rtts[i], rtt...)
		}
	}
	show := func(name string, v []float64) {
		sort.Float64s(v)
		if len(v) == 0 {
			fmt.Printf("  %-34s none\n", name)
			return
		}
		slow := 0
		for _, x := range v {
			if x > 10000 {
				slow++
			}
		}
		fmt.Printf("  %-34s n=%-7d p50 %6.0f µs  p99 %6.0f µs  p99.9 %6.0f µs  max %6.0f µs  >10 ms: %d\n", name,
			len(v), v[len(v)/2], v[len(v)*99/100], v[len(v)*999/1000], v[len(v)-1], slow)
	}
	for i, ph := range phases {
		show("round trip, "+ph.name, rtts[i])
	}
	show(fmt.Sprintf("scrape (%d bytes)", size), scrapes)
	return nil
}

// roundTrips makes 64-byte round trips through s for d and returns their
// times in µs.
func roundTrips(s stream, d time.Duration) ([]float64, error) {
	var ck checker
	var off int64
	var times []float64
	for end := time.Now().Add(d); time.Now().Before(end); {
		msg := patternAt(off, 64)
		off += 64
		t0 := time.Now()
		if err := s.send(msg); err != nil {
			return nil, err
		}
		for ck.off < off {
			m, err := s.recv()
			if err != nil {
				return nil, err
			}
			if err := ck.check(m); err != nil {
				return nil, err
			}
		}
		times = append(times, float64(time.Since(t0).Microseconds()))
	}
	return times, nil
}
