package fstree

import (
	"fmt"
	"time"

	"github.com/smolvmm/smolvmm/internal/termsafe"
)

// The modification times ext2 stores: a 32-bit count of seconds, which
// NetBSD reads signed (ext2fs_dinode_time_get), so from 1901 to 2038.
const (
	MinTime = -1 << 31  // 1901-12-13T20:45:52Z
	MaxTime = 1<<31 - 1 // 2038-01-19T03:14:07Z
)

// ClampTime returns sec moved into [MinTime, MaxTime], the nearest time
// ext2 stores, and whether it had to move.
func ClampTime(sec int64) (int64, bool) {
	c := min(max(sec, MinTime), MaxTime)
	return c, c != sec
}

// clampedTimes gathers the entries of one set whose modification time
// was clamped, for one warning per set.
type clampedTimes struct {
	n        int
	first    string // the first such entry, as the set names it
	was, now int64  // its time, and the one it got
}

// mtime returns sec clamped to what ext2 stores, noting entry name if it
// had to move.
func (c *clampedTimes) mtime(name string, sec int64) int64 {
	now, moved := ClampTime(sec)
	if moved {
		if c.n == 0 {
			c.first, c.was, c.now = name, sec, now
		}
		c.n++
	}
	return now
}

// warn adds to t.Warnings the warning for set name, if any time was
// clamped. The entry's name, the set's bytes, is escaped for the terminal.
func (c *clampedTimes) warn(t *Tree, name string) {
	if c.n == 0 {
		return
	}
	entries := "1 entry has a modification time"
	if c.n > 1 {
		entries = fmt.Sprintf("%d entries have modification times", c.n)
	}
	utc := func(sec int64) string { return time.Unix(sec, 0).UTC().Format(time.RFC3339) }
	t.Warnings = append(t.Warnings, fmt.Sprintf("%s: %s ext2 cannot store (it stores %s to %s); each is stored as the nearest it can: %s's %s as %s",
		name, entries, utc(MinTime), utc(MaxTime), termsafe.Printable(c.first), utc(c.was), utc(c.now)))
}
