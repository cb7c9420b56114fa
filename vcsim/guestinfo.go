package main

// The Tools RPC commands of a Linux guest that read the VM's guestinfo variables:
//
//	vmtoolsd --cmd "info-get guestinfo.NAME"     (also --cmd=...)
//	vmware-rpctool "info-get guestinfo.NAME"
//
// As open-vm-tools does, the command sends one RPC to the VMX and prints its reply: on success the
// value and a newline on stdout, exit status 0; on failure the reply ("No value found", "Unknown
// command") and a newline on stderr, exit status 1. The value is read from the VM's ExtraConfig at
// the time the command runs, so a ReconfigVM_Task is seen at once. The simulator appends
// ExtraConfig entries instead of replacing them, so the last entry for a key wins; an empty value
// means unset (vSphere removes an option set to ""). VMX keys are case-insensitive.

import (
	"fmt"
	"io"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// toolsRPC runs vmtoolsd or vmware-rpctool with its arguments.
func (sh *shell) toolsRPC(name string, args []string, out, errOut io.Writer) int {
	var request string
	found := false
	if name == "vmware-rpctool" {
		if len(args) == 0 {
			fmt.Fprint(errOut, "rpctool syntax:\n\n  rpctool <text>\n\n")
			return 1
		}
		request, found = args[0], true
	} else {
		for i := 0; i < len(args) && !found; i++ {
			switch {
			case args[i] == "--cmd" && i+1 < len(args):
				request, found = args[i+1], true
			case strings.HasPrefix(args[i], "--cmd="):
				request, found = strings.TrimPrefix(args[i], "--cmd="), true
			case args[i] == "--cmd":
				fmt.Fprintln(errOut, "Command line parsing failed: Missing argument for --cmd")
				return 1
			}
		}
		if !found {
			fmt.Fprintln(errOut, "vmtoolsd: only --cmd is simulated (the Tools daemon is always running)")
			return 1
		}
	}
	reply, ok := sh.rpc(request)
	if !ok {
		fmt.Fprintln(errOut, reply)
		return 1
	}
	fmt.Fprintln(out, reply)
	return 0
}

// rpc answers one Tools RPC as the VMX would: info-get of a guestinfo variable.
func (sh *shell) rpc(request string) (string, bool) {
	command, key, _ := strings.Cut(strings.TrimSpace(request), " ")
	if command != "info-get" {
		return "Unknown command", false
	}
	key = strings.TrimSpace(key)
	if !strings.HasPrefix(strings.ToLower(key), "guestinfo.") {
		return "No value found", false
	}
	vm, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: sh.fs.vm}).(*simulator.VirtualMachine)
	if !ok {
		return "No value found", false
	}
	value := ""
	simulator.Map.WithLock(vm, func() {
		if vm.Config == nil {
			return
		}
		for _, option := range vm.Config.ExtraConfig {
			if o := option.GetOptionValue(); strings.EqualFold(o.Key, key) {
				value = fmt.Sprint(o.Value)
			}
		}
	})
	if value == "" {
		return "No value found", false
	}
	return value, true
}
