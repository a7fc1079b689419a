package netback

import "net"

// NewHubWithUsers is NewHub whose VMs' processes run as uid says at each
// join (SO_PEERCRED's stand-in) and whose NAT budget is sized from
// nofile descriptors rather than RLIMIT_NOFILE.
func NewHubWithUsers(cfg HubConfig, uid func() int, nofile uint64) (*Hub, error) {
	return newHub(cfg, hubHooks{
		peerUID: func(net.Conn) (int, error) { return uid(), nil },
		nofile:  func() uint64 { return nofile },
	})
}
