//go:build smolvmm_testhook

package main

import "os"

// The tests' build attempts testHookEnv's call in smolvmm net too, once
// the daemon is contained, as a network stack a VM took over would.
func init() {
	netAfterSetup = func() {
		if hook := os.Getenv(testHookEnv); hook != "" {
			runTestHook(hook)
		}
	}
}
