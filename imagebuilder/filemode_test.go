package imagebuilder_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/internal/imagecheck"
)

// TestBuildKeepsHostModes reads service files' modes back from the image:
// a host file of mode 0444 was given 0644, the rule for the binary's
// files (go:embed makes every one 0444) applied to the host's as well. A
// host file keeps its mode; the built-in basicrc, beside a user's
// common/ or in a built-in service, is 0644.
func TestBuildKeepsHostModes(t *testing.T) {
	imagecheck.Need(t, "debugfs")
	set := rescueSet(t, "tar")
	dir := t.TempDir()
	for p, mode := range map[string]os.FileMode{
		"svc/etc/rc":     0o755,
		"svc/etc/motd":   0o444,
		"svc/etc/secret": 0o400,
		"svc/etc/plain":  0o644,
		"common/extra":   0o444,
	} {
		fp := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fp, []byte("sh\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(fp, mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		service, dir string
		want         map[string]string // path in the image: its debugfs mode
	}{
		{"svc", dir, map[string]string{"/etc/motd": "0444", "/etc/secret": "0400", "/etc/plain": "0644", "/etc/include/extra": "0444", "/etc/include/basicrc": "0644"}},
		{"rescue", dir, map[string]string{"/etc/include/extra": "0444", "/etc/include/basicrc": "0644"}},
		{"rescue", "", map[string]string{"/etc/include/basicrc": "0644"}},
	} {
		t.Run(tc.service+"/"+filepath.Base(tc.dir), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "root.img")
			cfg := imagebuilder.Config{Sets: []string{set}, Service: loadService(t, tc.service, tc.dir), Timestamp: ts}
			if err := imagebuilder.Build(context.Background(), cfg, img); err != nil {
				t.Fatal(err)
			}
			for p, mode := range tc.want {
				got := imagecheck.Debugfs(t, img, "stat "+p)
				if want := "Mode:  " + mode + " "; !strings.Contains(got, want) {
					t.Errorf("%s: want %q in\n%s", p, want, got)
				}
			}
		})
	}
}
