package bench

import (
	"time"

	"golang.org/x/sys/unix"
)

// MonoNow returns CLOCK_MONOTONIC in nanoseconds: the one clock that every
// process on the host shares, so that a child's phase times and the bench's
// own observations can be put on one axis.
func MonoNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		// CLOCK_MONOTONIC cannot fail on Linux; fall back to Go's clock
		// rather than report zero.
		return monoBase + time.Since(timeBase).Nanoseconds()
	}
	return ts.Nano()
}

// timeBase and monoBase are read together once, to convert Go times.
var (
	timeBase = time.Now()
	monoBase = func() int64 {
		var ts unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		return ts.Nano()
	}()
)

// MonoOf converts a time.Time that carries a monotonic reading (any
// time.Now() of this process) to CLOCK_MONOTONIC nanoseconds.
func MonoOf(t time.Time) int64 {
	return monoBase + t.Sub(timeBase).Nanoseconds()
}
