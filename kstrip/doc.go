// Package kstrip disables a NetBSD kernel's unneeded drivers by editing its
// autoconfiguration table (the global cfdata array) in the kernel file,
// the way NetBSD's boot-time userconf does in memory.
//
// Parse reads the table from an ELF image (any byte order, 32- or 64-bit
// pointers, NetBSD 9's struct cfdata or 10's, told by the kernel's version
// note and checked against the table), Kernel.Plan decides which entries to enable or disable from a
// keep list, and Kernel.Apply writes only the cf_fstate fields of the
// entries it changes. ReadFile and WriteFile read and write kernel files,
// gzipped or not, replacing files atomically.
package kstrip

// Revision names what Plan decides for a kernel and a keep list. Bump it
// in any change after which the same kernel and keep list are stripped
// differently (another entry kept, enabled or disabled), so that kernels
// stripped earlier are known to be stale: smolvmm up keys its cache of
// stripped kernels by it.
//
// 1: the first revision counted.
// 2: NetBSD 10 kernels (one-byte cf_fstate after a 24-bit cf_unit) are
// stripped right; revision 1 wrote their states into the units.
const Revision = 2
