package netback_test

import (
	"os"
	"os/exec"
	"testing"
)

// The package builds where int is 32 bits (GOARCH=386): a constant above
// an int32, such as the largest group id, must not be an untyped int
// compared with an int.
func TestBuilds32Bit(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the package (-short)")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go command is not on PATH: %v", err)
	}
	cmd := exec.Command(gobin, "build", ".")
	cmd.Env = append(os.Environ(), "GOARCH=386", "GOOS=linux", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOARCH=386 go build: %v\n%s", err, out)
	}
}
