// Package protlink applies, in user space, the rule the kernel's
// fs.protected_symlinks applies to the links it follows: code that reads a
// symlink and then works on the file it names (to replace that file by
// rename, say) bypasses the kernel's check, and a root process would
// otherwise follow a link another user planted in /tmp to any file.
package protlink

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrUnsafe is matched (errors.Is) by Check's refusal.
var ErrUnsafe = errors.New("symlink owned by another user in a sticky world-writable directory")

// Check refuses symlink link (fi its Lstat) where fs.protected_symlinks
// would: in a sticky directory others may write to (as /tmp), a link is
// followed only if this process's effective user or the directory's
// owner owns it. The refusal names the link, its owner and its directory
// and matches ErrUnsafe.
func Check(link string, fi os.FileInfo) error {
	lst, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	dir := filepath.Dir(link)
	dfi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory of symlink %s: %w", link, err)
	}
	dst, ok := dfi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return CheckOwners(link, lst.Uid, dst.Uid, uint32(dst.Mode))
}

// CheckOwners is Check for a link whose owner and whose directory's owner
// and mode (st_mode) are known already, say from descriptors that pin
// them, so that nothing is looked up again by name.
func CheckOwners(link string, linkUID, dirUID, dirMode uint32) error {
	if dirMode&syscall.S_ISVTX == 0 || dirMode&0o002 == 0 {
		return nil
	}
	if int(linkUID) == os.Geteuid() || linkUID == dirUID {
		return nil
	}
	return fmt.Errorf("%s (owned by uid %d, in %s): %w", link, linkUID, filepath.Dir(link), ErrUnsafe)
}
