package hyperv

import (
	"bytes"
	"context"
	"encoding/json"
)

// The PowerShell of every Hyper-V operation Restored uses: the Hyper-V
// module's cmdlets where they exist (Get-VMHost, Get-VM, New-VM, Start-VM,
// Stop-VM, Remove-VM, Get-VMSnapshot, Remove-VMSnapshot), and the WMI
// (CIM) classes of root\virtualization\v2 for what they lack: production
// checkpoints for backup (Msvm_VirtualSystemSnapshotService.CreateSnapshot
// with a Msvm_VirtualSystemSnapshotSettingData), reference points
// (ConvertToReferencePoint) and Resilient Change Tracking
// (Msvm_ImageManagementService.GetVirtualDiskChanges). Each body reads its
// parameters from $p and returns what is written as the result.

// hostInfo is Get-VMHost's answer.
type hostInfo struct {
	LogicalProcessorCount int32
	MemoryCapacity        int64
	ComputerName          string
}

const cmdHost = `Get-VMHost | Select-Object ComputerName, LogicalProcessorCount, MemoryCapacity`

// vmInfo is one VM of Get-VM, with its disks.
type vmInfo struct {
	VMId       string
	Name       string
	State      string
	Generation int
	Notes      string
	Disks      []diskInfo
}

// diskInfo is one Get-VMHardDiskDrive, with its VHD's size.
type diskInfo struct {
	ControllerType     string
	ControllerNumber   int
	ControllerLocation int
	Path               string
	Size               int64
}

const cmdVMs = `,@(Get-VM | ForEach-Object {
    $vm = $_
    [pscustomobject]@{
      VMId = [string]$vm.VMId; Name = $vm.Name; State = [string]$vm.State; Generation = $vm.Generation; Notes = $vm.Notes
      Disks = @(Get-VMHardDiskDrive -VM $vm | ForEach-Object {
        [pscustomobject]@{ControllerType = [string]$_.ControllerType; ControllerNumber = $_.ControllerNumber
          ControllerLocation = $_.ControllerLocation; Path = $_.Path; Size = (Get-VHD -Path $_.Path).Size}
      })
    }
  })`

// checkpointInfo is a backup checkpoint as made by cmdCheckpoint: its id,
// whether the guest was quiesced (a production checkpoint through the
// guest's VSS or fsfreeze integration service), and each disk's frozen
// file (the checkpoint's parent of the new .avhdx).
type checkpointInfo struct {
	ID         string
	Consistent bool
	Reason     string
	Disks      []diskInfo
}

// cmdCheckpoint takes a checkpoint for backup: application-consistent when
// $p.Quiesce, falling back to crash-consistent with Hyper-V's message.
const cmdCheckpoint = `$ns = 'root\virtualization\v2'
    $vm = Get-CimInstance -Namespace $ns -ClassName Msvm_ComputerSystem -Filter ("Name='{0}'" -f $p.VMId)
    if (-not $vm) { throw [System.Management.Automation.ItemNotFoundException]::new("VM $($p.VMId) not found") }
    $svc = Get-CimInstance -Namespace $ns -ClassName Msvm_VirtualSystemSnapshotService
    $take = {
      param($level)
      $sd = New-CimInstance -Namespace $ns -ClassName Msvm_VirtualSystemSnapshotSettingData -ClientOnly -Property @{ConsistencyLevel = $level; IgnoreNonSnapshottableDisks = $true}
      $ser = [Microsoft.Management.Infrastructure.Serialization.CimSerializer]::Create()
      $xml = [Text.Encoding]::Unicode.GetString($ser.Serialize($sd, [Microsoft.Management.Infrastructure.Serialization.InstanceSerializationOptions]::None))
      $r = Invoke-CimMethod -InputObject $svc -MethodName CreateSnapshot -Arguments @{AffectedSystem = $vm; SnapshotSettings = $xml; SnapshotType = 32768}
      if ($r.ReturnValue -eq 4096) { $job = Get-CimInstance -InputObject $r.Job; while ($job.JobState -lt 7) { Start-Sleep -Milliseconds 200; $job = Get-CimInstance -InputObject $job } ; if ($job.JobState -ne 7) { throw $job.ErrorDescription } }
      elseif ($r.ReturnValue -ne 0) { throw "CreateSnapshot returned $($r.ReturnValue)" }
      Get-CimAssociatedInstance -InputObject $r.Job -ResultClassName Msvm_VirtualSystemSettingData
    }
    $reason = ''
    if ($p.Quiesce) { try { $snap = & $take 1 ; $consistent = $true } catch { $reason = $_.Exception.Message; $snap = & $take 2; $consistent = $false } }
    else { $snap = & $take 2; $consistent = $false }
    $cp = Get-VMSnapshot -VMName $vm.ElementName | Where-Object { $_.Id -eq $snap.ConfigurationID }
    Rename-VMSnapshot -VMSnapshot $cp -NewName $p.Name
    [pscustomobject]@{ID = [string]$cp.Id; Consistent = $consistent; Reason = $reason
      Disks = @(Get-VMHardDiskDrive -VMSnapshot $cp | ForEach-Object {
        [pscustomobject]@{ControllerType = [string]$_.ControllerType; ControllerNumber = $_.ControllerNumber
          ControllerLocation = $_.ControllerLocation; Path = $_.Path; Size = (Get-VHD -Path $_.Path).Size}
      })}`

// changesInfo is a page of GetVirtualDiskChanges.
type changesInfo struct {
	Offsets   []int64
	Lengths   []int64
	Processed int64
}

// cmdChanges asks Resilient Change Tracking what changed in $p.Path since
// the reference point's RCT id $p.Since, from $p.Offset for $p.Length
// bytes (one page).
const cmdChanges = `$ns = 'root\virtualization\v2'
    $ims = Get-CimInstance -Namespace $ns -ClassName Msvm_ImageManagementService
    $r = Invoke-CimMethod -InputObject $ims -MethodName GetVirtualDiskChanges -Arguments @{Path = $p.Path; LimitId = $p.Since; ByteOffset = [uint64]$p.Offset; ByteLength = [uint64]$p.Length; TargetSnapshotId = $p.Target}
    if ($r.ReturnValue -ne 0) { throw "GetVirtualDiskChanges returned $($r.ReturnValue)" }
    [pscustomobject]@{Offsets = @($r.ChangedByteOffsets); Lengths = @($r.ChangedByteLengths); Processed = [int64]$r.ProcessedByteLength}`

// referenceInfo is a reference point and each disk's RCT id.
type referenceInfo struct {
	ID     string
	RCTIDs []string
}

// cmdReference converts the backup checkpoint $p.ID into a reference point
// (its .avhdx merged; the RCT ids stay) and returns the disks' RCT ids.
const cmdReference = `$ns = 'root\virtualization\v2'
    $cp = Get-CimInstance -Namespace $ns -ClassName Msvm_VirtualSystemSettingData -Filter ("ConfigurationID='{0}'" -f $p.ID)
    if (-not $cp) { throw [System.Management.Automation.ItemNotFoundException]::new("checkpoint $($p.ID) not found") }
    $svc = Get-CimInstance -Namespace $ns -ClassName Msvm_VirtualSystemSnapshotService
    $r = Invoke-CimMethod -InputObject $svc -MethodName ConvertToReferencePoint -Arguments @{AffectedSnapshot = $cp}
    if ($r.ReturnValue -eq 4096) { $job = Get-CimInstance -InputObject $r.Job; while ($job.JobState -lt 7) { Start-Sleep -Milliseconds 200; $job = Get-CimInstance -InputObject $job }; if ($job.JobState -ne 7) { throw $job.ErrorDescription } }
    elseif ($r.ReturnValue -ne 0) { throw "ConvertToReferencePoint returned $($r.ReturnValue)" }
    $rp = Get-CimAssociatedInstance -InputObject $r.Job -ResultClassName Msvm_VirtualSystemReferencePoint
    [pscustomobject]@{ID = [string]$rp.InstanceID; RCTIDs = @($rp.ResilientChangeTrackingIdentifiers)}`

// cmdRemoveCheckpoint removes a checkpoint by id (its .avhdx merged into
// the disk); gone already is not an error.
const cmdRemoveCheckpoint = `$cp = Get-VMSnapshot -VMName * | Where-Object { [string]$_.Id -eq $p.ID }
    if ($cp) { Remove-VMSnapshot -VMSnapshot $cp -Confirm:$false }`

// cmdNewVM makes a restore's VM of its converted disks, not started:
// generation 2 for UEFI, 1 for BIOS.
const cmdNewVM = `$vm = New-VM -Name $p.Name -Generation $p.Generation -MemoryStartupBytes ([int64]$p.MemoryBytes) -NoVHD -Path $p.Dir
    Set-VM -VM $vm -ProcessorCount $p.CPUs -Notes $p.Notes -AutomaticCheckpointsEnabled $false
    if ($p.Generation -eq 2) { Set-VMFirmware -VM $vm -EnableSecureBoot Off }
    foreach ($d in $p.Disks) { Add-VMHardDiskDrive -VM $vm -Path $d }
    [string]$vm.VMId`

const cmdStartVM = `Start-VM -Name $p.Name`

// cmdRemoveVM turns a restore's VM off and removes it and its directory;
// nothing left is not an error.
const cmdRemoveVM = `$vm = Get-VM -Name $p.Name -ErrorAction SilentlyContinue
    if ($vm) { Stop-VM -VM $vm -TurnOff -Force -ErrorAction SilentlyContinue; Remove-VM -VM $vm -Force }
    if (Test-Path -LiteralPath $p.Dir) { Remove-Item -LiteralPath $p.Dir -Recurse -Force }`

// unmarshalList reads a JSON array, or one object as a list of one
// (PowerShell writes a single result unwrapped).
func unmarshalList[T any](b json.RawMessage, out *[]T) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var one T
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*out = []T{one}
		return nil
	}
	return json.Unmarshal(b, out)
}

// vms lists the host's VMs.
func vms(ctx context.Context, r Runner) ([]vmInfo, error) {
	var raw json.RawMessage
	if err := call(ctx, r, "vms", cmdVMs, struct{}{}, &raw); err != nil {
		return nil, err
	}
	var out []vmInfo
	if len(raw) == 0 {
		return out, nil
	}
	return out, unmarshalList(raw, &out)
}

// checkpointRef is a checkpoint of cmdCheckpoints.
type checkpointRef struct {
	ID, Name, VMId string
}

// cmdCheckpoints lists the checkpoints named restored-*.
const cmdCheckpoints = `,@(Get-VMSnapshot -VMName * | Where-Object { $_.Name -like 'restored-*' } | ForEach-Object {
      [pscustomobject]@{ID = [string]$_.Id; Name = $_.Name; VMId = [string]$_.VMId} })`
