package netback_test

import (
	"testing"

	"github.com/smolvmm/smolvmm/netback"
)

// TestStatsString: Lost sums every counter of what was dropped or
// refused, not the frames moved nor what is open now; String gives the
// frames moved, then each loss that is not zero, saying why.
func TestStatsString(t *testing.T) {
	tests := []struct {
		name string
		s    netback.Stats
		lost uint64
		want string
	}{
		{"nothing lost", netback.Stats{ToGuest: 5, FromGuest: 7, GatewayStats: netback.GatewayStats{ForwardsPending: 3, NATConns: 2, NATFlows: 1, DNSConns: 4, ForwardFlows: 6}},
			0, "5 frames to the guest, 7 from it"},
		{"dropped", netback.Stats{ToGuest: 1, Dropped: 2}, 2, "1 frames to the guest, 0 from it; 2 frames for the guest dropped, not taken fast enough"},
		{"unsent", netback.Stats{Unsent: 3}, 3, "0 frames to the guest, 0 from it; 3 frames from the guest dropped while the shared network was away"},
		{"delayed, not lost", netback.Stats{GatewayStats: netback.GatewayStats{NATHeldConns: 2}}, 0, "0 frames to the guest, 0 from it; 2 outgoing TCP connections delayed (SYN held back), too many being dialled or left unanswered by the guest"},
		{"all refusals", netback.Stats{GatewayStats: netback.GatewayStats{ForwardsRefused: 1, ForwardFlowsRefused: 2, NATRefusedConns: 3, NATRefusedFlows: 4, DNSRefused: 5, DNSRefusedConns: 6}}, 21,
			"0 frames to the guest, 0 from it; 1 forwarded TCP connections closed at once, too many waiting for the guest; " +
				"2 forwarded UDP datagrams of new clients dropped, at a forward's or the VM's most flows; 3 outgoing TCP connections refused, at the VM's most; " +
				"4 outgoing UDP flows refused, at the VM's most; 5 DNS queries answered SERVFAIL at once, too many being asked; 6 DNS TCP connections reset, at the VM's most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Lost(); got != tt.lost {
				t.Errorf("Lost() = %d, want %d", got, tt.lost)
			}
			if got := tt.s.String(); got != tt.want {
				t.Errorf("String() =\n%q, want\n%q", got, tt.want)
			}
		})
	}
}
