// Package starttime records when the program started, as early as a Go
// package can: it imports only time, so Go's initialisation order (imports
// first, then by import path) runs it right after time itself, before the
// hundreds of packages whose initialisation makes up most of a smolvmm
// start. Only the kernel's exec and the Go runtime's own set-up come before.
package starttime

import "time"

// At is the program's start, with a monotonic clock reading.
var At = time.Now()
