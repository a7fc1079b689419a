//go:build race

package netback_test

// raceEnabled says the race detector is on: it grows every allocation,
// so that heap sizes say nothing of the code's.
const raceEnabled = true
