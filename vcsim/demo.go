package main

// The demo inventory (-demo): the VMs an instructor's "Nested vSphere 8 Lab"
// template is built from, next to the stock VPX inventory. It is made through
// the SOAP API against the freshly started server, before any client can
// connect, in a fixed order, so every start yields the same names and morefs.

import (
	"context"
	"fmt"
	"net/url"

	"github.com/google/uuid"
	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	demoDatacenter     = "DC0"
	demoCluster        = "DC0_C0"
	demoDatastore      = "LocalDS_0"
	demoVswitch        = "vSwitch0"
	demoPortGroup      = "Nestlab-Lab-Template"
	demoTemplateFolder = "Nestlab Templates"
	demoLabFolder      = "Nested vSphere 8 Lab"
)

// Guest ids of vSphere 8 that simulator 0.24 does not know; without them
// CreateVM and ReconfigVM reject the demo VMs with InvalidArgument.
var extraGuestIDs = []types.VirtualMachineGuestOsIdentifier{
	"vmkernel7Guest", "vmkernel8Guest", "debian12Guest", "debian12_64Guest",
}

type demoVM struct {
	Name       string
	GuestID    string
	CPUs       int32
	MemoryMB   int64
	NestedHV   bool
	NICs       int
	Annotation string
}

var demoVMs = []demoVM{
	{"esxi-01", "vmkernel8Guest", 4, 16384, true, 2,
		"Nested ESXi 8.0 host 1 of the Nested vSphere 8 Lab. NIC 1: management, NIC 2: vMotion and vSAN."},
	{"esxi-02", "vmkernel8Guest", 4, 16384, true, 2,
		"Nested ESXi 8.0 host 2 of the Nested vSphere 8 Lab. NIC 1: management, NIC 2: vMotion and vSAN."},
	{"esxi-03", "vmkernel8Guest", 4, 16384, true, 2,
		"Nested ESXi 8.0 host 3 of the Nested vSphere 8 Lab. NIC 1: management, NIC 2: vMotion and vSAN."},
	{"vcsa", "vmwarePhoton64Guest", 2, 14336, false, 1,
		"vCenter Server Appliance 8.0 of the Nested vSphere 8 Lab; manages esxi-01 to esxi-03."},
	{"router", "debian12_64Guest", 1, 1024, false, 1,
		"Debian 12 router and jump box of the Nested vSphere 8 Lab: gateway, DNS and DHCP for the lab network."},
}

func registerGuestIDs() {
	known := map[types.VirtualMachineGuestOsIdentifier]bool{}
	for _, id := range simulator.GuestID {
		known[id] = true
	}
	for _, id := range extraGuestIDs {
		if !known[id] {
			simulator.GuestID = append(simulator.GuestID, id)
		}
	}
}

// demoUUID is a stable BIOS uuid per VM, so its MAC addresses are stable too.
func demoUUID(name string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://nestlab.invalid/demo/"+name)).String()
}

func isDuplicateName(err error) bool {
	if !soap.IsSoapFault(err) {
		return false
	}
	_, ok := soap.ToSoapFault(err).VimFault().(types.DuplicateName)
	return ok
}

// seedDemo builds the demo inventory through the server at u (with login).
func seedDemo(ctx context.Context, u *url.URL) error {
	client, err := govmomi.NewClient(ctx, u, true)
	if err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	defer func() { _ = client.Logout(ctx) }()

	finder := find.NewFinder(client.Client, false)
	dc, err := finder.Datacenter(ctx, demoDatacenter)
	if err != nil {
		return fmt.Errorf("-demo needs datacenter %s: %w", demoDatacenter, err)
	}
	finder.SetDatacenter(dc)
	cluster, err := finder.ClusterComputeResource(ctx, demoCluster)
	if err != nil {
		return fmt.Errorf("-demo needs cluster %s: %w", demoCluster, err)
	}
	datastore, err := finder.Datastore(ctx, demoDatastore)
	if err != nil {
		return fmt.Errorf("-demo needs datastore %s: %w", demoDatastore, err)
	}
	hosts, err := cluster.Hosts(ctx)
	if err != nil || len(hosts) == 0 {
		return fmt.Errorf("-demo needs hosts in %s (-host >= 1): %v", demoCluster, err)
	}
	pool, err := cluster.ResourcePool(ctx)
	if err != nil {
		return err
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return err
	}

	if err := addDemoPortGroup(ctx, finder, hosts); err != nil {
		return err
	}

	templates, err := folders.VmFolder.CreateFolder(ctx, demoTemplateFolder)
	if err != nil {
		return fmt.Errorf("folder %s: %w", demoTemplateFolder, err)
	}
	lab, err := templates.CreateFolder(ctx, demoLabFolder)
	if err != nil {
		return fmt.Errorf("folder %s: %w", demoLabFolder, err)
	}

	for i, vm := range demoVMs {
		host := hosts[i%len(hosts)] // fixed placement: the simulator would pick at random
		task, err := lab.CreateVM(ctx, demoConfigSpec(vm, datastore.Name()), pool, host)
		if err == nil {
			_, err = task.WaitForResult(ctx)
		}
		if err != nil {
			return fmt.Errorf("VM %s: %w", vm.Name, err)
		}
	}
	return nil
}

func demoConfigSpec(vm demoVM, datastore string) types.VirtualMachineConfigSpec {
	id := demoUUID(vm.Name)
	spec := types.VirtualMachineConfigSpec{
		Name:            vm.Name,
		GuestId:         vm.GuestID,
		NumCPUs:         vm.CPUs,
		MemoryMB:        vm.MemoryMB,
		NestedHVEnabled: types.NewBool(vm.NestedHV),
		Annotation:      vm.Annotation,
		Uuid:            id,
		InstanceUuid:    id,
		Files:           &types.VirtualMachineFileInfo{VmPathName: fmt.Sprintf("[%s]", datastore)},
	}
	for n := 0; n < vm.NICs; n++ {
		nic := &types.VirtualVmxnet3{VirtualVmxnet: types.VirtualVmxnet{VirtualEthernetCard: types.VirtualEthernetCard{
			VirtualDevice: types.VirtualDevice{
				Key: int32(-100 - n),
				Backing: &types.VirtualEthernetCardNetworkBackingInfo{
					VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: demoPortGroup},
				},
				Connectable: &types.VirtualDeviceConnectInfo{StartConnected: true, AllowGuestControl: true},
			},
			AddressType: string(types.VirtualEthernetCardMacTypeGenerated),
		}}}
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationAdd,
			Device:    nic,
		})
	}
	return spec
}

func demoPortGroupSpec() types.HostPortGroupSpec {
	return types.HostPortGroupSpec{
		Name:        demoPortGroup,
		VlanId:      0,
		VswitchName: demoVswitch,
		Policy: types.HostNetworkPolicy{
			Security: &types.HostNetworkSecurityPolicy{
				AllowPromiscuous: types.NewBool(true),
				ForgedTransmits:  types.NewBool(true),
				MacChanges:       types.NewBool(true),
			},
		},
	}
}

// addDemoPortGroup adds the lab port group to vSwitch0 of every host. The
// simulator keeps one Network object per datacenter and answers DuplicateName
// for every host after the first, without recording the port group on that
// host; the launcher then records it itself, so each host's networkInfo and
// config.network list it and Network.host / HostSystem.network link up.
func addDemoPortGroup(ctx context.Context, finder *find.Finder, hosts []*object.HostSystem) error {
	spec := demoPortGroupSpec()
	for _, host := range hosts {
		ns, err := host.ConfigManager().NetworkSystem(ctx)
		if err != nil {
			return err
		}
		if err := ns.AddPortGroup(ctx, spec); err != nil && !isDuplicateName(err) {
			return fmt.Errorf("port group %s on %s: %w", demoPortGroup, host.Name(), err)
		}
	}
	network, err := finder.Network(ctx, demoPortGroup)
	if err != nil {
		return err
	}
	netRef := network.Reference()
	netObj, _ := simulator.Map.Get(netRef).(*mo.Network)
	for _, host := range hosts {
		hs, ok := simulator.Map.Get(host.Reference()).(*simulator.HostSystem)
		if !ok {
			return fmt.Errorf("host %s not in the simulator's registry", host.Reference())
		}
		ns, ok := simulator.Map.Get(*hs.ConfigManager.NetworkSystem).(*simulator.HostNetworkSystem)
		if !ok {
			return fmt.Errorf("network system of %s not in the simulator's registry", host.Reference())
		}
		simulator.Map.WithLock(ns, func() {
			info := ns.NetworkInfo
			if !hasPortGroup(info.Portgroup, demoPortGroup) {
				for i := range info.Vswitch {
					if info.Vswitch[i].Name == demoVswitch {
						info.Vswitch[i].Portgroup = append(info.Vswitch[i].Portgroup, demoPortGroup)
					}
				}
				info.Portgroup = append(info.Portgroup, types.HostPortGroup{
					Key:  "key-vim.host.PortGroup-" + demoPortGroup,
					Spec: spec,
				})
			}
			simulator.Map.WithLock(hs, func() {
				// A fresh copy: host config and network system must not share a backing array.
				hs.Config.Network.Portgroup = append([]types.HostPortGroup(nil), info.Portgroup...)
			})
		})
		simulator.Map.AddReference(hs, &hs.Network, netRef)
		if netObj != nil {
			simulator.Map.AddReference(netObj, &netObj.Host, hs.Self)
		}
	}
	return nil
}

func hasPortGroup(groups []types.HostPortGroup, name string) bool {
	for _, pg := range groups {
		if pg.Spec.Name == name {
			return true
		}
	}
	return false
}
