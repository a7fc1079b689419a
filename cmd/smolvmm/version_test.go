package main

import (
	"os/exec"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionText: the module version, the VCS revision with whether the
// tree was modified, and the Go version; "(devel)" and no revision when
// the build recorded none.
func TestVersionText(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"release", &debug.BuildInfo{GoVersion: "go1.24.1", Main: debug.Module{Version: "v1.2.3"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "false"}}},
			"smolvmm v1.2.3 (revision " + rev + ") built with go1.24.1"},
		// Go 1.24 on stamps a checkout's commit as a pseudo-version.
		{"checkout, modified", &debug.BuildInfo{GoVersion: "go1.24.1", Main: debug.Module{Version: "v0.0.0-20261205111735-0123456789ab+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "true"}}},
			"smolvmm v0.0.0-20261205111735-0123456789ab+dirty (revision " + rev + ", modified) built with go1.24.1"},
		{"modified tree, older Go", &debug.BuildInfo{GoVersion: "go1.23.1", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "true"}}},
			"smolvmm (devel) (revision " + rev + ", modified) built with go1.23.1"},
		{"no VCS", &debug.BuildInfo{GoVersion: "go1.24.1", Main: debug.Module{Version: "(devel)"}},
			"smolvmm (devel) (no VCS revision recorded) built with go1.24.1"},
		{"no version", &debug.BuildInfo{GoVersion: "go1.24.1"},
			"smolvmm (devel) (no VCS revision recorded) built with go1.24.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionText(tt.bi); got != tt.want {
				t.Errorf("versionText = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestVersionCommand: smolvmm --version and smolvmm version print the same
// line and exit 0 (--version was "unknown flag", status 2); built from a
// checkout, the line names the commit it was built from.
func TestVersionCommand(t *testing.T) {
	bin := smolvmmBin(t)
	var first string
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatalf("smolvmm %s: %v", strings.Join(args, " "), err)
		}
		line := string(out)
		if !regexp.MustCompile(`^smolvmm \S+ \((revision [0-9a-f]{40}(, modified)?|no VCS revision recorded)\) built with go\S+\n$`).MatchString(line) {
			t.Errorf("smolvmm %s printed %q", strings.Join(args, " "), line)
		}
		if first == "" {
			first = line
		} else if line != first {
			t.Errorf("smolvmm version printed %q, smolvmm --version %q", line, first)
		}
	}
	// A binary go build stamped names the commit it was built from: this
	// checkout's HEAD. go build stamps none with -buildvcs=false (in
	// GOFLAGS on some machines) or in a git worktree, whose .git is a file
	// it does not recognize.
	m := regexp.MustCompile(`\(revision ([0-9a-f]{40})`).FindStringSubmatch(first)
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	switch {
	case m == nil:
		t.Logf("the test binary has no VCS revision (go env GOFLAGS, or a git worktree): not compared with the checkout's HEAD")
	case err != nil:
		t.Logf("git rev-parse HEAD: %v: revision %s not compared", err, m[1])
	case m[1] != strings.TrimSpace(string(head)):
		t.Errorf("smolvmm --version names revision %s, but the checkout's HEAD is %s", m[1], strings.TrimSpace(string(head)))
	}
	for _, args := range [][]string{{"version", "extra"}, {"--version", "run"}} {
		err := exec.Command(bin, args...).Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("smolvmm %s: %v, want status 2", strings.Join(args, " "), err)
		}
	}
}
