package rebuild_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/smolvmm/smolvmm/imagebuilder/ext2"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/rebuild"
)

// buildImage writes an ext2 image to path, as mkimg would, dated at.
func buildImage(path string, at time.Time) {
	f, _ := os.Create(path)
	_ = ext2.Write(f, fstree.New(), ext2.Options{Size: 1 << 20})
	_ = f.Close()
	_ = os.Chtimes(path, at, at)
}

// A service's image is built again when it is missing, older than a set
// or (where no stamp records the service's digest, as here) than the
// service's files, or not an image at all.
func ExampleImage_Check() {
	dir, _ := os.MkdirTemp("", "rebuild-example-")
	defer os.RemoveAll(dir)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	set := filepath.Join(dir, "base.tgz")
	_ = os.WriteFile(set, nil, 0o644)
	_ = os.Chtimes(set, t0, t0)

	im := rebuild.Image{
		Path:        filepath.Join(dir, "web.img"),
		ServiceTime: t0.Add(time.Hour), // the service's newest file
		Sets:        []string{set},
	}
	check := func(what string) {
		v, err := im.Check()
		fmt.Printf("%s: %v %v\n", what, v, err)
	}
	check("before the first build")
	buildImage(im.Path, t0.Add(2*time.Hour))
	check("built after its inputs")
	im.ServiceTime = t0.Add(3 * time.Hour)
	check("a service file edited since")
	_ = os.WriteFile(im.Path, []byte("not a disk\n"), 0o644)
	check("another file under its name")
	// Output:
	// before the first build: missing <nil>
	// built after its inputs: fresh <nil>
	// a service file edited since: older than its inputs <nil>
	// another file under its name: not an ext2 image <nil>
}

// A stamp beside the image records the service's digest (ServiceDigest)
// and the image builder's revision, and an image built from another
// service, another version of it, or another builder is built again,
// whatever the dates.
func ExampleStamp() {
	dir, _ := os.MkdirTemp("", "rebuild-example-")
	defer os.RemoveAll(dir)
	img := filepath.Join(dir, "web.img")
	buildImage(img, time.Now())
	stamp := rebuild.Stamp(filepath.Join(dir, "images", "web.service"))
	_ = stamp.Record(img, "digest-1", 3, "")

	for _, im := range []rebuild.Image{
		{Path: img, Digest: "digest-1", Builder: 3, Stamp: stamp},
		{Path: img, Digest: "digest-2", Builder: 3, Stamp: stamp},
		{Path: img, Digest: "digest-1", Builder: 4, Stamp: stamp},
	} {
		v, _ := im.Check()
		fmt.Printf("%s, builder %d: %v\n", im.Digest, im.Builder, v)
	}

	// A new file under the image's name is not the one the stamp describes.
	buildImage(img+".new", time.Now())
	_ = os.Rename(img+".new", img)
	fmt.Println("stamp describes the new file:", stamp.Describes(img))
	// Output:
	// digest-1, builder 3: fresh
	// digest-2, builder 3: built from another service or version of it
	// digest-1, builder 4: built by an older image builder
	// stamp describes the new file: false
}
