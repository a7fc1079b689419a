package netback

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// Errors of Open that callers can test with errors.Is.
var (
	// ErrUnknownNetwork: the spec names no backend.
	ErrUnknownNetwork = errors.New("unknown network")
	// ErrForwardsNeedUser: port forwards were given for a backend other
	// than the user network.
	ErrForwardsNeedUser = errors.New("port forwards need the user network")
)

// Open builds the backend named by spec, a network's text form:
//
//	user        the user-mode network (QEMU's addresses, port forwards)
//	user:NAME   the shared network NAME (a Hub; see HubSocket), or
//	user:PATH   the shared network listening on socket PATH (a value
//	            with a '/'); the forwards are asked of the hub
//	tap:NAME    the Linux tap interface NAME
//	none        a NIC connected to nothing
//
// forwards are the port forwards; only the user network has them, so they
// are an error (ErrForwardsNeedUser) with the other backends. mac is the guest NIC's address
// (the user network's DHCP server leases UserGuest to it).
func Open(spec string, forwards []Forward, mac net.HardwareAddr) (Backend, error) {
	return OpenWith(spec, forwards, mac, OpenOptions{})
}

// OpenOptions are OpenWith's optional settings.
type OpenOptions struct {
	// Logf, when set, is told of a shared network lost, failing to be
	// rejoined and rejoined (JoinOptions.Logf).
	Logf func(format string, args ...any)
	// Notef and Lasting are a shared network's brief notices and what
	// they count as lasting (JoinOptions.Notef, JoinOptions.Lasting).
	Notef   func(format string, args ...any)
	Lasting func(error) bool
	// RunsAs is the uid the VM's process will run as once set up, for a
	// shared network (JoinOptions.RunsAs); the other backends ignore it.
	RunsAs int
}

// OpenWith is Open with options.
func OpenWith(spec string, forwards []Forward, mac net.HardwareAddr, o OpenOptions) (Backend, error) {
	kind, arg, hasArg := strings.Cut(spec, ":")
	if kind != "user" && len(forwards) > 0 {
		return nil, fmt.Errorf("network %q: %w", spec, ErrForwardsNeedUser)
	}
	switch {
	case kind == "user" && !hasArg:
		return NewUser(mac, forwards)
	case kind == "user" && arg != "":
		socket, err := ResolveHub(arg)
		if err != nil {
			return nil, fmt.Errorf("network %q: %w", spec, err)
		}
		return JoinWith(socket, mac, forwards, JoinOptions{Name: arg, Logf: o.Logf, Notef: o.Notef, Lasting: o.Lasting, RunsAs: o.RunsAs})
	case kind == "none" && !hasArg:
		return NewNone(), nil
	case kind == "tap" && hasArg:
		return OpenTap(arg)
	case kind == "tap":
		return nil, &UnnamedNetworkError{Spec: spec, Kind: "tap"}
	case kind == "user" && hasArg:
		return nil, &UnnamedNetworkError{Spec: spec, Kind: "user"}
	}
	return nil, fmt.Errorf("network %q: %w", spec, ErrUnknownNetwork)
}

// UnnamedNetworkError is Open's error for a tap network or a shared
// network given without the name its spec needs ("tap", "user:"). It
// matches ErrUnknownNetwork.
type UnnamedNetworkError struct {
	Spec string // the spec as given
	Kind string // "tap" or "user": the part before the ':'
}

// Error names the spec and what it leaves unnamed.
func (e *UnnamedNetworkError) Error() string {
	what := "the tap interface"
	if e.Kind == "user" {
		what = "the shared network"
	}
	return fmt.Sprintf("network %q: %v: %s is not named", e.Spec, ErrUnknownNetwork, what)
}

// Is makes errors.Is(err, ErrUnknownNetwork) true.
func (e *UnnamedNetworkError) Is(target error) bool { return target == ErrUnknownNetwork }
