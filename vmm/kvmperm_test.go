package vmm

import (
	"io/fs"
	"strings"
	"testing"
)

// TestKVMPermissionHint: the advice for a user refused /dev/kvm names the
// device's group only when that group may read and write it and is not
// root's; it named "the kvm group" whatever the device was, so that with
// /dev/kvm crw------- root root, and no kvm group at all, it told the user
// to join a group that does not exist and would not help.
func TestKVMPermissionHint(t *testing.T) {
	const access = "give your user read and write access to /dev/kvm"
	tests := []struct {
		name  string
		mode  fs.FileMode
		group string
		want  string // the hint starts so
	}{
		{"group kvm rw", fs.ModeDevice | fs.ModeCharDevice | 0o660, "kvm", "add your user to the kvm group (sudo usermod -aG kvm $USER, then log in again)"},
		{"another group rw", fs.ModeDevice | fs.ModeCharDevice | 0o660, "hypervisor", "add your user to the hypervisor group (sudo usermod -aG hypervisor $USER"},
		{"owner only, root's group", fs.ModeDevice | fs.ModeCharDevice | 0o600, "root", access},
		{"owner only, group kvm", fs.ModeDevice | fs.ModeCharDevice | 0o600, "kvm", access},
		{"group read only", fs.ModeDevice | fs.ModeCharDevice | 0o640, "kvm", access},
		{"group rw, root's group", fs.ModeDevice | fs.ModeCharDevice | 0o660, "root", access},
		{"group unknown", fs.ModeDevice | fs.ModeCharDevice | 0o660, "", access},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := kvmPermissionHint(tt.mode, tt.group)
			if !strings.HasPrefix(got, tt.want) || !strings.HasSuffix(got, "or run as root") {
				t.Errorf("hint %q, want it to start %q and end \"or run as root\"", got, tt.want)
			}
			if tt.want == access && strings.Contains(got, "group") {
				t.Errorf("hint %q names a group", got)
			}
		})
	}
}
