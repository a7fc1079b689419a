package vmm

import "github.com/smolvmm/smolvmm/internal/portready"

// SetReadyLookup makes New and Restore look ReadyAddr's host name up with
// f until the returned restore is called.
func SetReadyLookup(f portready.LookupFunc) (restore func()) {
	old := lookupReadyHost
	lookupReadyHost = f
	return func() { lookupReadyHost = old }
}
