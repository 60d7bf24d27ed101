package ngxlog

import (
	"errors"
	"strconv"
	"strings"
	"syscall"
)

// Errno renders the system error inside err the way nginx logs a failed
// system call: "2: No such file or directory", with glibc's strerror
// wording. An error with no errno inside is its own text.
func Errno(err error) string {
	var no syscall.Errno
	if !errors.As(err, &no) {
		return err.Error()
	}
	text, ok := glibcStrerror[no]
	if !ok {
		text = no.Error()
		if text != "" {
			text = strings.ToUpper(text[:1]) + text[1:]
		}
	}
	return strconv.Itoa(int(no)) + ": " + text
}

// glibcStrerror holds glibc's texts where Go's differ by more than the
// first letter's case.
var glibcStrerror = map[syscall.Errno]string{
	syscall.ENOENT:       "No such file or directory",
	syscall.EACCES:       "Permission denied",
	syscall.ENOTDIR:      "Not a directory",
	syscall.EISDIR:       "Is a directory",
	syscall.EMFILE:       "Too many open files",
	syscall.ELOOP:        "Too many levels of symbolic links",
	syscall.ENAMETOOLONG: "File name too long",
	syscall.EIO:          "Input/output error",
}
