package main

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/netback"
)

// A network that a group's members join is said, in its start line, by
// its socket's path: another user's --net user:NAME reads NAME in their
// own runtime directory.
func TestNetJoinValue(t *testing.T) {
	sock := filepath.Join(netback.HubDir(), "web.sock")
	tests := []struct {
		name     string
		bySocket bool
		group    bool
		want     string
	}{
		{"--name", false, false, "web"},
		{"--name --group", false, true, sock},
		{"--socket", true, false, sock},
		{"--socket --group", true, true, sock},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := joinValue("web", tt.bySocket, tt.group, sock); got != tt.want {
				t.Errorf("joinValue = %q, want %q", got, tt.want)
			}
		})
	}
}

// run's --net user:NAME, with no network NAME of this user's but root's
// socket of that name there, says how to join root's.
func TestNoHubErrorRootSocket(t *testing.T) {
	dir := t.TempDir()
	old := rootHubDirFor
	rootHubDirFor = func() string { return dir }
	defer func() { rootHubDirFor = old }()
	ln, err := net.Listen("unix", filepath.Join(dir, "web.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tests := []struct {
		spec, want, not string
	}{
		{"user:web", "join it with --net user:" + filepath.Join(dir, "web.sock"), ""},
		{"user:other", "start it with: smolvmm net --name other", "join it with"},
		{"user:" + filepath.Join(dir, "x.sock"), "start it with: smolvmm net --socket ", "join it with"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			msg := noHubError(tt.spec, netback.ErrNoHub).Error()
			if !strings.Contains(msg, tt.want) || tt.not != "" && strings.Contains(msg, tt.not) {
				t.Errorf("noHubError(%s) = %q, want %q, without %q", tt.spec, msg, tt.want, tt.not)
			}
			if !errors.Is(noHubError(tt.spec, netback.ErrNoHub), netback.ErrNoHub) {
				t.Error("ErrNoHub not wrapped")
			}
		})
	}
}
