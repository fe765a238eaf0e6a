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
	// A local development and test store: no fsync per commit. A killed process loses
	// nothing (the OS has every write); only an OS crash could lose the last writes.
	pragmas := flag.String("sqlite-params", "_pragma=synchronous(off)&_pragma=wal_autocheckpoint(10000)", "SQLite URI query parameters")
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
