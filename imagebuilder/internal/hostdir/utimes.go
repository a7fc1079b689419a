//go:build !(linux && (386 || arm || mips || mipsle))

package hostdir

// lutimes sets the times through utimensat, whose struct timespec has
// 64-bit seconds here.
func lutimes(path string, atime, mtime Timespec) error { return utimes32(path, atime, mtime) }
