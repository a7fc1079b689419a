package snapshot_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/smolvmm/smolvmm/snapshot"
)

// A Target replaces a snapshot file only with a complete snapshot. A
// program with a machine passes m.Snapshot to Write:
//
//	err := t.Write(func(w io.Writer) error { _, err := m.Snapshot(w); return err })
//
// Here the snapshot is one written by hand.
func ExampleTarget() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "vm.snap")

	t, err := snapshot.OpenTarget(path)
	var te *snapshot.TargetError
	if errors.Is(err, snapshot.ErrInUse) && errors.As(err, &te) {
		log.Fatalf("%s is in use by %s", te.Path, te.Holder)
	} else if err != nil {
		log.Fatal(err)
	}
	mem := make([]byte, 16*snapshot.PageSize)
	err = t.Write(func(w io.Writer) error {
		_, err := snapshot.Write(w, snapshot.NIC{}, []byte(`{}`), mem)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("committed:", t.Close())

	f, err := snapshot.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	fmt.Println("memory:", f.Header.MemSize, "bytes")
	ents, _ := os.ReadDir(dir)
	fmt.Println("files:", len(ents))
	// Output:
	// committed: true
	// memory: 65536 bytes
	// files: 1
}
