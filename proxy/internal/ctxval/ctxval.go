// Package ctxval is context.WithValue's context as a value type, to be
// kept inside a longer-lived object (a connection, a tunnel) instead of
// allocated on its own: a handshake or request then allocates no context.
package ctxval

import "context"

// Value is a Context carrying Val under Key, as context.WithValue makes;
// use a pointer to it as the Context.
type Value struct {
	context.Context
	Key, Val any
}

// Value returns Val for Key, else what the parent holds.
func (x *Value) Value(key any) any {
	if key == x.Key {
		return x.Val
	}
	return x.Context.Value(key)
}
