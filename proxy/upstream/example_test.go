package upstream_test

import (
	"fmt"

	"ngxsockify/proxy/upstream"
)

func ExampleParseTarget() {
	for _, v := range []string{"127.0.0.1:5901", "10.0.0.7", "[::1]:5902", "unix:/run/vnc.sock", "vnc.lan:5900", "", "h:x"} {
		s, err := upstream.ParseTarget(v)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(s.Addr, s.NeedsResolve())
	}
	// Output:
	// 127.0.0.1:5901 false
	// 10.0.0.7:5900 false
	// [::1]:5902 false
	// unix:/run/vnc.sock false
	// vnc.lan:5900 true
	// no host in upstream ""
	// invalid port in upstream "h:x"
}
