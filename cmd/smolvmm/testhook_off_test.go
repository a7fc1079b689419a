//go:build !smolvmm_testhook

package main

import (
	"testing"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestReleaseBuildHasNoTestHook: built as make build builds it (without
// the smolvmm_testhook tag), smolvmm ignores testHookEnv: no hook is armed
// whatever the environment says.
func TestReleaseBuildHasNoTestHook(t *testing.T) {
	t.Setenv(testHookEnv, "exec:/bin/sh")
	var cfg vmm.Config
	installTestHook(&cfg)
	if cfg.OnEvent != nil {
		t.Fatal("a build without the smolvmm_testhook tag armed the test hook")
	}
}
