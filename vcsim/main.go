// Command nestlab-vcsim starts govmomi's vCenter simulator for Nestlab's
// development server and tests.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8989", "address to listen on (port 0 picks a free port)")
	username := flag.String("username", "", "accept only this user name (empty: any non-empty user)")
	password := flag.String("password", "", "accept only this password (with -username)")
	idleTimeout := flag.Duration("idle-timeout", 0, "expire sessions idle this long (0: never)")
	demo := flag.Bool("demo", false, "seed the demo nested-ESXi lab inventory")
	flag.Parse()
	_ = demo

	model := simulator.VPX()
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	simulator.SessionIdleTimeout = *idleTimeout

	u := &url.URL{Host: *listen}
	if *username != "" {
		u.User = url.UserPassword(*username, *password)
	}
	model.Service.Listen = u
	server := model.Service.NewServer()
	fmt.Printf("NESTLAB_VCSIM_URL=%s\n", server.URL.String())
	os.Stdout.Sync()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	server.Close()
	model.Remove()
	_ = time.Now
}
