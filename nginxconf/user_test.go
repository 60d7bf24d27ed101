package nginxconf

import (
	"os/user"
	"strings"
	"testing"
	"time"
)

// loadAs compiles main-level text with geteuid answering euid.
func loadAs(t *testing.T, euid int, text string) (*Config, error) {
	t.Helper()
	defer func(f func() int) { geteuid = f }(geteuid)
	geteuid = func() int { return euid }
	return LoadString("/etc/ngx/nginx.conf", text+"events {}\n", LoadOptions{Prefix: "/srv/p"})
}

func TestUserNotRoot(t *testing.T) {
	cfg, err := loadAs(t, 1000, "user root;\nuser root;\n")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User != nil {
		t.Errorf("User = %v, want nil without root", cfg.User)
	}
	want := `the "user" directive makes sense only if the master process runs with super-user privileges, ignored in /etc/ngx/nginx.conf:1`
	if len(cfg.Warnings) != 2 || cfg.Warnings[0].String() != want {
		t.Errorf("warnings = %q, want twice %q", cfg.Warnings, want)
	}
}

func TestUserRoot(t *testing.T) {
	cfg, err := loadAs(t, 0, "user root root;\n")
	if err != nil {
		t.Fatal(err)
	}
	if u := cfg.User; u == nil || u.UID != 0 || u.GID != 0 || len(u.Groups) == 0 || u.Groups[0] != 0 {
		t.Errorf("User = %+v, want root:root with groups starting at 0", cfg.User)
	}
	if !cfg.MasterProcess || cfg.WorkerShutdownTimeout != 0 {
		t.Errorf("MasterProcess, WorkerShutdownTimeout = %v, %v; want true, 0", cfg.MasterProcess, cfg.WorkerShutdownTimeout)
	}
}

// TestUserDefault: as root without a user directive, nginx's compiled-in
// nobody:nogroup serves.
func TestUserDefault(t *testing.T) {
	if _, err := user.LookupGroup(defaultGroup); err != nil {
		t.Skip("no group nogroup on this system")
	}
	cfg, err := loadAs(t, 0, "master_process off;\nworker_shutdown_timeout 1m;\n")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User == nil || cfg.User.Name != "nobody" || cfg.User.Group != "nogroup" {
		t.Errorf("User = %v, want nobody:nogroup", cfg.User)
	}
	if cfg.MasterProcess || cfg.WorkerShutdownTimeout != time.Minute {
		t.Errorf("MasterProcess, WorkerShutdownTimeout = %v, %v; want false, 1m", cfg.MasterProcess, cfg.WorkerShutdownTimeout)
	}
	if cfg, _ := loadAs(t, 1000, ""); cfg.User != nil {
		t.Errorf("not root: User = %v, want nil", cfg.User)
	}
}

func TestUserMissing(t *testing.T) {
	for text, want := range map[string]string{
		"user ngxsockify-nobody;\n":      `getpwnam("ngxsockify-nobody") failed in /etc/ngx/nginx.conf:1`,
		"\nuser root ngxsockify-none;\n": `getgrnam("ngxsockify-none") failed in /etc/ngx/nginx.conf:2`,
	} {
		_, err := loadAs(t, 0, text)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %s", text, err, want)
		}
	}
}
