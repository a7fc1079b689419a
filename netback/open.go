package netback

import (
	"fmt"
	"net"
	"strings"
)

// Open builds the backend named by a --net value:
//
//	user        the user-mode network (QEMU's addresses, port forwards)
//	tap:NAME    the Linux tap interface NAME
//	none        a NIC connected to nothing
//
// forwards are the -p port forwards; only the user network has them, so
// they are an error with the other backends. mac is the guest NIC's address
// (the user network's DHCP server leases UserGuest to it).
func Open(spec string, forwards []Forward, mac net.HardwareAddr) (Backend, error) {
	kind, arg, hasArg := strings.Cut(spec, ":")
	if kind != "user" && len(forwards) > 0 {
		return nil, fmt.Errorf("--net %s: port forwards (-p) need the user network: use --net user or drop -p", spec)
	}
	switch {
	case kind == "user" && !hasArg:
		return NewUser(mac, forwards)
	case kind == "none" && !hasArg:
		return NewNone(), nil
	case kind == "tap" && hasArg:
		return OpenTap(arg)
	case kind == "tap":
		return nil, fmt.Errorf("--net %s: name the tap interface, e.g. --net tap:tap0", spec)
	}
	return nil, fmt.Errorf("--net %q: unknown network; use user, tap:NAME or none", spec)
}
