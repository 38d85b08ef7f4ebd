package agentmetrics

import "golang.org/x/sys/windows"

// freeBytes is the space the caller has left on dir's volume (-1 when it
// cannot be read).
func freeBytes(dir string) float64 {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return -1
	}
	var free, total, all uint64
	if windows.GetDiskFreeSpaceEx(p, &free, &total, &all) != nil {
		return -1
	}
	return float64(free)
}
