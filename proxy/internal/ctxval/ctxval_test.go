package ctxval

import (
	"context"
	"testing"
)

type key int

func TestValue(t *testing.T) {
	parent := context.WithValue(context.Background(), key(1), "parent")
	v := &Value{Context: parent, Key: key(2), Val: "own"}
	var ctx context.Context = v
	if got := ctx.Value(key(2)); got != "own" {
		t.Errorf("own key: %v", got)
	}
	if got := ctx.Value(key(1)); got != "parent" {
		t.Errorf("parent's key: %v", got)
	}
	if got := ctx.Value(key(3)); got != nil {
		t.Errorf("absent key: %v", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = ctx.Value(key(1)) }); n != 0 {
		t.Errorf("%v allocations per lookup", n)
	}
}
