package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

// up --jail's VM is run's, in a process of its own, yet its warnings and
// counters are said as up's, as its errors are and as without --jail:
// "smolvmm up: network user: ...", no line of "smolvmm run:".
func TestUpJailLinesPrefix(t *testing.T) {
	needJail(t) // jail_test.go
	bin := smolvmmBin(t)
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: gzipBytes(buildUpGuest(t)),
		Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet()}})
	defer srv.Close()
	for _, jail := range []string{"", "--jail"} {
		t.Run("jail="+jail, func(t *testing.T) {
			work := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			args := []string{"up", "--mirror", srv.Mirror(), "--cache", filepath.Join(work, "cache"), "-m", "16", "-v", "--net", "user"}
			if jail != "" {
				args = append(args, jail)
			}
			cmd := exec.CommandContext(ctx, bin, append(args, "rescue")...)
			cmd.Dir = work
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			out := stderr.String()
			if ctx.Err() != nil {
				t.Fatalf("up %s: %v\n%s", jail, err, out)
			}
			if !strings.Contains(out, "smolvmm up: network user: ") || strings.Contains(out, "smolvmm run:") {
				t.Errorf("up %s -v --net user: lines not said as up's:\n%s", jail, out)
			}
		})
	}
}

// The jailed VMM speaks as the command its parent says (up's VM as up),
// never as one the user's own SMOLVMM_JAILED_FOR names.
func TestJailedForFromUserIgnored(t *testing.T) {
	needJail(t)
	kern := filepath.Join(t.TempDir(), "zero.kern")
	if err := os.WriteFile(kern, make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(smolvmmBin(t), "run", "--jail", "--net", "none", "-k", kern)
	cmd.Env = append(os.Environ(), jailForEnv+"=up")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	out := stderr.String()
	if err == nil || !strings.Contains(out, "smolvmm run: ") || strings.Contains(out, "smolvmm up:") {
		t.Errorf("run --jail of a kernel of zeros with %s=up: %v, want an error said as run's:\n%s", jailForEnv, err, out)
	}
}
