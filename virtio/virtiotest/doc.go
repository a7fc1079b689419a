// Package virtiotest is the driver side of legacy virtio for tests: it
// builds split rings and descriptor chains (direct and indirect) in fake
// guest memory, drives a transport's registers in the order NetBSD 9 does,
// and records interrupt levels. Device packages (blk, net) share it.
package virtiotest
