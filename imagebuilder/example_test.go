package imagebuilder_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/service"
)

func ExampleRunPostinst() {
	dir, _ := os.MkdirTemp("", "services")
	defer os.RemoveAll(dir)
	os.MkdirAll(filepath.Join(dir, "web/etc"), 0755)
	os.MkdirAll(filepath.Join(dir, "web/postinst"), 0755)
	os.WriteFile(filepath.Join(dir, "web/etc/rc"), []byte(". /etc/include/basicrc\nhttpd\n"), 0644)
	os.WriteFile(filepath.Join(dir, "web/postinst/10-index.sh"), []byte("mkdir -p var/www && echo hello > var/www/index.html\n"), 0644)
	svc, err := service.Load("web", dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	t := fstree.New()
	if err := imagebuilder.RunPostinst(context.Background(), t, svc, nil); err != nil {
		fmt.Println(err)
		return
	}
	n, _ := t.Get("var/www/index.html")
	fmt.Printf("%q\n", n.Content())
	// Output: "hello\n"
}
