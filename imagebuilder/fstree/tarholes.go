package fstree

import (
	"archive/tar"
	"fmt"
)

// holeReader reads the content of a set's members for AddTar, and fails
// once the tar reader has made up more than limit bytes: the holes of
// sparse members (GNU tar --sparse), which archive/tar hands out as
// zeros, one by one. A few header bytes can declare a 4 GiB hole, and
// reading one through takes about a second, so without a bound a small
// archive would stall a build for minutes.
type holeReader struct {
	tr    *tar.Reader
	in    *countReader // the archive, as tr reads it
	out   int64        // content bytes read
	limit int64
	err   error // the error for too many holes, once they passed limit
}

// newHoleReader reads the content of tr's members, tr reading in; the
// set's holes may come to twice the largest file t takes.
func (t *Tree) newHoleReader(tr *tar.Reader, in *countReader) *holeReader {
	limit := int64(MaxFileSize)
	if t.FileLimit > 0 {
		limit = min(limit, t.FileLimit)
	}
	return &holeReader{tr: tr, in: in, limit: 2 * limit}
}

// Read reads the current member's content. The bytes it returned beyond
// those the archive held are holes (headers and padding counted as held,
// so the holes are if anything undercounted).
func (h *holeReader) Read(p []byte) (int, error) {
	if h.err != nil {
		return 0, h.err
	}
	n, err := h.tr.Read(p)
	h.out += int64(n)
	if h.out-h.in.n > h.limit {
		h.err = fmt.Errorf("the set's sparse files hold more than %d bytes of holes, the most a set may (twice the largest file it may hold), each read as zeros: leave large sparse files out of the set, or make it a directory, whose holes are not read", h.limit)
		return 0, h.err
	}
	return n, err
}
