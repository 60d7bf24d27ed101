package luahooks

import "time"

// Strftime formats t as C's strftime does in the "C" locale (os.date's
// conversions), for other packages: the SSI filter's timefmt.
func Strftime(t time.Time, format string) string { return strftime(t, format) }
