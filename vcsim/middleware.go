package main

// An HTTP middleware around the simulator's handler. For SOAP calls to /sdk it
// applies the behaviour rules (rules.go): per-method delays, calls that fail or
// hang, and tasks that look running for a while, with rising progress, before
// they show their real final state.

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// progressInterval is how often a running task's progress moves on.
const progressInterval = 200 * time.Millisecond

// Methods the simulator serves without a session; every other call needs one.
var sessionless = map[string]bool{
	"RetrieveServiceContent": true, "PbmRetrieveServiceContent": true, "Fetch": true, "List": true,
	"Login": true, "LoginByToken": true, "LoginExtensionByCertificate": true,
	"RetrieveProperties": true, "RetrievePropertiesEx": true, "CloneSession": true,
}

type taskKind int

const (
	slowTask     taskKind = iota // the simulator did the work; the task only looks running
	injectedTask                 // made by a fail rule: ends in error, no side effect
	hungTask                     // made by a hang rule: running until cancelled
)

// trackedTask is a task the launcher is still driving.
type trackedTask struct {
	kind     taskKind
	canceled chan struct{} // closed by CancelTask (injected and hung tasks only)
}

type launcher struct {
	next     http.Handler
	rules    *ruleStore
	jitter   float64
	sdkPaths map[string]bool
	shutdown chan struct{}
	seeding  int32 // 1 while the demo inventory is seeded: rules do not apply

	// Extra accounts (e.g. a console-only one): their Login is passed on as the primary
	// user's, since the simulator checks a single user. Permissions do not exist here.
	primaryUser, primaryPassword string
	extraUsers                   map[string]string

	mu    sync.Mutex
	tasks map[types.ManagedObjectReference]*trackedTask

	collectors collectorGates // one wait at a time per PropertyCollector (guard.go)

	webmks *webmks     // the console host (webmks.go)
	guest  *guestStore // guest operations (guest.go)
}

func newLauncher(next http.Handler, rules *ruleStore, jitter float64, sdkPath string) *launcher {
	return &launcher{
		next:     next,
		rules:    rules,
		jitter:   jitter,
		sdkPaths: map[string]bool{sdkPath: true, sdkPath + "/vimService": true},
		shutdown: make(chan struct{}),
		tasks:    map[types.ManagedObjectReference]*trackedTask{},
	}
}

// soapCall is what the middleware needs from a request: the method and _this.
type soapCall struct {
	Method string
	This   types.ManagedObjectReference
}

func parseCall(body []byte) soapCall {
	var call soapCall
	decoder := xml.NewDecoder(bytes.NewReader(body))
	inBody, inThis := false, false
	for {
		token, err := decoder.Token()
		if err != nil {
			return call
		}
		switch t := token.(type) {
		case xml.StartElement:
			switch {
			case !inBody && t.Name.Local == "Body":
				inBody = true
			case inBody && call.Method == "":
				call.Method = t.Name.Local
			case call.Method != "" && t.Name.Local == "_this":
				inThis = true
				for _, attr := range t.Attr {
					if attr.Name.Local == "type" {
						call.This.Type = attr.Value
					}
				}
			}
		case xml.CharData:
			if inThis {
				call.This.Value += string(t)
			}
		case xml.EndElement:
			if inThis {
				call.This.Value = strings.TrimSpace(call.This.Value)
				return call
			}
		}
	}
}

func (l *launcher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case configPath:
		l.serveConfig(w, r)
		return
	case resetPath:
		l.serveReset(w, r)
		return
	case webmksStatePath, webmksDropPath:
		l.webmks.serveControl(w, r)
		return
	case guestStatePath, guestResetPath:
		l.guest.serveControl(w, r)
		return
	case guestFilePath:
		l.guest.serveTransfer(w, r)
		return
	}
	if r.Method != http.MethodPost || !l.sdkPaths[r.URL.Path] || atomic.LoadInt32(&l.seeding) == 1 {
		l.next.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	call := parseCall(body)
	if call.Method == "" {
		l.next.ServeHTTP(w, r)
		return
	}
	if call.Method == "Login" && len(l.extraUsers) > 0 {
		body = l.asPrimaryLogin(body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	rules := l.rules.get()

	if d := rules.methodDelay(call.Method); d > 0 {
		l.sleep(r, l.jittered(d))
	}
	if call.Method == "CancelTask" && call.This.Type == "Task" {
		l.cancelTask(w, r, call)
		return
	}
	if rule, ok := firstMatch(rules.Hang, call.Method, body); ok {
		l.hang(w, r, call, rule)
		return
	}
	if rule, ok := firstMatch(rules.Fail, call.Method, body); ok {
		l.fail(w, r, call, rule, rules.taskDuration(call.Method))
		return
	}
	if call.Method == "AcquireTicket" {
		l.webmks.acquireTicket(l, w, r, call, body)
		return
	}
	if call.Method == "ListProcessesInGuest" {
		l.withExitCodes(w, r)
		return
	}
	if isTaskMethod(call.Method) {
		if d := rules.taskDuration(call.Method); d > 0 {
			l.slowDown(w, r, d)
			return
		}
	}
	if collectorWaits[call.Method] && call.This.Type == "PropertyCollector" {
		release := l.collectors.enter(r, call.This.Value, l.shutdown)
		if release == nil {
			return // the client is gone, or the launcher is stopping
		}
		defer release()
	}
	l.next.ServeHTTP(w, r)
}

var processInfo = regexp.MustCompile(`(?s)<returnval>.*?</returnval>`)

// withExitCodes adds exitCode 0 to the processes that ended with it: govmomi's GuestProcessInfo
// leaves a zero exitCode out (omitempty), where vSphere sends it once a process has ended.
func (l *launcher) withExitCodes(w http.ResponseWriter, r *http.Request) {
	recorder := httptest.NewRecorder()
	l.next.ServeHTTP(recorder, r)
	if recorder.Code == http.StatusOK {
		body := processInfo.ReplaceAllFunc(recorder.Body.Bytes(), func(info []byte) []byte {
			if !bytes.Contains(info, []byte("<endTime>")) || bytes.Contains(info, []byte("<exitCode>")) {
				return info
			}
			return append(info[:len(info)-len("</returnval>"):len(info)-len("</returnval>")], []byte("<exitCode>0</exitCode></returnval>")...)
		})
		recorder.Body = bytes.NewBuffer(body)
		recorder.Header().Del("Content-Length")
	}
	copyResponse(w, recorder)
}

func isTaskMethod(method string) bool { return strings.HasSuffix(method, "_Task") }

func (l *launcher) acceptUsers(user, password string, extra []string) error {
	l.primaryUser, l.primaryPassword = user, password
	l.extraUsers = map[string]string{}
	for _, entry := range extra {
		name, secret, ok := strings.Cut(entry, ":")
		if !ok || name == "" {
			return fmt.Errorf("-extra-user %q: want name:password", entry)
		}
		if user == "" {
			return fmt.Errorf("-extra-user needs -username")
		}
		l.extraUsers[name] = secret
	}
	return nil
}

// asPrimaryLogin rewrites a Login of an extra user with the right password into the
// primary user's; anything else is returned unchanged (and checked as usual).
func (l *launcher) asPrimaryLogin(body []byte) []byte {
	var login struct {
		UserName string `xml:"Body>Login>userName"`
		Password string `xml:"Body>Login>password"`
	}
	if err := xml.Unmarshal(body, &login); err != nil {
		return body
	}
	secret, ok := l.extraUsers[login.UserName]
	if !ok || secret != login.Password {
		return body
	}
	text := string(body)
	text = strings.Replace(text, ">"+escape(login.UserName)+"</", ">"+escape(l.primaryUser)+"</", 1)
	text = strings.Replace(text, ">"+escape(login.Password)+"</", ">"+escape(l.primaryPassword)+"</", 1)
	return []byte(text)
}

func (l *launcher) jittered(d time.Duration) time.Duration {
	if l.jitter > 0 {
		d += time.Duration(rand.NormFloat64() * l.jitter * float64(d))
	}
	if d < 0 {
		return 0
	}
	return d
}

func (l *launcher) sleep(r *http.Request, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-r.Context().Done():
	case <-l.shutdown:
	}
}

// --- tasks that look running ------------------------------------------------

var taskReturnval = regexp.MustCompile(`<returnval type="Task">([^<]+)</returnval>`)

// slowDown lets the simulator do the call, then makes the task it returned
// look running for d before it shows its real final state.
func (l *launcher) slowDown(w http.ResponseWriter, r *http.Request, d time.Duration) {
	recorder := httptest.NewRecorder()
	l.next.ServeHTTP(recorder, r)
	if recorder.Code == http.StatusOK {
		if m := taskReturnval.FindSubmatch(recorder.Body.Bytes()); m != nil {
			l.holdTask(types.ManagedObjectReference{Type: "Task", Value: string(m[1])}, d)
		}
	}
	copyResponse(w, recorder)
}

func copyResponse(w http.ResponseWriter, recorder *httptest.ResponseRecorder) {
	for key, values := range recorder.Header() {
		w.Header()[key] = values
	}
	w.WriteHeader(recorder.Code)
	_, _ = w.Write(recorder.Body.Bytes())
}

func (l *launcher) holdTask(ref types.ManagedObjectReference, d time.Duration) {
	task, ok := simulator.Map.Get(ref).(*simulator.Task)
	if !ok {
		return
	}
	var final []types.PropertyChange
	simulator.Map.WithLock(task, func() {
		info := task.Info
		if info.State != types.TaskInfoStateSuccess && info.State != types.TaskInfoStateError {
			return // not finished (a simulator crash path): leave it alone
		}
		final = finalChanges(info)
		simulator.Map.Update(task, []types.PropertyChange{
			{Name: "info.state", Val: types.TaskInfoStateRunning},
			{Name: "info.progress", Val: int32(0)},
			{Name: "info.completeTime", Val: nil},
			{Name: "info.result", Val: nil},
			{Name: "info.error", Val: nil},
			{Name: "info.cancelable", Val: false},
		})
	})
	if final == nil {
		return
	}
	tracked := l.track(ref, slowTask)
	go l.drive(task, tracked, d, final)
}

// finalChanges restores a finished task's real outcome.
func finalChanges(info types.TaskInfo) []types.PropertyChange {
	complete := time.Now()
	if info.CompleteTime != nil {
		complete = *info.CompleteTime
	}
	var result, fault interface{}
	if info.Result != nil {
		result = info.Result
	}
	if info.Error != nil {
		fault = *info.Error
	}
	changes := []types.PropertyChange{
		{Name: "info.result", Val: result},
		{Name: "info.error", Val: fault},
		{Name: "info.completeTime", Val: complete},
	}
	if info.State == types.TaskInfoStateSuccess {
		changes = append(changes, types.PropertyChange{Name: "info.progress", Val: int32(100)})
	}
	// The state goes last, so a watcher that sees the final state has the rest.
	return append(changes, types.PropertyChange{Name: "info.state", Val: info.State})
}

func errorChanges(fault types.BaseMethodFault, message string) []types.PropertyChange {
	return []types.PropertyChange{
		{Name: "info.error", Val: types.LocalizedMethodFault{Fault: fault, LocalizedMessage: message}},
		{Name: "info.completeTime", Val: time.Now()},
		{Name: "info.state", Val: types.TaskInfoStateError},
	}
}

func (l *launcher) track(ref types.ManagedObjectReference, kind taskKind) *trackedTask {
	tracked := &trackedTask{kind: kind, canceled: make(chan struct{})}
	l.mu.Lock()
	l.tasks[ref] = tracked
	l.mu.Unlock()
	return tracked
}

// untrack ends the launcher's hold on a task; only the first caller gets true,
// so a cancel and a normal completion cannot both finish the task.
func (l *launcher) untrack(ref types.ManagedObjectReference, tracked *trackedTask) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tasks[ref] != tracked {
		return false
	}
	delete(l.tasks, ref)
	return true
}

func update(task *simulator.Task, changes []types.PropertyChange) {
	simulator.Map.WithLock(task, func() { simulator.Map.Update(task, changes) })
}

// drive moves a running task's progress up every progressInterval and, after
// d, applies final.
func (l *launcher) drive(task *simulator.Task, tracked *trackedTask, d time.Duration, final []types.PropertyChange) {
	defer guard("the task " + task.Self.Value)
	start := time.Now()
	ticker := time.NewTicker(progressInterval)
	defer ticker.Stop()
	done := time.NewTimer(d)
	defer done.Stop()
	last := int32(0)
	for {
		select {
		case <-l.shutdown:
			return
		case <-tracked.canceled:
			return // cancelTask has finished the task
		case <-done.C:
			if l.untrack(task.Self, tracked) {
				update(task, final)
			}
			return
		case now := <-ticker.C:
			progress := int32(now.Sub(start) * 100 / d)
			if progress < 1 {
				progress = 1
			}
			if progress > 99 {
				progress = 99
			}
			if progress != last {
				last = progress
				update(task, []types.PropertyChange{{Name: "info.progress", Val: progress}})
			}
		}
	}
}

// --- fail and hang rules -----------------------------------------------------

// checkCall answers for the simulator when the request has no valid session or
// its _this object does not exist; it returns false when it has answered.
func (l *launcher) checkCall(w http.ResponseWriter, r *http.Request, call soapCall) (mo.Reference, bool) {
	if !sessionless[call.Method] {
		probe := httptest.NewRequest(http.MethodPost, r.URL.Path, strings.NewReader(currentTimeRequest))
		probe.Header.Set("Content-Type", "text/xml; charset=utf-8")
		for _, cookie := range r.Cookies() {
			probe.AddCookie(cookie)
		}
		recorder := httptest.NewRecorder()
		l.next.ServeHTTP(recorder, probe)
		if recorder.Code != http.StatusOK {
			copyResponse(w, recorder)
			return nil, false
		}
	}
	obj := simulator.Map.Get(call.This)
	if obj == nil && call.This.Value != "" {
		msg := fmt.Sprintf("managed object not found: %s", call.This)
		writeFault(w, msg, "ManagedObjectNotFound",
			fmt.Sprintf(`<obj type="%s">%s</obj>`, escape(call.This.Type), escape(call.This.Value)))
		return nil, false
	}
	return obj, true
}

const currentTimeRequest = `<?xml version="1.0" encoding="UTF-8"?>` +
	`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">` +
	`<soapenv:Body><CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></CurrentTime>` +
	`</soapenv:Body></soapenv:Envelope>`

func injectedMessage(call soapCall, rule matchRule) string {
	return fmt.Sprintf("injected failure for %s on %s (rule %s)", call.Method, call.This.Value, rule)
}

// fail answers a call selected by a fail rule. A *_Task method gets a real
// task that ends in error (after looking running for d, if d > 0), without the
// simulator doing anything; any other method gets a SOAP fault.
func (l *launcher) fail(w http.ResponseWriter, r *http.Request, call soapCall, rule matchRule, d time.Duration) {
	obj, ok := l.checkCall(w, r, call)
	if !ok {
		return
	}
	message := injectedMessage(call, rule)
	log.Printf("nestlab: %s", message)
	if !isTaskMethod(call.Method) || obj == nil {
		writeFault(w, message, "SystemError", "<reason>"+escape(message)+"</reason>")
		return
	}
	task := l.newTask(obj, call.Method)
	final := errorChanges(&types.SystemError{Reason: message}, message)
	if d <= 0 {
		update(task, final)
	} else {
		tracked := l.track(task.Self, injectedTask)
		go l.drive(task, tracked, d, final)
	}
	writeTaskResponse(w, call.Method, task.Self)
}

// hang answers a call selected by a hang rule. A *_Task method gets a task
// that stays running (progress stuck) until CancelTask; any other call is held
// open until the client gives up or the simulator stops.
func (l *launcher) hang(w http.ResponseWriter, r *http.Request, call soapCall, rule matchRule) {
	obj, ok := l.checkCall(w, r, call)
	if !ok {
		return
	}
	log.Printf("nestlab: hanging %s on %s (rule %s)", call.Method, call.This.Value, rule)
	if !isTaskMethod(call.Method) || obj == nil {
		select {
		case <-r.Context().Done():
		case <-l.shutdown:
			writeFault(w, "the simulator is shutting down", "SystemError", "<reason>shutting down</reason>")
		}
		return
	}
	task := l.newTask(obj, call.Method)
	l.track(task.Self, hungTask)
	writeTaskResponse(w, call.Method, task.Self)
}

// newTask registers a running, cancelable task for method on obj that the
// simulator itself never runs.
func (l *launcher) newTask(obj mo.Reference, method string) *simulator.Task {
	name := strings.TrimSuffix(method, "_Task") + "Task" // CreateTask turns FooTask into Foo_Task
	task := simulator.CreateTask(obj, name, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return nil, nil
	})
	update(task, []types.PropertyChange{
		{Name: "info.startTime", Val: time.Now()},
		{Name: "info.state", Val: types.TaskInfoStateRunning},
		{Name: "info.cancelable", Val: true},
		{Name: "info.progress", Val: int32(0)},
	})
	return task
}

// cancelTask: a task made by a fail or hang rule ends in error with
// RequestCanceled; a task that is only made to look running is not cancelable
// (NotSupported, its work is done); a finished task gives InvalidState.
func (l *launcher) cancelTask(w http.ResponseWriter, r *http.Request, call soapCall) {
	obj, ok := l.checkCall(w, r, call)
	if !ok {
		return
	}
	task, isTask := obj.(*simulator.Task)
	if !isTask {
		l.next.ServeHTTP(w, r)
		return
	}
	l.mu.Lock()
	tracked := l.tasks[call.This]
	l.mu.Unlock()
	if tracked != nil && tracked.kind != slowTask && l.untrack(call.This, tracked) {
		close(tracked.canceled)
		message := "The task was canceled by a user."
		update(task, append(errorChanges(&types.RequestCanceled{}, message),
			types.PropertyChange{Name: "info.cancelled", Val: true}))
		log.Printf("nestlab: canceled %s", call.This.Value)
		writeResponse(w, "CancelTaskResponse", "")
		return
	}
	var state types.TaskInfoState
	simulator.Map.WithLock(task, func() { state = task.Info.State })
	if state == types.TaskInfoStateSuccess || state == types.TaskInfoStateError {
		writeFault(w, fmt.Sprintf("%s has already completed", call.This.Value), "InvalidState", "")
		return
	}
	writeFault(w, fmt.Sprintf("%s is not cancelable", call.This.Value), "NotSupported", "")
}

// --- SOAP responses ------------------------------------------------------------

const envelopeStart = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
	`<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" ` +
	`xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" ` +
	`xmlns:xsd="http://www.w3.org/2001/XMLSchema" ` +
	`xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>`

const envelopeEnd = `</soapenv:Body></soapenv:Envelope>`

func escape(text string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(text))
	return b.String()
}

func writeResponse(w http.ResponseWriter, element, inner string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, `%s<%s xmlns="urn:vim25">%s</%s>%s`, envelopeStart, element, inner, element, envelopeEnd)
}

func writeTaskResponse(w http.ResponseWriter, method string, task types.ManagedObjectReference) {
	writeResponse(w, method+"Response", fmt.Sprintf(`<returnval type="Task">%s</returnval>`, escape(task.Value)))
}

// writeFault writes a SOAP fault whose detail is the vim25 fault type kind.
func writeFault(w http.ResponseWriter, message, kind, inner string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `%s<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring>`+
		`<detail><%sFault xmlns="urn:vim25" xsi:type="%s">%s</%sFault></detail></soapenv:Fault>%s`,
		envelopeStart, escape(message), kind, kind, inner, kind, envelopeEnd)
}
