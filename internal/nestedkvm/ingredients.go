package nestedkvm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Modules are the kernel modules /init loads, in this order, under
// lib/modules/<version>/kernel/: kvm-amd.ko needs kvm.ko, which needs
// irqbypass.ko; kvm-amd.ko also links against ccp.ko (AMD's SEV).
var Modules = []string{
	"virt/lib/irqbypass.ko",
	"drivers/crypto/ccp/ccp.ko",
	"arch/x86/kvm/kvm.ko",
	"arch/x86/kvm/kvm-amd.ko",
}

// Ingredients are the host files a rig run is built from.
type Ingredients struct {
	// Kernel is the Linux kernel QEMU boots: its uncompressed vmlinux
	// (entered through PVH, see pvh.go) where it can be made, else the
	// package's bzImage (/boot/vmlinuz-*).
	Kernel  string
	Modules []string // the files of Modules, uncompressed, in load order
	Busybox string   // a static busybox
	// Packages names the Debian packages and versions the files come
	// from, for the test log.
	Packages string
	// Fallback, if not empty, says which cached packages stand in for
	// the candidates apt could not provide, and why (for the test log).
	Fallback string
}

// FetchIngredients returns the rig's ingredients from the Debian packages
// in cacheDir (CacheDir() in tests), downloading the candidate versions with
// apt-get the first time. Errors wrap ErrUnavailable where this machine
// lacks apt or the network.
func FetchIngredients(cacheDir string) (Ingredients, error) {
	// One apt-cache call for both (each costs some 0.6 s here).
	var kpkg, kver, bver string
	fields, lookupErr := aptShow("linux-image-amd64", "busybox-static")
	if lookupErr == nil {
		bver = fields["busybox-static"]["Version"]
		if kpkg, kver, lookupErr = kernelDepends(fields["linux-image-amd64"]); lookupErr == nil && kver == "" {
			var kf map[string]map[string]string
			if kf, lookupErr = aptShow(kpkg); lookupErr == nil {
				kver = kf[kpkg]["Version"]
			}
		}
	}
	if lookupErr != nil && !errors.Is(lookupErr, ErrUnavailable) {
		return Ingredients{}, lookupErr
	}
	kernel, err := fetchPackage(cacheDir, kpkg, kver, "linux-image-", lookupErr, keepKernelFile)
	if err != nil {
		return Ingredients{}, err
	}
	bb, err := fetchPackage(cacheDir, "busybox-static", bver, "busybox-static_", lookupErr, func(name string) string {
		if name == "bin/busybox" {
			return name
		}
		return ""
	})
	if err != nil {
		return Ingredients{}, err
	}
	ing := Ingredients{
		Busybox:  filepath.Join(bb.Root, "bin", "busybox"),
		Packages: fmt.Sprintf("%s %s, %s %s", kernel.Name, kernel.Version, bb.Name, bb.Version),
		Fallback: strings.Join(slices.DeleteFunc([]string{kernel.Fallback, bb.Fallback}, func(s string) bool { return s == "" }), "; "),
	}
	vmlinuz, _ := filepath.Glob(filepath.Join(kernel.Root, "boot", "vmlinuz-*"))
	if len(vmlinuz) != 1 {
		return Ingredients{}, fmt.Errorf("package %s: %d boot/vmlinuz-* files, want 1", kernel.Name, len(vmlinuz))
	}
	ing.Kernel = vmlinuz[0]
	release := strings.TrimPrefix(filepath.Base(ing.Kernel), "vmlinuz-")
	if pvh, err := pvhKernel(ing.Kernel); err == nil {
		ing.Kernel = pvh
	} else {
		ing.Packages += fmt.Sprintf(" (booting the bzImage: %v)", err)
	}
	for _, m := range Modules {
		file := filepath.Join(kernel.Root, "lib", "modules", release, "kernel", filepath.FromSlash(m))
		ing.Modules = append(ing.Modules, file)
	}
	for _, f := range append([]string{ing.Busybox}, ing.Modules...) {
		if _, err := os.Stat(f); err != nil {
			return Ingredients{}, fmt.Errorf("packages %s: %w", ing.Packages, err)
		}
	}
	return ing, nil
}

// keepKernelFile selects the kernel image and the rig's modules from the
// kernel package; compressed modules (.ko.xz, .ko.gz) are stored
// decompressed, as .ko, so that busybox's insmod loads them as they are.
func keepKernelFile(name string) string {
	if strings.HasPrefix(name, "boot/vmlinuz-") {
		return name
	}
	// lib/modules/<version>/kernel/<module>
	rest, ok := strings.CutPrefix(name, "lib/modules/")
	if !ok {
		return ""
	}
	_, mod, ok := strings.Cut(rest, "/kernel/")
	if !ok {
		return ""
	}
	for _, want := range Modules {
		for _, suffix := range []string{"", ".xz", ".gz"} {
			if mod == want+suffix {
				return strings.TrimSuffix(name, suffix)
			}
		}
	}
	return ""
}
