package main

import (
	"context"
	"flag"
	"log"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address")
	dir := flag.String("sqlite-dir", "data", "SQLite directory")
	// WAL with synchronous=NORMAL stays consistent after a crash and skips an fsync per commit.
	pragmas := flag.String("sqlite-params", "_pragma=synchronous(normal)", "SQLite URI query parameters")
	flag.Parse()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dir + "/?" + *pragmas,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	f.Run(ctx)
}
