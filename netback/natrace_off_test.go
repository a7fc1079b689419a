//go:build !race

package netback_test

// raceEnabled says the race detector is on (natrace_on_test.go).
const raceEnabled = false
