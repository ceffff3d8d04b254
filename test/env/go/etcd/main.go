// Command etcd is a thin entry point around the etcd server library, so the
// test environment can build a pinned etcd from Go modules alone.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
