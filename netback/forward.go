package netback

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Forward is one host-to-guest port forward of the user-mode network.
type Forward struct {
	// Proto is "tcp" or "udp".
	Proto string
	// HostAddr is the host address to listen on (127.0.0.1 by default).
	HostAddr netip.Addr
	// HostPort and GuestPort are the host port and the guest port it reaches.
	HostPort, GuestPort uint16
}

// DefaultForwardAddr is the host address a forward listens on when the
// forward's text form names none: only local programs can reach the guest.
var DefaultForwardAddr = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// ErrBadForward is wrapped by every ParseForward error.
var ErrBadForward = errors.New("malformed port forward")

// ErrSameHostPort is wrapped by CheckForwards' error, and so by the
// errors of Join and NewUser, and a hub's refusal says it: two forwards of
// one VM would listen on one host socket.
var ErrSameHostPort = errors.New("host port given twice")

// SameHostPort reports whether forwards a and b would listen on one host
// socket: one protocol and port, on one address or with either on all the
// other's: :: takes the port on every address, IPv4's too; 0.0.0.0 only
// on IPv4's (a forward there listens on IPv4 alone), so 0.0.0.0 and ::1
// are two sockets.
func SameHostPort(a, b Forward) bool {
	return a.Proto == b.Proto && a.HostPort == b.HostPort &&
		(a.HostAddr == b.HostAddr || takesPortOf(a.HostAddr, b.HostAddr) || takesPortOf(b.HostAddr, a.HostAddr))
}

// takesPortOf reports whether a socket bound to all, an unspecified
// address, holds the same port on addr.
func takesPortOf(all, addr netip.Addr) bool {
	switch all {
	case netip.IPv6Unspecified():
		return true
	case netip.IPv4Unspecified():
		return addr.Is4() || addr.Is4In6()
	}
	return false
}

// CheckForwards refuses forwards of one VM that name one host port twice
// (SameHostPort): a VM listens once on a port, and which of the two got it
// (the other failing as if another program held the port) would be the
// order of the binds'.
func CheckForwards(fs []Forward) error {
	for i, f := range fs {
		for _, g := range fs[:i] {
			if SameHostPort(f, g) {
				return fmt.Errorf("%w: %s %d (forwards %s and %s)", ErrSameHostPort, f.Proto, f.HostPort, g, f)
			}
		}
	}
	return nil
}

// forwardSyntax is quoted in ParseForward errors so users see the grammar.
const forwardSyntax = "[tcp|udp:][hostaddr:]hostport:guestport, e.g. 8080:80, udp:5353:53 or 0.0.0.0:2222:22"

// String gives the forward in ParseForward's syntax, always fully spelled.
func (f Forward) String() string {
	return fmt.Sprintf("%s:%s:%d", f.Proto, netip.AddrPortFrom(f.HostAddr, f.HostPort), f.GuestPort)
}

// ParseForward parses a forward's text form, "[tcp|udp:][hostaddr:]hostport:guestport".
// An IPv6 host address is written in brackets ("[::1]:8080:80").
func ParseForward(s string) (Forward, error) {
	f := Forward{Proto: "tcp", HostAddr: DefaultForwardAddr}
	bad := func(why string) (Forward, error) {
		return Forward{}, fmt.Errorf("%w %q: %s; the syntax is %s", ErrBadForward, s, why, forwardSyntax)
	}
	rest := s
	for _, p := range []string{"tcp", "udp"} {
		if len(rest) > len(p) && strings.EqualFold(rest[:len(p)+1], p+":") {
			f.Proto, rest = p, rest[len(p)+1:]
			break
		}
	}
	cut := strings.LastIndexByte(rest, ':')
	if cut < 0 {
		return bad("missing \":guestport\"")
	}
	head, guest := rest[:cut], rest[cut+1:]
	var host string
	if cut = strings.LastIndexByte(head, ':'); cut < 0 {
		host = head
	} else {
		addr := head[:cut]
		host = head[cut+1:]
		if strings.HasPrefix(addr, "[") != strings.HasSuffix(addr, "]") {
			return bad(fmt.Sprintf("unbalanced brackets around the host address %q", addr))
		}
		bracketed := strings.HasPrefix(addr, "[")
		addr = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
		if strings.EqualFold(addr, "localhost") {
			addr = DefaultForwardAddr.String()
		}
		a, err := netip.ParseAddr(addr)
		if err != nil {
			// "sctp:8080:80" is more likely a protocol than a host.
			word, _, more := strings.Cut(addr, ":")
			switch {
			case !bracketed && isWord(word) && more:
				return bad(fmt.Sprintf("protocol %q is not tcp or udp", word))
			case !bracketed && isWord(word):
				return bad(fmt.Sprintf("%q is neither a protocol (tcp or udp) nor an IP address", word))
			}
			return bad(fmt.Sprintf("host address %q is not an IP address", addr))
		}
		if a.Is6() && !a.Is4In6() && !bracketed {
			return bad("write an IPv6 host address in brackets, e.g. [::1]:8080:80")
		}
		if a.Zone() != "" {
			return bad("zoned IPv6 host addresses are not supported")
		}
		f.HostAddr = a.Unmap()
	}
	var err error
	if f.HostPort, err = parsePort("host port", host); err != nil {
		return bad(err.Error())
	}
	if f.GuestPort, err = parsePort("guest port", guest); err != nil {
		return bad(err.Error())
	}
	return f, nil
}

// isWord reports whether s is letters only, as a protocol's name is.
func isWord(s string) bool {
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return s != ""
}

// parsePort parses a port number 1-65535.
func parsePort(what, s string) (uint16, error) {
	if s == "" {
		return 0, fmt.Errorf("empty %s", what)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%s %q is not a number from 1 to 65535", what, s)
	}
	return uint16(n), nil
}
