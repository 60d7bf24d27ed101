package nginxconf

import (
	"fmt"
	"strings"

	"ngxsockify/ngxlog"
)

// Error is one configuration error in nginx's shape. Error() reads
// "<Msg> in <File>:<Line>"; without a file (the main file itself cannot be
// opened) it is just Msg, and without a line (-g directives, File
// "command line") "<Msg> in <File>", as nginx prints them.
type Error struct {
	Msg  string
	File string
	Line int
}

func (e *Error) Error() string {
	switch {
	case e.File == "":
		return e.Msg
	case e.Line == 0:
		return e.Msg + " in " + e.File
	}
	return fmt.Sprintf("%s in %s:%d", e.Msg, e.File, e.Line)
}

// Errors holds several errors, in file order (ParseOptions.CollectAll).
// Error() joins them with "\n".
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Warning is a note about a directive that is accepted but not acted on in
// full (see Support). String() reads "<Msg> in <File>:<Line>".
type Warning struct {
	File      string
	Line      int
	Directive string
	Msg       string
	// Alert marks a message nginx logs at "alert" rather than "warn".
	Alert bool
	// Logged marks a message nginx itself writes while loading the
	// configuration (in nginx's words): it goes to the startup error
	// log (-e) as well as to stderr. The others are ngxsockify's notes.
	Logged bool
}

// Level is the level the warning is printed with.
func (w Warning) Level() string {
	if w.Alert {
		return "alert"
	}
	return "warn"
}

func (w Warning) String() string {
	if w.File == "" {
		return w.Msg
	}
	return fmt.Sprintf("%s in %s:%d", w.Msg, w.File, w.Line)
}

// withErrno appends an OS error to msg as ngx_log_errno() does, cutting
// a long msg to leave room for the error ("...").
func withErrno(msg string, err error) string {
	if len(msg) > maxConfErrStr-50 {
		msg = msg[:maxConfErrStr-50] + "..."
	}
	return msg + " " + errnoText(err)
}

// errnoText renders an OS error the way nginx does after a failed system
// call: "(2: No such file or directory)".
func errnoText(err error) string { return "(" + ngxlog.Errno(err) + ")" }
