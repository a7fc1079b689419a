package vmm

import (
	"sync/atomic"

	"github.com/bobuhiro11/gokvm/kvm"
)

// FakePMUDisable makes KVM say that it can disable a VM's PMU, and counts
// each KVM_ENABLE_CAP that would disable one in n instead of making it,
// until undo.
func FakePMUDisable(n *atomic.Int32) (undo func()) {
	check, enable := pmuCheck, pmuEnable
	pmuCheck = func(uintptr, kvm.Capability) (uintptr, error) { return pmuCapDisable, nil }
	pmuEnable = func(_ uintptr, a *enableCapArgs) error {
		if a.Cap == uint32(kvm.CapPMUCapability) && a.Args[0] == pmuCapDisable {
			n.Add(1)
		}
		return nil
	}
	return func() { pmuCheck, pmuEnable = check, enable }
}
