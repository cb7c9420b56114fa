package main

// Guards for the launcher's own goroutines and for the simulator's PropertyCollector under
// load (issue 16).
//
// A panic in a request handler is recovered by net/http, but a panic in a goroutine the
// launcher starts itself (a task that looks running, Tools following the power state, a guest
// program) ends the whole process, and every client then gets "connection refused". These
// goroutines call into the simulator's registry, whose objects are not all safe for concurrent
// use in 0.24.2 (see docs/simulator.md), so each one logs a panic with its stack and stops
// alone instead.
//
// Waits on one PropertyCollector are serialised because the simulator does not: 0.24.2's
// PropertyCollector opts out of the registry's per-object lock, and WaitForUpdatesEx writes
// its filters' maps (PropertyFilter.refs) without one, so two waits on one collector at the
// same time can end the process with "fatal error: concurrent map writes", which no recover
// catches. A client has two waits on one collector when it gives up on one (a socket timeout
// on a loaded machine, a retry after a broken connection) while the simulator still runs it.

import (
	"log"
	"net/http"
	"runtime/debug"
	"sync"
)

// guard, deferred at the top of a goroutine, logs a panic and lets the process live on.
func guard(what string) {
	if r := recover(); r != nil {
		guardLog(what, r)
	}
}

func guardLog(what string, r interface{}) {
	log.Printf("nestlab: recovered from a panic in %s: %v\n%s", what, r, debug.Stack())
}

// collectorWaits are the PropertyCollector calls that read and write its filters' state.
var collectorWaits = map[string]bool{"WaitForUpdatesEx": true, "WaitForUpdates": true, "CheckForUpdates": true}

// collectorGates holds one gate per session and collector with a wait running or queued.
type collectorGates struct {
	mu    sync.Mutex
	gates map[string]*collectorGate
}

type collectorGate struct {
	turn  chan struct{} // holds a token while a wait runs
	users int
}

// enter waits until no other wait runs on the collector (or the client goes away, or the
// launcher stops); it returns a release func, or nil when the request should not go on.
// CancelWaitForUpdates is never gated, so a client can always end a wait it started.
func (g *collectorGates) enter(r *http.Request, collector string, shutdown <-chan struct{}) func() {
	key := collector
	if cookie, err := r.Cookie("vmware_soap_session"); err == nil {
		key = cookie.Value + "/" + collector // the default collector's moref is the same in every session
	}
	g.mu.Lock()
	if g.gates == nil {
		g.gates = map[string]*collectorGate{}
	}
	gate := g.gates[key]
	if gate == nil {
		gate = &collectorGate{turn: make(chan struct{}, 1)}
		g.gates[key] = gate
	}
	gate.users++
	g.mu.Unlock()
	leave := func() {
		g.mu.Lock()
		gate.users--
		if gate.users == 0 {
			delete(g.gates, key)
		}
		g.mu.Unlock()
	}
	select {
	case gate.turn <- struct{}{}:
		return func() { <-gate.turn; leave() }
	case <-r.Context().Done():
	case <-shutdown:
	}
	leave()
	return nil
}
