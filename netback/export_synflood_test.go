package netback

// NATHandshakesPerGuest is natHandshakesPerGuest; NATSetupPerGuest the
// most connections a guest has being set up, dialled or in its
// handshake.
const (
	NATHandshakesPerGuest = natHandshakesPerGuest
	NATSetupPerGuest      = natDialsPerGuest + natHandshakesPerGuest
)
