package handoff

import (
	"testing"
	"time"
)

// TestWaiters: a value goes to a waiting goroutine only; at most MaxIdle
// wait; Close ends every wait.
func TestWaiters(t *testing.T) {
	w := New[int]()
	if w.Hand(1) {
		t.Fatal("Hand succeeded with no goroutine waiting")
	}
	got := make(chan int)
	go func() {
		v, ok := w.Wait()
		if !ok {
			v = -1
		}
		got <- v
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !w.Hand(7) {
		if time.Now().After(deadline) {
			t.Fatal("the waiting goroutine never took a value")
		}
		time.Sleep(time.Millisecond)
	}
	if v := <-got; v != 7 {
		t.Fatalf("waiter got %d, want 7", v)
	}

	ended := make(chan bool)
	for range MaxIdle + 1 {
		go func() { _, ok := w.Wait(); ended <- ok }()
	}
	// One too many: it returns at once.
	if ok := <-ended; ok {
		t.Fatal("a Wait past MaxIdle waiters did not return false")
	}
	for idle.Load() < MaxIdle {
		time.Sleep(time.Millisecond)
	}
	w.Close()
	for range MaxIdle {
		if ok := <-ended; ok {
			t.Fatal("Wait returned true after Close")
		}
	}
}
