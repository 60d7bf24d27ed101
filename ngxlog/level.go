// Package ngxlog holds nginx's error-log levels, shared by the config
// (error_log), the server's error log, the static file server and Lua
// (ngx.ERR and friends).
package ngxlog

import "strings"

// Level is an nginx error-log level: a message is written to a log whose
// level is at least the message's.
type Level int

// nginx's levels, with its numbers (NGX_LOG_STDERR .. NGX_LOG_DEBUG),
// which ngx.log also uses.
const (
	Stderr Level = iota
	Emerg
	Alert
	Crit
	Err
	Warn
	Notice
	Info
	Debug
)

var names = [...]string{"stderr", "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"}

// String is the level's name as the error log prints it ("error", "warn").
func (l Level) String() string {
	if l < 0 || int(l) >= len(names) {
		return "unknown"
	}
	return names[l]
}

// Parse returns the level error_log names ("error", "warn", ...); stderr
// is not a level error_log accepts.
func Parse(name string) (Level, bool) {
	for i, n := range names[1:] {
		if n == name {
			return Level(i + 1), true
		}
	}
	return 0, false
}

// Each calls f for every level with its upper-case Lua name (ngx.ERR ...).
func Each(f func(luaName string, l Level)) {
	for i, n := range names {
		if n == "error" {
			n = "err"
		}
		f(strings.ToUpper(n), Level(i))
	}
}
