package service_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/service"
)

// TestNamesFollowsLinks: a service directory that is a symlink to a
// directory inside the service directory, which Load follows, is listed
// among the known services (the "no service" error left it out, listing
// only real directories); a link that leaves the directory, leads to
// nothing or to a file is not.
func TestNamesFollowsLinks(t *testing.T) {
	outside := t.TempDir()
	write(t, outside, map[string]string{"away/etc/rc": "sh\n"})
	dir := t.TempDir()
	write(t, dir, map[string]string{"real/etc/rc": "sh\n", "shared/c": "x\n", "file": "x\n"})
	links := map[string]string{
		"rel":      "real",
		"abs":      filepath.Join(dir, "real"),
		"out":      filepath.Join(outside, "away"),
		"dotdot":   "../" + filepath.Base(outside) + "/away",
		"dangling": "gone",
		"tofile":   "file",
		"common":   "shared",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	names, err := service.Names(dir)
	if err != nil {
		t.Fatal(err)
	}
	const want = "[abs base real rel rescue shared]"
	if got := fmt.Sprint(names); got != want {
		t.Errorf("Names = %s, want %s", got, want)
	}
	for _, name := range []string{"rel", "abs"} {
		if _, err := service.Load(name, dir); err != nil {
			t.Errorf("Load(%s), a listed name: %v", name, err)
		}
	}
	_, err = service.Load("nosuch", dir)
	if want := `no service "nosuch" (known: abs, base, real, rel, rescue, shared)`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Load(nosuch): %v, want %q", err, want)
	}
}
