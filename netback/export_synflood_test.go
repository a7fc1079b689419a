package netback

// NATHandshakesPerGuest is natHandshakesPerGuest; NATSetupPerGuest the
// most connections a guest has being set up, dialled or in its
// handshake.
const (
	NATHandshakesPerGuest = natHandshakesPerGuest
	NATSetupPerGuest      = natDialsPerGuest + natHandshakesPerGuest
)

// HubGatewayQueued is how many frames wait in h's queue towards its
// gateway.
func HubGatewayQueued(h *Hub) int { return len(h.gw.in.ch) }
