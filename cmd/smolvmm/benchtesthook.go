//go:build smolvmm_testhook

package main

import (
	"context"
	"fmt"
	"os"
)

// The tests' build of bench waits, with benchSetupEnv set to "wait", once
// it is set up and before its first VM starts, for its context to end:
// a test signals it there, in its setup, without racing its steps.
func init() {
	benchSetupDone = func(ctx context.Context) {
		if os.Getenv(benchSetupEnv) != "wait" {
			return
		}
		fmt.Fprintln(os.Stderr, benchSetupWaitLine)
		<-ctx.Done()
	}
}
