package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestUserWithoutSetuidCaps: root started without CAP_SETUID or
// CAP_SETGID (setpriv drops them from the bounding set, as a service's
// CapabilityBoundingSet does) is refused --user and --uid/--gid before
// any setup, status 2, with the capability missing and what to do: it
// failed after the whole VM setup with "setresuid(65534): operation not
// permitted" or "setgroups(none): ...". The KVM device given does not
// exist, so a refusal that comes after the setup starts says so instead.
// Without CAP_SETPCAP only, --user is accepted (the bounding set is
// kept): the setup starts and meets the missing device.
func TestUserWithoutSetuidCaps(t *testing.T) {
	setpriv := rootSetpriv(t, "") // contain_test.go
	nobody := nobodyUser(t)
	ids := []string{"--uid", fmt.Sprint(nobody.UID), "--gid", fmt.Sprint(nobody.GID)}
	idsGiven := fmt.Sprintf("--uid %d --gid %d", nobody.UID, nobody.GID)
	refusal := func(given, missing, without string) string {
		return "smolvmm demo: " + given + ": changing the VMM's user takes CAP_SETUID and CAP_SETGID, and smolvmm was started as root without " + missing +
			" (a service's CapabilityBoundingSet, a container's dropped capabilities); start it as root with " + missing + ", or without " + without + "\n"
	}
	kvm := filepath.Join(t.TempDir(), "kvm")
	noKVM := "smolvmm demo: open " + kvm + ": KVM is not available: no such file or directory (no KVM device at this path: check it)\n"
	for _, tt := range []struct {
		drop   string
		user   []string
		status int
		want   string
	}{
		{"-setuid", []string{"--user", "nobody"}, 2, refusal("--user nobody", "CAP_SETUID", "--user")},
		{"-setgid", []string{"--user", "nobody"}, 2, refusal("--user nobody", "CAP_SETGID", "--user")},
		{"-setuid,-setgid", []string{"--user", "nobody"}, 2, refusal("--user nobody", "CAP_SETUID and CAP_SETGID", "--user")},
		{"-setuid", ids, 2, refusal(idsGiven, "CAP_SETUID", "--uid and --gid")},
		{"-setgid", ids, 2, refusal(idsGiven, "CAP_SETGID", "--uid and --gid")},
		{"-setpcap", []string{"--user", "nobody"}, 1, noKVM},
		{"-setuid", nil, 1, noKVM},
	} {
		t.Run(tt.drop+" "+strings.Join(tt.user, " "), func(t *testing.T) {
			args := append([]string{"--bounding-set", tt.drop, "--inh-caps=-all", "--", smolvmmBin(t), "demo", "--kvm-device", kvm}, tt.user...)
			_, stderr, status := runProgramIn(t, "", setpriv, args...) // snapshotsafe_test.go
			if status != tt.status || stderr != tt.want {
				t.Errorf("status %d, stderr:\n%s\nwant status %d, stderr:\n%s", status, stderr, tt.status, tt.want)
			}
		})
	}
}

// TestDropCapsMissing: the capabilities a drop to another user takes
// that an effective set lacks; CAP_SETPCAP is not one of them.
func TestDropCapsMissing(t *testing.T) {
	const uid, gid, pcap = 1 << unix.CAP_SETUID, 1 << unix.CAP_SETGID, 1 << unix.CAP_SETPCAP
	for _, tt := range []struct {
		effective uint32
		want      string
	}{
		{^uint32(0), ""},
		{uid | gid, ""},
		{^uint32(pcap), ""},
		{^uint32(uid), "CAP_SETUID"},
		{^uint32(gid), "CAP_SETGID"},
		{pcap, "CAP_SETUID and CAP_SETGID"},
		{0, "CAP_SETUID and CAP_SETGID"},
	} {
		if got := dropCapsMissing(tt.effective); got != tt.want {
			t.Errorf("dropCapsMissing(%#x) = %q, want %q", tt.effective, got, tt.want)
		}
	}
}
