package fetch_test

import (
	"context"
	"fmt"
	"os"

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
