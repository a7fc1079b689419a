package netback

import (
	"slices"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// SetNATDrainTimeout sets how long a relayed TCP connection's gateway
// endpoint may keep data for its guest once the relay is over, until the
// returned function restores it. Set it before starting the network.
func SetNATDrainTimeout(d time.Duration) (restore func()) {
	old := natDrainFor
	natDrainFor = d
	return func() { natDrainFor = old }
}

// UserTCPStates are the states of u's gateway's TCP endpoints but its
// listeners, sorted.
func UserTCPStates(u *User) []string {
	var states []string
	for _, te := range u.gw.stack.RegisteredEndpoints() {
		ep, ok := te.(*tcp.Endpoint)
		if !ok || ep.EndpointState() == tcp.StateListen {
			continue
		}
		states = append(states, ep.EndpointState().String())
	}
	slices.Sort(states)
	return states
}
