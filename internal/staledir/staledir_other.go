//go:build !linux

package staledir

// networkFS is NetworkFS where file system types are not read (the
// magic numbers are Linux's, and NetBSD has no statfs): every directory
// may be on a network file system, so nothing dead is removed.
func networkFS(string) bool { return true }
