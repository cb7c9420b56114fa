package main

// Guest operations, which govmomi 0.24.2's simulator offers only for VMs backed by a Docker
// container: the launcher puts its own GuestProcessManager and GuestFileManager in the registry
// under the simulator's morefs, so the simulator itself checks the session, decodes the request
// and writes the answer or the SOAP fault, exactly as for its own objects.
//
//   - Each VM's guest file system is a sandbox directory (a temporary directory per launcher run,
//     one subdirectory per VM moref, made on first use with /tmp, /root and /etc/hostname).
//   - Programs run in the scripted shell of shell.go, never on the host.
//   - VMware Tools run in a VM while it is powered on, unless turned off for that VM through the
//     control API; the launcher keeps guest.toolsRunningStatus, guest.toolsStatus and
//     guest.guestState (and summary.guest) in step with the power state.
//   - Guest credentials: -guest-username/-guest-password for every VM, or per VM through
//     PUT /_nestlab/guest (below).
//   - File transfers: InitiateFileTransfer{From,To}Guest answer a URL on the launcher's own
//     listener, http://host:port/guestFile?id=N&token=T, valid once and for -guest-transfer-ttl;
//     GET downloads, PUT uploads.
//
// Control for tests, on the SOAP server:
//
//	GET  /_nestlab/guest         the defaults and every VM's guest state (sandbox path, user, Tools, processes)
//	PUT  /_nestlab/guest         {"vm": "vm-72", "username": "u", "password": "p", "tools_running": false}
//	                             (without "vm": the defaults for every VM without its own credentials)
//	POST /_nestlab/guest/reset   forget per-VM credentials and Tools settings

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	guestStatePath = "/_nestlab/guest"
	guestResetPath = "/_nestlab/guest/reset"
	guestFilePath  = "/guestFile" // as ESXi names its transfer URLs
	firstGuestPid  = 4000
	maxUploadBytes = 256 << 20
)

type guestProcess struct {
	pid                  int64
	name, owner, cmdLine string
	start                time.Time
	end                  *time.Time
	exitCode             int32
	cancel               context.CancelFunc
	done                 chan struct{}
}

type guestVM struct {
	ref                types.ManagedObjectReference
	dir                string
	username, password string // empty: the store's defaults
	toolsOff           bool
	nextPid            int64
	processes          map[int64]*guestProcess
}

type transfer struct {
	vm        types.ManagedObjectReference
	hostPath  string
	guestPath string
	upload    bool
	size      int64
	expires   time.Time
}

type guestStore struct {
	root        string
	transferTTL time.Duration
	base        string // http://host:port of the launcher, for transfer URLs

	mu                         sync.Mutex
	defaultUser, defaultSecret string
	vms                        map[types.ManagedObjectReference]*guestVM
	consoles                   map[types.ManagedObjectReference]*console
	transfers                  map[string]*transfer
	transferID                 int
}

func newGuestStore(username, password string, ttl time.Duration) (*guestStore, error) {
	root, err := os.MkdirTemp("", "nestlab-guests-")
	if err != nil {
		return nil, err
	}
	return &guestStore{
		root: root, transferTTL: ttl, defaultUser: username, defaultSecret: password,
		vms: map[types.ManagedObjectReference]*guestVM{}, consoles: map[types.ManagedObjectReference]*console{}, transfers: map[string]*transfer{},
	}, nil
}

// install puts the guest managers in the registry and starts following power changes.
func (g *guestStore) install() {
	Map := simulator.Map
	content := Map.Get(types.ManagedObjectReference{Type: "ServiceInstance", Value: "ServiceInstance"}).(*simulator.ServiceInstance).Content
	if content.GuestOperationsManager == nil {
		log.Printf("nestlab: no GuestOperationsManager in the service content; guest operations are off")
		return
	}
	manager, ok := Map.Get(*content.GuestOperationsManager).(*simulator.GuestOperationsManager)
	if !ok || manager.ProcessManager == nil || manager.FileManager == nil {
		log.Printf("nestlab: the GuestOperationsManager has no process or file manager; guest operations are off")
		return
	}
	processes := &guestProcessManager{store: g}
	processes.Self = *manager.ProcessManager
	Map.Put(processes)
	files := &guestFileManager{store: g}
	files.Self = *manager.FileManager
	Map.Put(files)
	Map.AddHandler(&toolsWatch{store: g})
	for _, obj := range Map.All("VirtualMachine") {
		g.syncTools(obj.Reference())
	}
}

func (g *guestStore) close() { _ = os.RemoveAll(g.root) }

// vmLocked is the VM's guest state, with its sandbox made on first use; g.mu is held.
func (g *guestStore) vmLocked(ref types.ManagedObjectReference) *guestVM {
	vm := g.vms[ref]
	if vm == nil {
		vm = &guestVM{ref: ref, dir: filepath.Join(g.root, ref.Value), nextPid: firstGuestPid, processes: map[int64]*guestProcess{}}
		g.vms[ref] = vm
	}
	if _, err := os.Stat(vm.dir); err != nil {
		for _, dir := range []string{"tmp", "root", "etc", "home", "dev"} {
			_ = os.MkdirAll(filepath.Join(vm.dir, dir), 0o755)
		}
		_ = os.WriteFile(filepath.Join(vm.dir, "dev", "null"), nil, 0o666) // redirections to it discard
		_ = os.WriteFile(filepath.Join(vm.dir, "etc", "hostname"), []byte(ref.Value+"\n"), 0o644)
	}
	return vm
}

func (g *guestStore) fs(ref types.ManagedObjectReference) guestFS {
	g.mu.Lock()
	defer g.mu.Unlock()
	return guestFS{root: g.vmLocked(ref).dir, vm: ref.Value}
}

func (g *guestStore) credentialsLocked(vm *guestVM) (string, string) {
	if vm.username != "" {
		return vm.username, vm.password
	}
	return g.defaultUser, g.defaultSecret
}

// --- VMware Tools follow the power state -------------------------------------------------------

type toolsWatch struct{ store *guestStore }

func (t *toolsWatch) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "NestlabToolsWatch", Value: "nestlab-tools-watch"}
}

// toolsSettle is how long after a VM is registered its guest state is written: the simulator
// registers a new VM before it has finished building it (and then replaces its guest info).
const toolsSettle = 250 * time.Millisecond

func (t *toolsWatch) PutObject(obj mo.Reference) {
	if ref := obj.Reference(); ref.Type == "VirtualMachine" {
		time.AfterFunc(toolsSettle, func() {
			defer guard("Tools of " + ref.Value)
			t.store.syncTools(ref)
		})
	}
}

func (t *toolsWatch) UpdateObject(obj mo.Reference, changes []types.PropertyChange) {
	ref := obj.Reference()
	if ref.Type != "VirtualMachine" {
		return
	}
	for _, change := range changes {
		if change.Name == "runtime.powerState" {
			state := types.VirtualMachinePowerState(fmt.Sprint(change.Val))
			// Not while the VM's lock is (perhaps) held by the power task.
			go t.store.powerChanged(ref, state)
			return
		}
	}
}

func (t *toolsWatch) RemoveObject(ref types.ManagedObjectReference) {
	if ref.Type == "VirtualMachine" {
		go t.store.forget(ref)
	}
}

func (g *guestStore) powerChanged(ref types.ManagedObjectReference, state types.VirtualMachinePowerState) {
	defer guard("Tools of " + ref.Value)
	g.mu.Lock()
	if vm := g.vms[ref]; vm != nil && state != types.VirtualMachinePowerStatePoweredOn {
		// The guest stopped: its programs are gone, and a new boot starts a new process table.
		for _, p := range vm.processes {
			p.cancel()
		}
		vm.processes = map[int64]*guestProcess{}
	}
	c := g.consoles[ref]
	g.mu.Unlock()
	if c != nil && state != types.VirtualMachinePowerStatePoweredOn {
		c.interrupt()
	}
	g.syncTools(ref)
}

func (g *guestStore) forget(ref types.ManagedObjectReference) {
	defer guard("removing the guest of " + ref.Value)
	g.mu.Lock()
	vm := g.vms[ref]
	delete(g.vms, ref)
	g.mu.Unlock()
	if vm != nil {
		for _, p := range vm.processes {
			p.cancel()
		}
		_ = os.RemoveAll(vm.dir)
	}
}

func (g *guestStore) toolsOff(ref types.ManagedObjectReference) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	vm := g.vms[ref]
	return vm != nil && vm.toolsOff
}

// syncTools writes the VM's Tools and guest state as its power state and Tools setting say.
func (g *guestStore) syncTools(ref types.ManagedObjectReference) {
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	off := g.toolsOff(ref)
	simulator.Map.WithLock(vm, func() {
		if vm.Guest == nil || vm.Summary.Guest == nil {
			return
		}
		running := vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn && !off
		runningStatus := string(types.VirtualMachineToolsRunningStatusGuestToolsNotRunning)
		status := types.VirtualMachineToolsStatusToolsNotRunning
		guestState := "notRunning"
		if running {
			runningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
			status = types.VirtualMachineToolsStatusToolsOk
			guestState = "running"
		}
		if vm.Guest.ToolsRunningStatus == runningStatus && vm.Guest.ToolsStatus == status && vm.Guest.GuestState == guestState {
			return
		}
		simulator.Map.Update(vm, []types.PropertyChange{
			{Name: "guest.toolsStatus", Val: status},
			{Name: "guest.toolsRunningStatus", Val: runningStatus},
			{Name: "guest.guestState", Val: guestState},
			{Name: "summary.guest.toolsStatus", Val: status},
			{Name: "summary.guest.toolsRunningStatus", Val: runningStatus},
		})
	})
}

// --- checks every guest operation makes, in vSphere's order ------------------------------------

// prepare checks the VM, its power state, Tools and the guest login; it returns the VM's guest
// state and the user, or a SOAP fault.
func (g *guestStore) prepare(ctx *simulator.Context, ref types.ManagedObjectReference, auth types.BaseGuestAuthentication) (*guestVM, string, *soap.Fault) {
	vm, ok := ctx.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return nil, "", simulator.Fault(fmt.Sprintf("managed object not found: %s", ref), &types.ManagedObjectNotFound{Obj: ref})
	}
	var state types.VirtualMachinePowerState
	ctx.Map.WithLock(vm, func() { state = vm.Runtime.PowerState })
	if state != types.VirtualMachinePowerStatePoweredOn {
		return nil, "", simulator.Fault(fmt.Sprintf("The attempted operation cannot be performed in the current state (%s).", state),
			&types.InvalidPowerState{RequestedState: types.VirtualMachinePowerStatePoweredOn, ExistingState: state})
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	guest := g.vmLocked(ref)
	if guest.toolsOff {
		return nil, "", simulator.Fault("The guest operations agent could not be contacted.", new(types.GuestOperationsUnavailable))
	}
	user, secret := g.credentialsLocked(guest)
	creds, ok := auth.(*types.NamePasswordAuthentication)
	if !ok || creds.Username != user || creds.Password != secret {
		return nil, "", simulator.Fault("Failed to authenticate with the guest operating system using the supplied credentials.",
			new(types.InvalidGuestLogin))
	}
	return guest, user, nil
}

func fileFault(message string, fault types.BaseMethodFault) *soap.Fault {
	return simulator.Fault(message, fault)
}

// --- processes ----------------------------------------------------------------------------------

type guestProcessManager struct {
	mo.GuestProcessManager
	store *guestStore
}

func homeOf(user string) string {
	if user == "root" {
		return "/root"
	}
	return "/home/" + user
}

func (m *guestProcessManager) StartProgramInGuest(ctx *simulator.Context, req *types.StartProgramInGuest) soap.HasFault {
	body := new(methods.StartProgramInGuestBody)
	guest, user, fault := m.store.prepare(ctx, req.Vm, req.Auth)
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	spec := req.Spec.GetGuestProgramSpec()
	if programName(spec.ProgramPath) == "" || !path.IsAbs(spec.ProgramPath) {
		body.Fault_ = fileFault(fmt.Sprintf("File %s was not found", spec.ProgramPath),
			&types.FileNotFound{FileFault: types.FileFault{File: spec.ProgramPath}})
		return body
	}
	fs := m.store.fs(req.Vm)
	home := homeOf(user)
	_ = os.MkdirAll(fs.host(home, "/"), 0o755)
	cwd := spec.WorkingDirectory
	if cwd == "" {
		cwd = home
	}
	if info, err := os.Stat(fs.host(cwd, "/")); err != nil || !info.IsDir() || !path.IsAbs(cwd) {
		body.Fault_ = fileFault(fmt.Sprintf("File %s was not found", cwd), &types.FileNotFound{FileFault: types.FileFault{File: cwd}})
		return body
	}
	env := map[string]string{"HOME": home, "USER": user, "LOGNAME": user, "SHELL": "/bin/sh",
		"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PWD": path.Clean(cwd)}
	for _, pair := range spec.EnvVariables {
		if name, value, ok := strings.Cut(pair, "="); ok && name != "" {
			env[name] = value
		}
	}
	script := shellQuote(spec.ProgramPath) + " " + spec.Arguments
	runCtx, cancel := context.WithCancel(context.Background())
	process := &guestProcess{
		name: path.Base(spec.ProgramPath), owner: user, start: time.Now(),
		cmdLine: strings.TrimSpace(fmt.Sprintf("%q %s", spec.ProgramPath, spec.Arguments)),
		cancel:  cancel, done: make(chan struct{}),
	}
	m.store.mu.Lock()
	process.pid = guest.nextPid
	guest.nextPid++
	guest.processes[process.pid] = process
	m.store.mu.Unlock()
	sh := &shell{fs: fs, cwd: path.Clean(cwd), env: env, ctx: runCtx, name: "sh"}
	go func() {
		status := runGuarded(sh, script, io.Discard, io.Discard)
		if runCtx.Err() != nil {
			status = statusTerminated
		}
		cancel()
		now := time.Now()
		m.store.mu.Lock()
		process.end, process.exitCode = &now, int32(status)
		m.store.mu.Unlock()
		close(process.done)
	}()
	log.Printf("nestlab: guest %s pid %d: %s", req.Vm.Value, process.pid, process.cmdLine)
	body.Res = &types.StartProgramInGuestResponse{Returnval: process.pid}
	return body
}

func (m *guestProcessManager) ListProcessesInGuest(ctx *simulator.Context, req *types.ListProcessesInGuest) soap.HasFault {
	body := new(methods.ListProcessesInGuestBody)
	guest, _, fault := m.store.prepare(ctx, req.Vm, req.Auth)
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	wanted := map[int64]bool{}
	for _, pid := range req.Pids {
		wanted[pid] = true
	}
	m.store.mu.Lock()
	var infos []types.GuestProcessInfo
	for pid, p := range guest.processes {
		if len(wanted) > 0 && !wanted[pid] {
			continue
		}
		info := types.GuestProcessInfo{Name: p.name, Pid: pid, Owner: p.owner, CmdLine: p.cmdLine, StartTime: p.start, ExitCode: p.exitCode}
		if p.end != nil {
			end := *p.end
			info.EndTime = &end
		}
		infos = append(infos, info)
	}
	m.store.mu.Unlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Pid < infos[j].Pid })
	body.Res = &types.ListProcessesInGuestResponse{Returnval: infos}
	return body
}

func (m *guestProcessManager) TerminateProcessInGuest(ctx *simulator.Context, req *types.TerminateProcessInGuest) soap.HasFault {
	body := new(methods.TerminateProcessInGuestBody)
	guest, _, fault := m.store.prepare(ctx, req.Vm, req.Auth)
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	m.store.mu.Lock()
	process := guest.processes[req.Pid]
	running := process != nil && process.end == nil
	m.store.mu.Unlock()
	if !running {
		body.Fault_ = simulator.Fault(fmt.Sprintf("The process %d was not found in the guest.", req.Pid), &types.GuestProcessNotFound{Pid: req.Pid})
		return body
	}
	process.cancel()
	select { // SIGTERM, then the process ends
	case <-process.done:
	case <-time.After(2 * time.Second):
	}
	log.Printf("nestlab: guest %s pid %d terminated", req.Vm.Value, req.Pid)
	body.Res = new(types.TerminateProcessInGuestResponse)
	return body
}

// --- files ---------------------------------------------------------------------------------------

type guestFileManager struct {
	mo.GuestFileManager
	store *guestStore
}

func notFound(guestPath string) *soap.Fault {
	return fileFault(fmt.Sprintf("File %s was not found", guestPath), &types.FileNotFound{FileFault: types.FileFault{File: guestPath}})
}

func (g *guestStore) newTransfer(t *transfer) string {
	raw := make([]byte, 24)
	_, _ = rand.Read(raw)
	token := hex.EncodeToString(raw)
	g.mu.Lock()
	defer g.mu.Unlock()
	for other, old := range g.transfers {
		if time.Now().After(old.expires) {
			delete(g.transfers, other)
		}
	}
	g.transferID++
	t.expires = time.Now().Add(g.transferTTL)
	g.transfers[token] = t
	return fmt.Sprintf("%s%s?id=%d&token=%s", g.base, guestFilePath, g.transferID, token)
}

func (m *guestFileManager) InitiateFileTransferFromGuest(ctx *simulator.Context, req *types.InitiateFileTransferFromGuest) soap.HasFault {
	body := new(methods.InitiateFileTransferFromGuestBody)
	if _, _, fault := m.store.prepare(ctx, req.Vm, req.Auth); fault != nil {
		body.Fault_ = fault
		return body
	}
	guestPath := req.GuestFilePath
	host := m.store.fs(req.Vm).host(guestPath, "/")
	info, err := os.Stat(host)
	if err != nil {
		body.Fault_ = notFound(guestPath)
		return body
	}
	if !info.Mode().IsRegular() {
		body.Fault_ = fileFault(fmt.Sprintf("%s is not a file", guestPath), &types.NotAFile{FileFault: types.FileFault{File: guestPath}})
		return body
	}
	modified := info.ModTime()
	owner := int32(0)
	url := m.store.newTransfer(&transfer{vm: req.Vm, hostPath: host, guestPath: guestPath})
	body.Res = &types.InitiateFileTransferFromGuestResponse{Returnval: types.FileTransferInformation{
		Attributes: &types.GuestPosixFileAttributes{
			GuestFileAttributes: types.GuestFileAttributes{ModificationTime: &modified, AccessTime: &modified},
			OwnerId:             &owner, GroupId: &owner, Permissions: int64(info.Mode().Perm()),
		},
		Size: info.Size(),
		Url:  url,
	}}
	return body
}

func (m *guestFileManager) InitiateFileTransferToGuest(ctx *simulator.Context, req *types.InitiateFileTransferToGuest) soap.HasFault {
	body := new(methods.InitiateFileTransferToGuestBody)
	if _, _, fault := m.store.prepare(ctx, req.Vm, req.Auth); fault != nil {
		body.Fault_ = fault
		return body
	}
	guestPath := req.GuestFilePath
	fs := m.store.fs(req.Vm)
	host := fs.host(guestPath, "/")
	parent := path.Dir(path.Clean("/" + guestPath))
	if info, err := os.Stat(fs.host(parent, "/")); err != nil || !info.IsDir() {
		body.Fault_ = notFound(parent)
		return body
	}
	if info, err := os.Stat(host); err == nil {
		if !info.Mode().IsRegular() {
			body.Fault_ = fileFault(fmt.Sprintf("%s is not a file", guestPath), &types.NotAFile{FileFault: types.FileFault{File: guestPath}})
			return body
		}
		if !req.Overwrite {
			body.Fault_ = fileFault(fmt.Sprintf("File %s already exists", guestPath),
				&types.FileAlreadyExists{FileFault: types.FileFault{File: guestPath}})
			return body
		}
	}
	if req.FileSize < 0 || req.FileSize > maxUploadBytes {
		body.Fault_ = simulator.Fault(fmt.Sprintf("A specified parameter was not correct: fileSize (at most %d bytes)", maxUploadBytes),
			&types.InvalidArgument{InvalidProperty: "fileSize"})
		return body
	}
	url := m.store.newTransfer(&transfer{vm: req.Vm, hostPath: host, guestPath: guestPath, upload: true, size: req.FileSize})
	body.Res = &types.InitiateFileTransferToGuestResponse{Returnval: url}
	return body
}

// serveTransfer answers GET and PUT on a transfer URL; each URL works once.
func (g *guestStore) serveTransfer(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	g.mu.Lock()
	t := g.transfers[token]
	if t != nil {
		delete(g.transfers, token)
	}
	g.mu.Unlock()
	if t == nil || time.Now().After(t.expires) {
		http.Error(w, "Invalid, used or expired transfer URL.", http.StatusNotFound)
		return
	}
	switch {
	case !t.upload && r.Method == http.MethodGet:
		f, err := os.Open(t.hostPath)
		if err != nil {
			http.Error(w, "The file is gone.", http.StatusNotFound)
			return
		}
		defer f.Close()
		info, _ := f.Stat()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(info.Size(), 10))
		_, _ = io.Copy(w, f)
	case t.upload && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		data, err := io.ReadAll(io.LimitReader(r.Body, t.size+1))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if int64(len(data)) > t.size {
			http.Error(w, fmt.Sprintf("More than the announced %d bytes.", t.size), http.StatusBadRequest)
			return
		}
		temp := t.hostPath + ".nestlab-upload"
		if err := os.WriteFile(temp, data, 0o644); err != nil {
			http.Error(w, reason(err), http.StatusInternalServerError)
			return
		}
		if err := os.Rename(temp, t.hostPath); err != nil {
			_ = os.Remove(temp)
			http.Error(w, reason(err), http.StatusInternalServerError)
			return
		}
		log.Printf("nestlab: guest %s: %d bytes written to %s", t.vm.Value, len(data), t.guestPath)
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, "Wrong method for this transfer URL (GET downloads, PUT uploads).", http.StatusMethodNotAllowed)
	}
}

// --- control ------------------------------------------------------------------------------------

type guestVMState struct {
	Sandbox      string `json:"sandbox"`
	Username     string `json:"username"`
	ToolsRunning bool   `json:"tools_running"`
	Processes    int    `json:"processes"`
	Running      int    `json:"running"`
}

func (g *guestStore) serveControl(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == guestResetPath && r.Method == http.MethodPost:
		g.mu.Lock()
		var refs []types.ManagedObjectReference
		for ref, vm := range g.vms {
			vm.username, vm.password, vm.toolsOff = "", "", false
			refs = append(refs, ref)
		}
		g.mu.Unlock()
		for _, ref := range refs {
			g.syncTools(ref)
		}
		g.writeState(w)
	case r.URL.Path == guestStatePath && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		var change struct {
			VM           string  `json:"vm"`
			Username     *string `json:"username"`
			Password     *string `json:"password"`
			ToolsRunning *bool   `json:"tools_running"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&change); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if change.VM == "" {
			if change.ToolsRunning != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "tools_running needs a vm"})
				return
			}
			g.mu.Lock()
			if change.Username != nil {
				g.defaultUser = *change.Username
			}
			if change.Password != nil {
				g.defaultSecret = *change.Password
			}
			g.mu.Unlock()
			g.writeState(w)
			return
		}
		ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: change.VM}
		if _, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine); !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no VM " + change.VM})
			return
		}
		g.mu.Lock()
		vm := g.vmLocked(ref)
		if change.Username != nil {
			vm.username = *change.Username
			if change.Password == nil {
				vm.password = ""
			}
		}
		if change.Password != nil {
			if vm.username == "" {
				vm.username = g.defaultUser
			}
			vm.password = *change.Password
		}
		if change.ToolsRunning != nil {
			vm.toolsOff = !*change.ToolsRunning
		}
		g.mu.Unlock()
		g.syncTools(ref)
		log.Printf("nestlab: guest settings of %s changed", change.VM)
		g.writeState(w)
	case r.URL.Path == guestStatePath && r.Method == http.MethodGet:
		g.writeState(w)
	default:
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "GET or PUT /_nestlab/guest, POST /_nestlab/guest/reset"})
	}
}

func (g *guestStore) writeState(w http.ResponseWriter) {
	g.mu.Lock()
	vms := map[string]guestVMState{}
	for ref, vm := range g.vms {
		user, _ := g.credentialsLocked(vm)
		state := guestVMState{Sandbox: vm.dir, Username: user, ToolsRunning: !vm.toolsOff, Processes: len(vm.processes)}
		for _, p := range vm.processes {
			if p.end == nil {
				state.Running++
			}
		}
		vms[ref.Value] = state
	}
	document := map[string]interface{}{"root": g.root, "username": g.defaultUser, "vms": vms}
	g.mu.Unlock()
	writeJSON(w, http.StatusOK, document)
}

// --- the console's shell ------------------------------------------------------------------------

// console runs the lines typed on a VM's console, one after another, as root (cd sticks); their
// output goes to the screen. Ctrl-C, and the VM leaving the powered-on state, stop the line
// running and drop the lines typed ahead.
type console struct {
	lines  chan string
	mu     sync.Mutex
	cancel context.CancelFunc // of the line running now
}

// runGuarded runs a script in the scripted shell; a panic in it ends that program (exit
// status 70, EX_SOFTWARE) rather than the launcher, and is logged (guard.go).
func runGuarded(sh *shell, script string, stdout, stderr io.Writer) (status int) {
	defer func() {
		if r := recover(); r != nil {
			guardLog("the guest shell", r)
			status = 70
		}
	}()
	return sh.run(script, stdout, stderr)
}

func (g *guestStore) consoleFor(ref types.ManagedObjectReference, output func(string)) *console {
	c := &console{lines: make(chan string, 64)}
	g.mu.Lock()
	g.consoles[ref] = c
	g.mu.Unlock()
	go func() {
		fs := g.fs(ref)
		_ = os.MkdirAll(fs.host("/root", "/"), 0o755)
		sh := &shell{fs: fs, cwd: "/root", name: "sh",
			env: map[string]string{"HOME": "/root", "USER": "root", "SHELL": "/bin/sh", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}}
		for line := range c.lines {
			ctx, cancel := context.WithCancel(context.Background())
			c.mu.Lock()
			c.cancel = cancel
			c.mu.Unlock()
			sh.ctx = ctx
			var out strings.Builder
			runGuarded(sh, line, &out, &out)
			cancel()
			if out.Len() > 0 {
				output(out.String())
			}
		}
	}()
	return c
}

func (c *console) line(text string) {
	select {
	case c.lines <- text:
	default: // a console flooded with lines drops the excess, as a full tty would block
	}
}

func (c *console) interrupt() {
	c.mu.Lock()
	if c.cancel != nil {
		c.cancel()
	}
	c.mu.Unlock()
	for {
		select {
		case <-c.lines:
		default:
			return
		}
	}
}
