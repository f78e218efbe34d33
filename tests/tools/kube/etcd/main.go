// Command etcd is the etcd server built from its Go module at the version
// pinned in go.mod, for the test control plane (Debian's etcd is too old).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
