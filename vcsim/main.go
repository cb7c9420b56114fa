// Command nestlab-vcsim starts govmomi's vCenter simulator for Nestlab's
// development server and tests, with strict login, a sized inventory, delays,
// tasks that stay running for a while, injected failures and hangs, run-time
// control of those rules, and an optional demo lab inventory. See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with -pprof, on an address of its own
	"net/url"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
)

type options struct {
	listen, username, password string
	idleTimeout                time.Duration

	datacenters, clusters, clusterHosts, standaloneHosts int
	vms, datastores, portgroups, pools                   int

	delay        int
	jitter       float64
	methodDelays durationMapFlag

	taskDurations durationMapFlag
	fail, hang    listFlag
	extraUsers    listFlag

	demo, trace bool
	pprofListen string

	webmksListen          string
	webmksTTL, webmksTick time.Duration

	guestUsername, guestPassword string
	guestTransferTTL             time.Duration
}

func parseFlags() *options {
	o := &options{methodDelays: durationMapFlag{}, taskDurations: durationMapFlag{}}
	vpx := simulator.VPX()
	flag.StringVar(&o.listen, "listen", "127.0.0.1:8989", "address to listen on (port 0 picks a free port)")
	flag.StringVar(&o.username, "username", "", "accept only this user name (empty: any non-empty user and password)")
	flag.StringVar(&o.password, "password", "", "accept only this password (with -username)")
	flag.DurationVar(&o.idleTimeout, "idle-timeout", 0, "expire sessions idle this long, e.g. 30s (0: never)")

	flag.IntVar(&o.datacenters, "dc", vpx.Datacenter, "datacenters")
	flag.IntVar(&o.clusters, "cluster", vpx.Cluster, "clusters per datacenter")
	flag.IntVar(&o.clusterHosts, "host", vpx.ClusterHost, "hosts per cluster")
	flag.IntVar(&o.standaloneHosts, "standalone-host", vpx.Host, "standalone hosts per datacenter")
	flag.IntVar(&o.vms, "vm", vpx.Machine, "VMs per cluster (in its root pool) and per standalone host")
	flag.IntVar(&o.datastores, "ds", vpx.Datastore, "datastores")
	flag.IntVar(&o.portgroups, "pg", vpx.Portgroup, "distributed port groups per datacenter")
	flag.IntVar(&o.pools, "pool", vpx.Pool, "child resource pools per cluster")

	flag.IntVar(&o.delay, "delay", 0, "delay every SOAP call by this many milliseconds")
	flag.Float64Var(&o.jitter, "jitter", 0, "delay jitter as a coefficient of variation (stddev/mean)")
	flag.Var(o.methodDelays, "method-delay", `per-method delays "Method=ms,Method=ms" (repeatable)`)

	flag.Var(o.taskDurations, "task-duration", `tasks of these methods look running this long, "CloneVM_Task=2s,*=500ms" (repeatable)`)
	flag.Var(&o.fail, "fail", `fail calls "Method[:substring]" (repeatable or comma-separated)`)
	flag.Var(&o.hang, "hang", `calls "Method[:substring]" return a task that stays running (repeatable or comma-separated)`)

	flag.Var(&o.extraUsers, "extra-user", `also accept "name:password" logins (repeatable; sessions act as -username)`)
	flag.StringVar(&o.webmksListen, "webmks-listen", "127.0.0.1:0", "address of the WebMKS console host (TLS; port 0 picks a free port)")
	flag.DurationVar(&o.webmksTTL, "webmks-ticket-ttl", 30*time.Second, "a webmks ticket unused this long expires")
	flag.DurationVar(&o.webmksTick, "webmks-tick", time.Second, "how often each console's uptime line changes")
	flag.StringVar(&o.guestUsername, "guest-username", "root", "the guest user every VM accepts for guest operations (per VM: PUT /_nestlab/guest)")
	flag.StringVar(&o.guestPassword, "guest-password", "nestlab", "that user's guest password")
	flag.DurationVar(&o.guestTransferTTL, "guest-transfer-ttl", time.Minute, "a guest file transfer URL unused this long expires")
	flag.BoolVar(&o.demo, "demo", false, "seed the demo nested-ESXi lab inventory")
	flag.BoolVar(&o.trace, "trace", false, "write every SOAP request and response to stderr")
	flag.StringVar(&o.pprofListen, "pprof", "", "serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:0 (empty: off)")
	flag.Parse()
	if flag.NArg() > 0 {
		log.Fatalf("unexpected arguments: %v", flag.Args())
	}
	return o
}

func (o *options) rules() (Rules, error) {
	rules := emptyRules()
	for k, v := range o.taskDurations {
		rules.TaskDurations[k] = v
	}
	for k, v := range o.methodDelays {
		rules.MethodDelays[k] = v
	}
	var err error
	if rules.Fail, err = parseMatchRules(o.fail); err != nil {
		return rules, fmt.Errorf("-fail: %w", err)
	}
	if rules.Hang, err = parseMatchRules(o.hang); err != nil {
		return rules, fmt.Errorf("-hang: %w", err)
	}
	return rules, nil
}

func main() {
	log.SetPrefix("nestlab-vcsim: ")
	o := parseFlags()
	baseline, err := o.rules()
	if err != nil {
		log.Fatal(err)
	}
	if o.password != "" && o.username == "" {
		log.Fatal("-password needs -username")
	}

	model := simulator.VPX()
	model.Datacenter = o.datacenters
	model.Cluster = o.clusters
	model.ClusterHost = o.clusterHosts
	model.Host = o.standaloneHosts
	model.Machine = o.vms
	model.Datastore = o.datastores
	model.Portgroup = o.portgroups
	model.Pool = o.pools
	registerGuestIDs()
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	simulator.Trace = o.trace

	u := &url.URL{Host: o.listen}
	if o.username != "" {
		u.User = url.UserPassword(o.username, o.password)
	}
	model.Service.Listen = u
	server := model.Service.NewServer()

	// The middleware goes in before any client can know the address.
	mw := newLauncher(server.Config.Handler, newRuleStore(baseline), o.jitter, server.URL.Path)
	if o.webmksTick <= 0 || o.webmksTTL <= 0 {
		log.Fatal("-webmks-tick and -webmks-ticket-ttl must be positive")
	}
	if mw.webmks, err = startWebMKS(o.webmksListen, o.webmksTTL, o.webmksTick); err != nil {
		log.Fatalf("starting the WebMKS console host: %v", err)
	}
	if mw.guest, err = newGuestStore(o.guestUsername, o.guestPassword, o.guestTransferTTL); err != nil {
		log.Fatalf("making the guests' sandbox directory: %v", err)
	}
	mw.guest.base = (&url.URL{Scheme: server.URL.Scheme, Host: server.URL.Host}).String()
	mw.guest.install()
	mw.webmks.guest = mw.guest
	if err := mw.acceptUsers(o.username, o.password, o.extraUsers); err != nil {
		log.Fatal(err)
	}
	atomic.StoreInt32(&mw.seeding, 1)
	server.Config.Handler = mw

	if o.demo {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := seedDemo(ctx, server.URL)
		cancel()
		if err != nil {
			log.Fatalf("seeding the demo inventory: %v", err)
		}
		log.Printf("demo inventory seeded: DC0/vm/%s/%s (%d VMs), port group %s",
			demoTemplateFolder, demoLabFolder, len(demoVMs), demoPortGroup)
	}

	// Set only now, so seeding is neither slowed down nor timed out. Nothing
	// but the seeding has called the server yet.
	model.DelayConfig.Delay = o.delay
	model.DelayConfig.DelayJitter = o.jitter
	simulator.SessionIdleTimeout = o.idleTimeout
	atomic.StoreInt32(&mw.seeding, 0)

	if o.pprofListen != "" {
		// For benchmarks: where the simulator's own CPU goes. Its own listener, so the
		// profiler is never reachable through the vCenter address.
		listener, err := net.Listen("tcp", o.pprofListen)
		if err != nil {
			log.Fatalf("-pprof: %v", err)
		}
		fmt.Printf("NESTLAB_VCSIM_PPROF=http://%s/debug/pprof/\n", listener.Addr())
		go func() { _ = http.Serve(listener, http.DefaultServeMux) }()
	}

	public := *server.URL
	public.User = nil // the URL line never carries the password
	fmt.Printf("NESTLAB_VCSIM_URL=%s\n", public.String())
	_ = os.Stdout.Sync()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	close(mw.shutdown)
	// Drop every connection at once, as a vCenter going down does. A long poll
	// (WaitForUpdatesEx) keeps its handler running after its connection is gone,
	// and server.Close would wait for it, so give Close only a moment.
	server.CloseClientConnections()
	closed := make(chan struct{})
	go func() { server.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(300 * time.Millisecond):
	}
	model.Remove() // the datastores' temporary directories
	mw.guest.close()
}
