//go:build !cgo

package sandbox

// linkedWithLibc: built with cgo, so threads are started by glibc.
const linkedWithLibc = false
