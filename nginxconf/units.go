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

// ParseSize parses nginx sizes: "1024", "8k", "1m", "1g" (either case).
func ParseSize(s string) (int64, error) {
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
