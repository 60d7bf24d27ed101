package nginxconf

import (
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
)

// User is the account the process serves as once its listeners and log
// files are open: nginx's worker user (the user directive, ngx_set_user).
type User struct {
	Name, Group string
	UID, GID    int
	// Groups are the supplementary groups, as initgroups(Name, GID) sets
	// them: GID first, then every group that lists the user as a member.
	Groups []int
}

// geteuid is os.Geteuid; tests replace it to compile as root or not.
var geteuid = os.Geteuid

// nginx's compiled-in worker user. Debian's nginx is built without
// --user/--group, so it is nobody, and the group nogroup (nginx's
// configure takes nogroup where /etc/group has no "nobody" group, as on
// Debian); `nginx -V` shows no --user.
const (
	defaultUser  = "nobody"
	defaultGroup = "nogroup"
)

// user compiles `user USER [GROUP];` (main context). The group defaults to
// the user's name, as in nginx (so `user nobody;` fails on Debian, where
// there is no group nobody). Without root it is ignored with nginx's
// warning; a second one is then not a duplicate, as in nginx, which never
// records the first.
func (c *compiler) user(_ *level, d *Directive) {
	if geteuid() != 0 {
		c.warn(d, `the "user" directive makes sense only if the master process runs with super-user privileges, ignored`)
		return
	}
	if c.cfg.User != nil {
		c.fail(d, `"user" directive is duplicate`)
		return
	}
	group := d.Args[0]
	if len(d.Args) == 2 {
		group = d.Args[1]
	}
	u, msg := lookupUser(d.Args[0], group)
	if msg != "" {
		c.fail(d, "%s", msg)
		return
	}
	c.cfg.User = u
}

// defaultUserConf is nginx's ngx_core_module_init_conf: started as root
// without a user directive, the workers run as nobody:nogroup; an account
// missing from the system is an error without a position.
func (c *compiler) defaultUserConf() {
	if c.cfg.User != nil || geteuid() != 0 {
		return
	}
	u, msg := lookupUser(defaultUser, defaultGroup)
	if msg != "" {
		c.errs = append(c.errs, &Error{Msg: msg})
		if !c.collectAll {
			panic(errStop{})
		}
		return
	}
	c.cfg.User = u
}

// lookupUser resolves name and group as getpwnam and getgrnam do; msg is
// nginx's error when one of them is missing.
func lookupUser(name, group string) (*User, string) {
	pw, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Sprintf(`getpwnam("%s") failed`, name)
	}
	gr, err := user.LookupGroup(group)
	if err != nil {
		return nil, fmt.Sprintf(`getgrnam("%s") failed`, group)
	}
	u := &User{Name: name, Group: group}
	u.UID, _ = strconv.Atoi(pw.Uid)
	u.GID, _ = strconv.Atoi(gr.Gid)
	u.Groups = []int{u.GID}
	// GroupIds lists the passwd entry's own group first, then the groups
	// naming the user; initgroups takes the given group in its place.
	ids, _ := pw.GroupIds()
	for _, id := range ids {
		n, err := strconv.Atoi(id)
		if err != nil || id == pw.Gid || slices.Contains(u.Groups, n) {
			continue
		}
		u.Groups = append(u.Groups, n)
	}
	return u, ""
}

// String is "name:group (uid:gid)", as -t reports who will serve.
func (u *User) String() string {
	return fmt.Sprintf("%s:%s (%d:%d)", u.Name, u.Group, u.UID, u.GID)
}
