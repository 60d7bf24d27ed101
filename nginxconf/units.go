package nginxconf

import (
	"errors"
	"strconv"
	"time"
)

var errBadValue = errors.New("invalid value")

// ParseTime parses nginx time values: "30", "5s", "1h30m", "500ms", "2d", "1w".
// A bare number is seconds, as in nginx.
func ParseTime(s string) (time.Duration, error) {
	if s == "" {
		return 0, errBadValue
	}
	units := map[string]time.Duration{
		"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
		"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "M": 30 * 24 * time.Hour, "y": 365 * 24 * time.Hour,
	}
	var total time.Duration
	i := 0
	for i < len(s) {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i {
			return 0, errBadValue
		}
		n, err := strconv.ParseInt(s[i:j], 10, 64)
		if err != nil {
			return 0, errBadValue
		}
		k := j
		for k < len(s) && (s[k] < '0' || s[k] > '9') && s[k] != ' ' {
			k++
		}
		unit := s[j:k]
		mult := time.Second
		if unit != "" {
			u, ok := units[unit]
			if !ok {
				return 0, errBadValue
			}
			mult = u
		} else if k < len(s) {
			return 0, errBadValue
		}
		total += time.Duration(n) * mult
		for k < len(s) && s[k] == ' ' {
			k++
		}
		i = k
	}
	return total, nil
}

// ParseSize is ngx_parse_size, how nginx reads most sizes: a number of
// bytes, or of KiB or MiB with k or m (either case); no g.
func ParseSize(s string) (int64, error) {
	if s != "" && (s[len(s)-1] == 'g' || s[len(s)-1] == 'G') {
		return 0, errBadValue
	}
	return ParseOffset(s)
}

// ParseOffset is ngx_parse_offset, how nginx reads file offsets
// (client_max_body_size, directio): ParseSize's units and GiB with g.
func ParseOffset(s string) (int64, error) {
	if s == "" {
		return 0, errBadValue
	}
	mult := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errBadValue
	}
	return n * mult, nil
}
