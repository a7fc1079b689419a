//go:build !smolvmm_testhook

package main

import "github.com/smolvmm/smolvmm/vmm"

// installTestHook does nothing: a release build has no test hook.
func installTestHook(*vmm.Config) {}
