package fetch_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

// Fetch a release's kernel and rescue set twice: the first run downloads
// and verifies them, the second finds them in the cache without a single
// request.
func ExampleFetcher_Fetch() {
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386",
		Kernel: []byte("kernel bytes"), Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet()}})
	defer srv.Close()
	cache, _ := os.MkdirTemp("", "smolvmm-cache")
	defer os.RemoveAll(cache)

	f := &fetch.Fetcher{Mirror: srv.Mirror(), Cache: cache}
	for run := 1; run <= 2; run++ {
		rel, err := f.Fetch(context.Background(), "9.3", "i386", "rescue")
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("run %d: %s %s, %s %s, %d requests\n", run,
			rel.Kernel.Name, rel.Kernel.Action, rel.Sets[0].Name, rel.Sets[0].Action, rel.Requests)
	}
	// Output:
	// run 1: netbsd-GENERIC.gz downloaded, rescue.tgz downloaded, 4 requests
	// run 2: netbsd-GENERIC.gz cached, rescue.tgz cached, 0 requests
}

// Read a release's digest file and find the file that holds a set, whatever
// its extension.
func ExampleParseDigests() {
	d, err := fetch.ParseDigests([]byte("SHA512 (base.tar.xz) = " + strings.Repeat("ab", 64) + "\n" +
		"SHA512 (rescue.tar.xz) = " + strings.Repeat("cd", 64) + "\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	file, sum, _ := d.SetFile("rescue")
	fmt.Println(file, sum[:8], d.Sets())
	_, _, err = d.SetFile("games")
	fmt.Println(err)
	// Output:
	// rescue.tar.xz cdcdcdcd [base rescue]
	// unknown set "games": the release's SHA512 lists base, rescue
}
