package vmm

import (
	"context"
	"fmt"
	"net"

	"github.com/smolvmm/smolvmm/internal/portready"
)

// lookupReadyHost looks Config.ReadyAddr's host name up; tests fake it.
var lookupReadyHost portready.LookupFunc = net.DefaultResolver.LookupNetIP

// resolveReadyAddr resolves Config.ReadyAddr (checkWatchers passed it),
// in New or Restore, into the IP addresses and port the prober dials
// (none without one; the loopback addresses for an empty host). A name
// dialed by the prober was looked up while Run ran: under BeforeRun's
// sandbox, which stops the process at what a lookup does (uname, reading
// /etc/hosts), and by goroutines of the resolver's that Run did not wait
// for.
func resolveReadyAddr(addr string) ([]string, error) {
	if addr == "" {
		return nil, nil
	}
	addrs, err := portready.Resolve(context.Background(), addr, lookupReadyHost)
	if err != nil {
		return nil, &Error{Op: "ready address", Err: fmt.Errorf("%q: %w: %w", addr, err, ErrConfig),
			Hint: "give a host name that resolves, or an IP address", Field: "ReadyAddr"}
	}
	return addrs, nil
}
