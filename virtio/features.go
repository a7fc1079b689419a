package virtio

// Device status bits (legacy register 18).
const (
	StatusAcknowledge = 0x01
	StatusDriver      = 0x02
	StatusDriverOK    = 0x04
	StatusFeaturesOK  = 0x08 // virtio 1.0 only; legacy drivers never set it
	StatusNeedsReset  = 0x40
	StatusFailed      = 0x80
)

// ISR bits (legacy register 19).
const (
	ISRQueue  = 0x01 // a used ring was updated
	ISRConfig = 0x02 // configuration (or device state) changed
)

// Transport feature bits shared by every device type.
const (
	FeatureNotifyOnEmpty = 24
	FeatureIndirectDesc  = 28
	FeatureEventIdx      = 29 // never offered: suppression uses the flags only
)

// Device types (the PCI subsystem ID of a legacy device).
const (
	TypeNet   = 1
	TypeBlock = 2
)

// Bit returns the feature mask for feature bit n (0-31).
func Bit(n uint) uint32 { return 1 << n }
