package imagebuilder

import (
	"context"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestPostinstManyDirsLowLimit: a set with more directories than the
// descriptor limit allows builds. Holding every staged directory open
// took every descriptor, and the scripts' own open or fork then failed
// ("too many open files").
func TestPostinstManyDirsLowLimit(t *testing.T) {
	var was unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &was); err != nil {
		t.Fatal(err)
	}
	low := was
	low.Cur = 1024
	if low.Max < low.Cur {
		t.Skipf("the hard descriptor limit %d is below %d", low.Max, low.Cur)
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &was)
	tr := fstree.New()
	for i := range 1200 {
		tr.Put(fmt.Sprintf("var/d%d", i), fstree.NewDir(0o755))
	}
	tr.Put("etc", fstree.NewDir(0o755))
	svc := scriptService(t, "mv var/d7 var/moved\n")
	if err := RunPostinst(context.Background(), tr, svc, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Get("var/moved"); err != nil {
		t.Errorf("the script's rename is not in the tree: %v", err)
	}
}
