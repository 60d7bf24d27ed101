package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The "fresh" test group (-tests fresh) measures memory per idle tunnel
// the way a new deployment sees it: for each N, a NEW ngxsockify process,
// its RSS once it listens, then N idle echo tunnels opened in a burst (each
// checked with one round trip), then its RSS again after the burst has
// quieted: (RSS after - RSS at start) / N, at several moments. The other
// memory rows of the table come from one process that the throughput
// tests warmed up first, which hides what the handshake burst costs.
//
// The config also serves prometheus_metrics, whose Go runtime figures
// (heap in use, stacks, goroutines) say where the memory goes.

// freshSamples are the moments after the burst at which RSS is read.
var freshSamples = []time.Duration{2 * time.Second, 10 * time.Second, 30 * time.Second}

// goFigures are the Go runtime metrics read from the process's
// prometheus_metrics location, by name.
var goFigures = []string{"go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes",
	"go_memstats_heap_released_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines"}

// freshMemory runs the fresh test for n tunnels and prints its lines.
// accessLog: the server writes an access log (as deployments do), so that
// every tunnel keeps its request for its log line.
func (b *bench) freshMemory(ngxBin string, n int, accessLog bool) error {
	cmd, addr, err := b.startFresh(ngxBin, accessLog)
	if err != nil {
		return err
	}
	defer func() {
		killGroup(cmd)
		cmd.Wait()
	}()
	r := &relay{name: "ngxsockify (fresh)", url: "ws://" + addr + "/websockify", pid: cmd.Process.Pid}
	time.Sleep(time.Second)
	// The Go figures come from a scrape, which allocates: scrape before
	// reading the base RSS and after the last reading, never between.
	goBase := scrapeGo(addr)
	time.Sleep(100 * time.Millisecond)
	base := memoryKiB(r.pid, false)
	begin := time.Now()
	streams, failed, first := b.openMany(r, n)
	defer closeAll(streams)
	burst := time.Since(begin)
	ok := n - failed
	fmt.Printf("%s, %s: fresh process, %d idle tunnels (burst %.1fs, %d failed%s): RSS at start %.0f KiB\n",
		filepath.Base(ngxBin), map[bool]string{false: "access_log off", true: "access_log on"}[accessLog], n, burst.Seconds(), failed, firstErrNote(first), base)
	if ok == 0 {
		return nil
	}
	for _, at := range freshSamples {
		if d := time.Until(begin.Add(burst + at)); d > 0 {
			select {
			case <-time.After(d):
			case <-b.ctx.Done():
				return b.ctx.Err()
			}
		}
		rss := memoryKiB(r.pid, false)
		fmt.Printf("  +%-4v RSS %.0f KiB: %.2f KiB per tunnel\n", at, rss, (rss-base)/float64(ok))
	}
	g := scrapeGo(addr)
	var parts []string
	for _, name := range goFigures {
		per := (g[name] - goBase[name]) / float64(ok)
		if strings.HasSuffix(name, "_bytes") {
			parts = append(parts, fmt.Sprintf("%s %+.2f KiB", strings.TrimPrefix(name, "go_memstats_"), per/1024))
		} else {
			parts = append(parts, fmt.Sprintf("%s %+.2f", strings.TrimPrefix(name, "go_"), per))
		}
	}
	fmt.Printf("  Go runtime, per tunnel, at the end: %s\n", strings.Join(parts, ", "))
	return nil
}

func firstErrNote(first string) string {
	if first == "" {
		return ""
	}
	return ", first: " + shorten(first)
}

// startFresh starts a new ngxsockify relaying /websockify to the target,
// with prometheus_metrics at /metrics, and returns it and its address.
func (b *bench) startFresh(ngxBin string, accessLog bool) (*exec.Cmd, string, error) {
	dir, err := os.MkdirTemp(b.dir, "fresh")
	if err != nil {
		return nil, "", err
	}
	logLine := "access_log off;"
	if accessLog {
		logLine = "access_log " + dir + "/access.log;"
	}
	cmd, addr, err := b.startWebsockify(ngxBin, dir, "ngxsockify", 1, "", logLine,
		"location = /metrics { prometheus_metrics; }\n        websockify_read_timeout 1h;")
	if err != nil {
		return nil, "", fmt.Errorf("ngxsockify: %w", err)
	}
	return cmd, addr, nil
}

// scrapeGo reads the goFigures from the relay's /metrics (nil values on
// failure: the figures then read as 0).
func scrapeGo(addr string) map[string]float64 {
	out := map[string]float64{}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		for _, want := range goFigures {
			if name == want {
				out[name], _ = strconv.ParseFloat(val, 64)
			}
		}
	}
	return out
}
