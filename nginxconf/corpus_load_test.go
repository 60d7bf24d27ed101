package nginxconf

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestCorpusLoad")

// TestCorpusLoad loads every corpus config (fragments wrapped in the context
// they belong to) through the whole pipeline and compares the warnings, or
// the one error, with testdata/corpus/<name>.golden. Run with -update after a
// deliberate change and read the diff: each line says what ngxsockify does
// not do for that user.
func TestCorpusLoad(t *testing.T) {
	configs := CorpusConfigs()
	if len(configs) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("corpus not found at " + CorpusDir)
		}
		t.Skip("corpus not available")
	}
	// Load as a user other than root, so that the user directives of the
	// corpus give the same warning on any machine (as root they name
	// accounts this machine may not have).
	defer func(f func() int) { geteuid = f }(geteuid)
	geteuid = func() int { return 1000 }
	for _, rel := range configs {
		t.Run(rel, func(t *testing.T) {
			main := CorpusMain(t, rel)
			dir := filepath.Dir(main)
			var got strings.Builder
			// As run with --ignore-stream, so that a stream{} block does
			// not hide what the rest of the config loses.
			cfg, err := Load(main, LoadOptions{IgnoreStream: true})
			if err != nil {
				got.WriteString("error: " + err.Error() + "\n")
			} else {
				for _, w := range cfg.Warnings {
					got.WriteString(w.String() + "\n")
				}
				if cfg.HTTP == nil {
					got.WriteString("(no http block)\n")
				}
			}
			text := strings.ReplaceAll(got.String(), dir, "{{DIR}}")
			golden := filepath.Join("testdata", "corpus", strings.ReplaceAll(rel, "/", "_")+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestCorpusLoad -update)", err)
			}
			if text != string(want) {
				t.Errorf("load of %s changed (run with -update and review):\n--- want\n%s--- got\n%s", rel, want, text)
			}
		})
	}
}
