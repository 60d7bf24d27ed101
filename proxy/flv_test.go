package proxy

import "testing"

func TestFlvStart(t *testing.T) {
	for v, want := range map[string]int64{
		"": 0, "0": 0, "10": 10, "007": 7, "-1": 0, "+5": 0, " 5": 0, "5x": 0,
		"9223372036854775807": 9223372036854775807, "9223372036854775808": 0,
		"99999999999999999999": 0,
	} {
		if got := flvStart(v); got != want {
			t.Errorf("flvStart(%q) = %d, want %d", v, got, want)
		}
	}
}
