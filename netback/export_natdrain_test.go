package netback

import (
	"slices"

	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

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
