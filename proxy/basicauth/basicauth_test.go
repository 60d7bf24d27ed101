package basicauth

import (
	"crypto/des"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Hashes of "secret" made on this machine with htpasswd (apache2-utils) and
// openssl passwd; each was accepted by nginx 1.22's auth_basic.
var recorded = map[string]string{
	"apr1":      "$apr1$IbhsEgCD$OmWpPAeN1s/nYDOrlmM5S1",
	"sha":       "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
	"bcrypt":    "$2y$05$nWkjNC/91kVef/EjqMUs..K6td.0kamJRLwztR1sSdD57CLyAyszO",
	"des":       "4atYHBVvTGshw",
	"ssha":      "{SSHA}gVK8WC9YyFT1gMsQHTGCgT3sSv5zYWx0",
	"plain":     "{PLAIN}secret",
	"md5crypt":  "$1$eLEfqgwc$b0k4FXCfNi9nrgDtovVuA0",
	"sha256":    "$5$0wHLAOf1jNS5nDyo$7sLMxh0LbUGNzBh2hseDGeO7vxsAUPpNvD79.bZUks0",
	"sha512":    "$6$vmHl3g0xyaxleuiv$6G3Frw/UUc3yLXbYJ5rM3a..gNA25DkpIFso66IoDmI8B0MGzkvXLNQyXAxALkJpmaVLcsKnPzJcLeEb8L5WG0",
	"sha256rnd": "$5$rounds=5000$abcdefgh$gruCpC7VkOTspMQTTSAR8mtlO9Upms.fwqE5y16JVM.",
	// mkpasswd (whois) and python3's crypt on Debian 12 (libxcrypt).
	"yescrypt":  "$y$j9T$GZnhBlO8RBjw1vJORG13t1$0vNRIVMj7lJjjYdPw/KjYizP1Q4U2.rX1cNgwJ/lyT3",
	"scrypt":    "$7$CU..../.....KHbrxODcE2SKWOtHr3tJ/$K6WeKObbkfH0cHn/RToP.hY9fK5/Y5.mMMKAYgFS/DD",
	"sunmd5":    "$md5,rounds=58090$RV2xTDgS$$I9tVEH99EtjN9BjInJjhB.",
	"sunmd5b":   "$md5$abcdefgh$$TFWU.dlIfuoAjNld5IaX3.",
	"bsdi":      "_J9..ZpYQwYBfO5TTQQQ",
	"nt":        "$3$$878d8014606cda29677a44efa1353fc7",
	"sha1crypt": "$sha1$24680$Qh3dwGk1$zFsOMCXnKbHvIkw4kpe3GgGKfh4X",
}

// unsupported holds hashes of "secret" in schemes nginx's crypt() accepts
// and this package cannot compute: gost-yescrypt needs the Streebog hash,
// which no maintained Go module on the module proxy provides.
var unsupported = map[string]string{
	"gostyescrypt": "$gy$j9T$rpt60nhyuqkhUCYS7AYP9/$4y3tFM1LaQDcTvo36n59e4LM2xm5C9uHcLkx.0VVt0A",
}

func TestVerifyRecorded(t *testing.T) {
	for name, h := range recorded {
		if got := Verify(h, "secret"); got != OK {
			t.Errorf("%s: Verify(right password) = %v", name, got)
		}
		if got := Verify(h, "Secret"); got != Mismatch {
			t.Errorf("%s: Verify(wrong password) = %v", name, got)
		}
	}
	for h, want := range map[string]Result{
		"secret":               Mismatch,    // bare text goes to crypt(3) in nginx
		"$y$j9T$abc$def":       Unsupported, // the library cannot decode it
		"$y$jZZ$abc$def":       Unsupported, // N beyond what go-crypt implements
		"$gy$j9T$abc$def":      Unsupported,
		"$7$C$x":               Mismatch,
		"$7$CU..../....a":      Mismatch, // wrong key
		"_J9":                  Mismatch,
		"_J9..ab!d/H6HLCcf7nw": Mismatch,
		"$md5$":                Unsupported,
		"$3$$00":               Mismatch,
		"$unknown$a$b":         Mismatch,
		"$apr1$bad":            Mismatch,
		"$2y$05$bad":           Mismatch,
		"{SSHA}!!!":            Mismatch,
		"":                     Mismatch,
		"$5$rounds=x$a$b":      Mismatch,
	} {
		if got := Verify(h, "secret"); got != want {
			t.Errorf("Verify(%q) = %v, want %v", h, got, want)
		}
	}
}

// TestVerifyTools hashes random passwords with the real tools.
func TestVerifyTools(t *testing.T) {
	type tool struct {
		name string
		args []string
	}
	var tools []tool
	if _, err := exec.LookPath("openssl"); err == nil {
		tools = append(tools, tool{"openssl -1", []string{"openssl", "passwd", "-1"}},
			tool{"openssl -5", []string{"openssl", "passwd", "-5"}},
			tool{"openssl -6", []string{"openssl", "passwd", "-6"}},
			tool{"openssl -apr1", []string{"openssl", "passwd", "-apr1"}})
	}
	if _, err := exec.LookPath("htpasswd"); err == nil {
		for _, f := range []string{"-m", "-B", "-s", "-d", "-2", "-5"} {
			tools = append(tools, tool{"htpasswd " + f, []string{"htpasswd", "-nb" + f[1:], "u"}})
		}
	}
	if _, err := exec.LookPath("mkpasswd"); err == nil {
		for _, m := range []string{"yescrypt", "scrypt", "sunmd5", "bsdicrypt", "nt", "descrypt", "md5crypt", "sha256crypt", "sha512crypt", "bcrypt", "bcrypt-a"} {
			tools = append(tools, tool{"mkpasswd " + m, []string{"mkpasswd", "-m", m, "--"}})
		}
		// yescrypt's cheapest cost (the default, 5, is above; 11, the
		// highest, was checked by hand: 1 GiB and 7 s a hash here).
		tools = append(tools, tool{"mkpasswd yescrypt -R 1", []string{"mkpasswd", "-m", "yescrypt", "-R", "1", "--"}})
	}
	if err := exec.Command("python3", "-W", "ignore", "-c", "import crypt").Run(); err == nil {
		// sha1crypt: libxcrypt hashes it but no Debian tool offers it.
		tools = append(tools, tool{"python3 crypt sha1crypt", []string{"python3", "-W", "ignore", "-c",
			`import crypt, sys; print(crypt.crypt(sys.argv[1], "$sha1$%d$%s$" % (1000 + len(sys.argv[1]), "Qh3dwGk1")))`}})
	}
	if len(tools) == 0 {
		t.Skip("neither openssl, htpasswd, mkpasswd nor python3's crypt installed")
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	alphabet := []rune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !#%&*+,-./;<=>?@[]^_{|}~é")
	for _, tl := range tools {
		for i := 0; i < 4; i++ {
			n := []int{1, 8, 17, 40}[i]
			var b strings.Builder
			for range n {
				b.WriteRune(alphabet[rnd.IntN(len(alphabet))])
			}
			pw := b.String()
			cmd := exec.Command(tl.args[0], append(tl.args[1:], pw)...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v: %s", tl.name, err, stderr.String())
			}
			h := strings.TrimSpace(string(out))
			h = strings.TrimPrefix(h, "u:")
			if got := Verify(h, pw); got != OK {
				t.Errorf("%s: Verify(%q, %q) = %v", tl.name, h, pw, got)
			}
			if got := Verify(h, "~"+pw[1:]); got != Mismatch && pw[0] != '~' {
				t.Errorf("%s: wrong password gave %v", tl.name, got)
			}
		}
	}
}

// TestDESAgainstStdlib checks the DES core with an unmodified E table
// (salt "..") against crypto/des.
func TestDESAgainstStdlib(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 50; i++ {
		key, block := rnd.Uint64(), rnd.Uint64()
		var kb, in, want [8]byte
		binary.BigEndian.PutUint64(kb[:], key)
		binary.BigEndian.PutUint64(in[:], block)
		c, err := des.NewCipher(kb[:])
		if err != nil {
			t.Fatal(err)
		}
		c.Encrypt(want[:], in[:])
		ks := desKeySchedule(key)
		e := desE
		if got := desEncrypt(block, &ks, &e); got != binary.BigEndian.Uint64(want[:]) {
			t.Fatalf("key %x block %x: %x, want %x", key, block, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	data := "# comment:x\nu1:{PLAIN}\nu2\nu3:{PLAIN}p3\r\nu4:{PLAIN}p4 \n u5:{PLAIN}p5\nu6:{PLAIN}a:comment\nu3:{PLAIN}second\n\nlast:{PLAIN}eof"
	f := Parse([]byte(data))
	want := []Entry{{"u1", "{PLAIN}"}, {"u3", "{PLAIN}p3"}, {"u4", "{PLAIN}p4 "}, {" u5", "{PLAIN}p5"},
		{"u6", "{PLAIN}a"}, {"u3", "{PLAIN}second"}, {"last", "{PLAIN}eof"}}
	if diff := cmp.Diff(want, f.Entries); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	// Cases measured on nginx 1.22 with the same file.
	for _, c := range []struct {
		user, pass string
		want       Result
	}{
		{"u1", "", OK}, {"u2", "", NoUser}, {"u2", "x", NoUser}, {"u3", "p3", OK}, {"u3", "second", Mismatch},
		{"u4", "p4 ", OK}, {"u4", "p4", Mismatch}, {" u5", "p5", OK}, {"u5", "p5", NoUser}, {"u6", "a", OK}, {"last", "eof", OK},
	} {
		if got := f.Verify(c.user, c.pass); got != c.want {
			t.Errorf("Verify(%q, %q) = %v, want %v", c.user, c.pass, got, c.want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(p, []byte("a:"+recorded["apr1"]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Verify("a", "secret"); got != OK {
		t.Errorf("Verify = %v", got)
	}
	if _, err := Load(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("Load(missing) error = %v, want not-exist", err)
	}
}

func TestParseAuthorization(t *testing.T) {
	tests := []struct {
		in, user, pass string
		ok             bool
	}{
		{"Basic cGxhaW4yOnNlY3JldA==", "plain2", "secret", true},
		{"basic   cGxhaW4yOnNlY3JldA==", "plain2", "secret", true},
		{"BASIC cGxhaW4yOnNlY3JldA", "plain2", "secret", true},
		{"Basic !!!", "", "", false},
		{"Basic bm9jb2xvbg==", "", "", false}, // "nocolon"
		{"Basic OnB3", "", "", false},         // ":pw", empty user
		{"Basic ", "", "", false},
		{"Bearer x", "", "", false},
		{"Basic dTo=", "u", "", true},
	}
	for _, tc := range tests {
		u, p, ok := ParseAuthorization(tc.in)
		if u != tc.user || p != tc.pass || ok != tc.ok {
			t.Errorf("ParseAuthorization(%q) = %q, %q, %v; want %q, %q, %v", tc.in, u, p, ok, tc.user, tc.pass, tc.ok)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, name := range []string{"apr1", "sha512", "des", "sha", "bcrypt"} {
		h := recorded[name]
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				Verify(h, "secret")
			}
		})
	}
}

// TestMemoryHardBound: yescrypt and scrypt wait for a free slot of
// memoryHardSlots (one per CPU, as nginx's workers compute one at a time);
// the other schemes do not.
func TestMemoryHardBound(t *testing.T) {
	for range cap(memoryHardSlots) {
		memoryHardSlots <- struct{}{} // every slot busy
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			for range cap(memoryHardSlots) {
				<-memoryHardSlots
			}
		})
	}
	defer release()
	if got := Verify(recorded["sha512"], "secret"); got != OK {
		t.Fatalf("sha512 with the slots busy: %v", got)
	}
	done := make(chan Result, 2)
	go func() { done <- Verify(recorded["scrypt"], "secret") }()
	go func() { done <- Verify(recorded["yescrypt"], "secret") }()
	select {
	case r := <-done:
		t.Fatalf("a memory-hard check ran with every slot busy (%v)", r)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	for range 2 {
		if r := <-done; r != OK {
			t.Errorf("Verify = %v", r)
		}
	}
}
