//go:build !amd64 && !386

package vmm

// guestStatePerm says the permission cannot be read: arch_prctl is x86's,
// and so are the guests this package runs, so a KVM here has no identity
// a snapshot could use.
func guestStatePerm() (uint64, bool) { return 0, false }
