package net

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestNoNetworkStackLinked keeps the device model free of the user
// network's dependencies: the device owns its Backend interface, so neither
// netback nor gVisor may be among the package's (non-test) dependencies.
func TestNoNetworkStackLinked(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		goTool = p
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %q", deps)
	}
	for _, d := range deps {
		if strings.Contains(d, "gvisor") || strings.HasSuffix(d, "/netback") || strings.Contains(d, "/netback/") {
			t.Errorf("virtio/net depends on %s", d)
		}
	}
}
