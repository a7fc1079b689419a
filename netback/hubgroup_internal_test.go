package netback

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// TestHubGroupOutOfRange: a Group no file can have is refused, naming
// the field, before the socket is made. lchown(2) took 4294967295 as
// "unchanged" and cut larger ids to 32 bits: 4294967296 gave the socket,
// mode 0660, to root's group.
func TestHubGroupOutOfRange(t *testing.T) {
	for _, id := range []int64{1<<32 - 1, 1 << 32, 99999999999} {
		t.Run(strconv.FormatInt(id, 10), func(t *testing.T) {
			gid := groupInt(t, id)
			sock := filepath.Join(testsock.Dir(t), "g.sock")
			h, err := NewHub(HubConfig{Socket: sock, Group: gid})
			if err == nil {
				h.Close()
			}
			want := "shared network: Group " + strconv.Itoa(gid) + " is out of range: group ids go up to 4294967294 (0 for none)"
			if err == nil || err.Error() != want {
				t.Errorf("NewHub: %v; want %q", err, want)
			}
			if _, err := os.Lstat(sock); err == nil {
				t.Errorf("the socket was made")
			}
		})
	}
}

// A group's id at the top of the range is not refused as out of it:
// the hub starts when the process may give the socket that group
// (root), or fails at lchown, not at the range.
func TestHubGroupTopOfRange(t *testing.T) {
	gid := groupInt(t, 4294967294)
	sock := filepath.Join(testsock.Dir(t), "g.sock")
	h, err := NewHub(HubConfig{Socket: sock, Group: gid})
	if err != nil && strings.Contains(err.Error(), "out of range") {
		t.Fatalf("NewHub: %v; want 4294967294 taken as a group", err)
	}
	if err == nil {
		h.Close()
	}
}

// groupInt returns id as a HubConfig.Group, or skips the test where int
// is 32 bits and cannot hold it (no Group there is above the range).
func groupInt(t *testing.T, id int64) int {
	t.Helper()
	if int64(int(id)) != id {
		t.Skipf("group id %d is not an int on this platform", id)
	}
	return int(id)
}
