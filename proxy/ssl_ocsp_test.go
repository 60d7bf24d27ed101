package proxy

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// TestOCSPCache: a status is found until its nextUpdate, an expired one
// is not kept, a full zone makes room, and zones are shared by name and
// size.
func TestOCSPCache(t *testing.T) {
	z := &ocspCache{max: 2, entries: map[string]ocspEntry{}}
	now := time.Now()
	z.store("a", ocsp.Good, now.Add(time.Hour))
	z.store("b", ocsp.Revoked, now.Add(2*time.Hour))
	z.store("gone", ocsp.Good, now.Add(-time.Second))
	if st, ok := z.lookup("a"); !ok || st != ocsp.Good {
		t.Errorf("a: %d %v", st, ok)
	}
	if st, ok := z.lookup("b"); !ok || st != ocsp.Revoked {
		t.Errorf("b: %d %v", st, ok)
	}
	if _, ok := z.lookup("gone"); ok {
		t.Error("an expired status was kept")
	}
	z.store("c", ocsp.Good, now.Add(3*time.Hour)) // full: "a" expires first
	if _, ok := z.lookup("a"); ok {
		t.Error("the entry expiring first was not evicted")
	}
	if _, ok := z.lookup("c"); !ok {
		t.Error("c not stored")
	}
	z.entries["b"] = ocspEntry{status: ocsp.Good, valid: now.Add(-time.Second)}
	if _, ok := z.lookup("b"); ok {
		t.Error("a status past its nextUpdate was found")
	}
	var nilz *ocspCache
	nilz.store("x", ocsp.Good, now.Add(time.Hour))
	if _, ok := nilz.lookup("x"); ok {
		t.Error("ssl_ocsp_cache off found a status")
	}
	if ocspZone("TestOCSPCache", 1<<20) != ocspZone("TestOCSPCache", 1<<20) || ocspZone("TestOCSPCache", 1<<20) == ocspZone("TestOCSPCache", 2<<20) {
		t.Error("zones are not shared by name and size")
	}
	var wg sync.WaitGroup
	big := ocspZone("TestOCSPCacheRace", 64*1024)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				k := fmt.Sprint(i, j)
				big.store(k, ocsp.Good, time.Now().Add(time.Minute))
				big.lookup(k)
			}
		}()
	}
	wg.Wait()
	if n := len(big.entries); n > big.max {
		t.Errorf("%d entries in a zone of %d", n, big.max)
	}
}
