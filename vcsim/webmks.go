package main

// WebMKS, the VM console as ESXi serves it, which govmomi's simulator lacks:
//
//   - AcquireTicket(ticketType "webmks") on a powered-on VM returns a VirtualMachineTicket
//     (ticket, cfgFile, host, port, sslThumbprint, url). The ticket is single-use and expires
//     after -webmks-ticket-ttl unused, as an ESXi host's do.
//   - The "host" is a TLS listener of the launcher's own (a self-signed certificate whose SHA-1
//     thumbprint the ticket carries, as ESXi's sslThumbprint does). GET /ticket/<ticket> with
//     the WebSocket subprotocol "binary" upgrades to RFB 3.8 (VNC; security type None, the
//     ticket in the URL being the authentication), which is what vSphere documents for webmks:
//     "VNC (a.k.a. RFB) protocol with VMware extensions; the protocol gracefully degrades to
//     standard VNC if extensions are not available". VMware's own extensions and its
//     "vmware-vvc" subprotocol are not implemented.
//   - The screen (screen.go) draws the VM's name, its power state, an uptime line that changes
//     every -webmks-tick, how many Ctrl-Alt-Del it got and the text typed so far.
//   - When the VM stops being powered on, its console connections close, as on ESXi.
//
// Control for tests, on the SOAP server:
//
//	GET  /_nestlab/webmks        every VM's console state as JSON (typed text, key counts, sessions)
//	PUT  /_nestlab/webmks        {"stall": true}: new console connections are accepted but never answered
//	POST /_nestlab/webmks/drop   close every open console connection now, as a host going away

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	webmksStatePath = "/_nestlab/webmks"
	webmksDropPath  = "/_nestlab/webmks/drop"
	webmksProtocol  = "binary" // the WebSocket subprotocol that selects plain RFB on ESXi
)

type webmksTicket struct {
	vm      types.ManagedObjectReference
	expires time.Time
}

// webmks is the launcher's console host: tickets, screens and the TLS listener.
type webmks struct {
	ttl, tick  time.Duration
	host       string
	port       int
	thumbprint string

	mu       sync.Mutex
	tickets  map[string]webmksTicket
	screens  map[types.ManagedObjectReference]*screen
	stalled  bool
	sessions map[*websocket.Conn]types.ManagedObjectReference
	issued   int

	guest *guestStore // runs the lines typed on a console (guest.go)
}

func startWebMKS(listen string, ttl, tick time.Duration) (*webmks, error) {
	certificate, thumbprint, err := selfSignedCertificate()
	if err != nil {
		return nil, err
	}
	listener, err := tls.Listen("tcp", listen, &tls.Config{Certificates: []tls.Certificate{certificate}})
	if err != nil {
		return nil, err
	}
	address := listener.Addr().(*net.TCPAddr)
	m := &webmks{
		ttl: ttl, tick: tick,
		host: address.IP.String(), port: address.Port, thumbprint: thumbprint,
		tickets:  map[string]webmksTicket{},
		screens:  map[types.ManagedObjectReference]*screen{},
		sessions: map[*websocket.Conn]types.ManagedObjectReference{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ticket/", m.serveTicket)
	go func() { _ = (&http.Server{Handler: mux, ErrorLog: log.New(io.Discard, "", 0)}).Serve(listener) }()
	return m, nil
}

// selfSignedCertificate is the host's certificate and its thumbprint as vSphere writes one
// (SHA-1 of the DER, upper-case hex pairs joined by colons).
func selfSignedCertificate() (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "nestlab-vcsim-esxi"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	sum := sha1.Sum(der)
	pairs := make([]string, len(sum))
	for i, b := range sum {
		pairs[i] = strings.ToUpper(hex.EncodeToString([]byte{b}))
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, strings.Join(pairs, ":"), nil
}

func newTicketValue() string {
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	return hex.EncodeToString(raw)
}

// screenFor is the VM's console screen, made on first use; it outlives connections, as a
// real VM's screen does.
func (m *webmks) screenFor(vm *simulator.VirtualMachine) *screen {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.screens[vm.Self]
	if s == nil {
		s = newScreen(vm.Self, m.tick)
		if m.guest != nil {
			c := m.guest.consoleFor(vm.Self, s.write)
			s.onLine, s.onInterrupt = c.line, c.interrupt
		}
		m.screens[vm.Self] = s
	}
	return s
}

// acquireTicket answers AcquireTicket for the simulator, which does not implement it.
func (m *webmks) acquireTicket(l *launcher, w http.ResponseWriter, r *http.Request, call soapCall, body []byte) {
	obj, ok := l.checkCall(w, r, call)
	if !ok {
		return
	}
	vm, isVM := obj.(*simulator.VirtualMachine)
	if !isVM {
		l.next.ServeHTTP(w, r) // the simulator's own MethodNotFound
		return
	}
	var request struct {
		TicketType string `xml:"Body>AcquireTicket>ticketType"`
	}
	_ = xml.Unmarshal(body, &request)
	if request.TicketType != "webmks" {
		writeFault(w, fmt.Sprintf("A specified parameter was not correct: ticketType (the simulator issues webmks tickets only, not %q)", request.TicketType),
			"InvalidArgument", "<invalidProperty>ticketType</invalidProperty>")
		return
	}
	var state types.VirtualMachinePowerState
	var name, config string
	simulator.Map.WithLock(vm, func() {
		state = vm.Runtime.PowerState
		name = vm.Name
		if vm.Config != nil {
			config = vm.Config.Files.VmPathName
		}
	})
	if state != types.VirtualMachinePowerStatePoweredOn {
		writeFault(w, fmt.Sprintf("The attempted operation cannot be performed in the current state (%s).", state),
			"InvalidPowerState", fmt.Sprintf("<requestedState>poweredOn</requestedState><existingState>%s</existingState>", state))
		return
	}
	value := newTicketValue()
	m.mu.Lock()
	m.tickets[value] = webmksTicket{vm: vm.Self, expires: time.Now().Add(m.ttl)}
	m.issued++
	m.mu.Unlock()
	m.screenFor(vm).setName(name)
	log.Printf("nestlab: webmks ticket for %s (%s)", vm.Self.Value, name)
	writeResponse(w, "AcquireTicketResponse", fmt.Sprintf(
		`<returnval><ticket>%s</ticket><cfgFile>%s</cfgFile><host>%s</host><port>%d</port>`+
			`<sslThumbprint>%s</sslThumbprint><url>%s</url></returnval>`,
		value, escape(config), m.host, m.port, m.thumbprint,
		escape(fmt.Sprintf("wss://%s:%d/ticket/%s", m.host, m.port, value))))
}

// takeTicket uses a ticket up: it is valid once, and only before it expires.
func (m *webmks) takeTicket(value string) (types.ManagedObjectReference, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ticket, ok := m.tickets[value]
	delete(m.tickets, value)
	for other, t := range m.tickets { // forget expired ones as we go
		if time.Now().After(t.expires) {
			delete(m.tickets, other)
		}
	}
	if !ok || time.Now().After(ticket.expires) {
		return types.ManagedObjectReference{}, false
	}
	return ticket.vm, true
}

func offers(r *http.Request, protocol string) bool {
	for _, offered := range websocket.Subprotocols(r) {
		if offered == protocol {
			return true
		}
	}
	return false
}

func (m *webmks) serveTicket(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	stalled := m.stalled
	m.mu.Unlock()
	if stalled { // a host that accepts the connection and never answers
		<-r.Context().Done()
		return
	}
	ref, ok := m.takeTicket(strings.TrimPrefix(r.URL.Path, "/ticket/"))
	if !ok {
		http.Error(w, "Invalid, used or expired ticket.", http.StatusNotFound)
		return
	}
	if !offers(r, webmksProtocol) {
		http.Error(w, `This console speaks VNC over the WebSocket subprotocol "binary" (VMware's "vmware-vvc" is not simulated).`, http.StatusBadRequest)
		return
	}
	vm, isVM := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !isVM || powerState(vm) != types.VirtualMachinePowerStatePoweredOn {
		http.Error(w, "The virtual machine is not powered on.", http.StatusNotFound)
		return
	}
	upgrader := websocket.Upgrader{
		Subprotocols:    []string{webmksProtocol},
		CheckOrigin:     func(*http.Request) bool { return true },
		ReadBufferSize:  4096,
		WriteBufferSize: 65536,
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s := m.screenFor(vm)
	m.mu.Lock()
	m.sessions[conn] = ref
	m.mu.Unlock()
	s.connected(1)
	defer func() {
		s.connected(-1)
		m.mu.Lock()
		delete(m.sessions, conn)
		m.mu.Unlock()
		_ = conn.Close()
	}()
	serveRFB(conn, s, func() bool { return powerState(vm) == types.VirtualMachinePowerStatePoweredOn })
}

func powerState(vm *simulator.VirtualMachine) types.VirtualMachinePowerState {
	var state types.VirtualMachinePowerState
	simulator.Map.WithLock(vm, func() { state = vm.Runtime.PowerState })
	return state
}

// serveControl answers the test-control routes under /_nestlab/webmks.
func (m *webmks) serveControl(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == webmksDropPath && r.Method == http.MethodPost:
		m.mu.Lock()
		conns := make([]*websocket.Conn, 0, len(m.sessions))
		for conn := range m.sessions {
			conns = append(conns, conn)
		}
		m.mu.Unlock()
		for _, conn := range conns {
			_ = conn.UnderlyingConn().Close() // no close frame: the host is gone
		}
		writeJSON(w, http.StatusOK, map[string]int{"dropped": len(conns)})
	case r.URL.Path == webmksStatePath && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		var change struct {
			Stall *bool `json:"stall"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&change); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		m.mu.Lock()
		if change.Stall != nil {
			m.stalled = *change.Stall
		}
		m.mu.Unlock()
		m.writeState(w)
	case r.URL.Path == webmksStatePath && r.Method == http.MethodGet:
		m.writeState(w)
	default:
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "GET or PUT /_nestlab/webmks, POST /_nestlab/webmks/drop"})
	}
}

func (m *webmks) writeState(w http.ResponseWriter) {
	m.mu.Lock()
	screens := map[string]screenState{}
	for ref, s := range m.screens {
		screens[ref.Value] = s.state()
	}
	document := map[string]interface{}{
		"host": m.host, "port": m.port, "thumbprint": m.thumbprint, "stalled": m.stalled,
		"ticketsIssued": m.issued, "ticketsWaiting": len(m.tickets), "screens": screens,
	}
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, document)
}
