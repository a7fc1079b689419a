package main

import (
	"os"
	"testing"
)

// TestMain removes the binary smolvmmBin built (24 MiB in the temporary
// directory, once per run) after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}
