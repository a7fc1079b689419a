package imagebuilder

import (
	"os"
	"path/filepath"

	"github.com/smolvmm/smolvmm/internal/staledir"
)

// isoWorkPrefix begins the name of the directory in os.TempDir() that
// holds an ISO 9660 build's work tree, one staledir makes and locks.
const isoWorkPrefix = "smolvmm-iso-"

// isoWorkRoot is the work tree, the image's root, inside the directory.
const isoWorkRoot = "root"

// isoWorkTree makes the work tree go-diskfs copies a data directory into
// before it writes an ISO 9660 image, and returns it with the function
// that removes it. The tree is a copy of files that may be private
// (root's, or a user's under umask 077) given the modes the image's
// guest users need (0755, 0644: see isoMode): it lies in a directory of
// mode 0700, so no other user reaches it. A build killed leaves it
// behind; the next ISO 9660 build of the same user removes it (one that
// is not closed to others was not made here, and is left).
func isoWorkTree() (work string, done func(), err error) {
	staledir.RemoveDead(isoWorkPrefix, 0o077, nil)
	dir, done, err := staledir.Make(isoWorkPrefix+"*", nil)
	if err != nil {
		return "", nil, err
	}
	defer func() {
		if err != nil {
			done()
		}
	}()
	work = filepath.Join(dir, isoWorkRoot)
	if err := os.Mkdir(work, 0o755); err != nil {
		return "", nil, err
	}
	// The root's Rock Ridge mode is taken from here: 0755 whatever the
	// umask, as isoMode gives the directories below it.
	if err := os.Chmod(work, 0o755); err != nil {
		return "", nil, err
	}
	return work, done, nil
}
