package fetchtest_test

import (
	"fmt"
	"io"
	"net/http"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

// Serve a fake release and read its sets' digest file, then make the next
// request for the kernel fail with a 404.
func ExampleNewServer() {
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386",
		Kernel: []byte("kernel"), Sets: map[string][]byte{"rescue.tgz": []byte("set")}})
	defer srv.Close()

	resp, _ := http.Get(srv.Mirror() + "/" + fetchtest.SetsPath("9.3", "i386", "SHA512"))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("%.33s...\n", body)

	srv.SetFault(fetchtest.KernelPath("9.3", "i386", "netbsd-GENERIC.gz"), fetchtest.Fault{Status: 404, Times: 1})
	resp, _ = http.Get(srv.Mirror() + "/" + fetchtest.KernelPath("9.3", "i386", "netbsd-GENERIC.gz"))
	resp.Body.Close()
	fmt.Println(resp.StatusCode, len(srv.Requests()), "requests")
	// Output:
	// SHA512 (rescue.tgz) = a702ceb437e...
	// 404 2 requests
}
