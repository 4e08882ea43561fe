package tfops

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// DeviceSet is a parsed --devices value: the devices one process spreads each step over.
type DeviceSet struct {
	All   bool   // every GPU TensorFlow exposes (the CPU when there is none)
	Kind  string // "gpu" or "cpu" for an explicit list
	Index []int  // the listed indices, in order
}

// ParseDevices parses "all", "gpu:0,gpu:1" or "cpu:0,cpu:1" (logical CPU devices:
// TensorFlow splits the host into that many, which runs the multi-device path anywhere).
func ParseDevices(s string) (DeviceSet, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if v == "all" {
		return DeviceSet{All: true}, nil
	}
	var ds DeviceSet
	seen := map[int]bool{}
	for _, part := range strings.Split(v, ",") {
		kind, idx, ok := strings.Cut(strings.TrimSpace(part), ":")
		n, err := strconv.Atoi(idx)
		if !ok || err != nil || n < 0 || (kind != "gpu" && kind != "cpu") {
			return DeviceSet{}, fmt.Errorf("devices %q: want all, or a list such as gpu:0,gpu:1 or cpu:0,cpu:1", s)
		}
		if ds.Kind != "" && ds.Kind != kind {
			return DeviceSet{}, fmt.Errorf("devices %q: list GPUs or CPUs, not both", s)
		}
		if seen[n] {
			return DeviceSet{}, fmt.Errorf("devices %q: %s:%d is listed twice", s, kind, n)
		}
		ds.Kind, seen[n] = kind, true
		ds.Index = append(ds.Index, n)
	}
	return ds, nil
}

// Resolve returns the session config that exposes the set's devices, given devs (as listed
// with every device visible), and the in-process device names of the replicas.
func (ds DeviceSet) Resolve(devs []Device, base SessionConfig) (SessionConfig, []string, error) {
	cfg := base
	var gpus []int
	for _, d := range devs {
		if d.Type == "GPU" {
			gpus = append(gpus, len(gpus))
		}
	}
	kind, index := ds.Kind, ds.Index
	if ds.All {
		kind, index = "gpu", gpus
		if len(gpus) == 0 {
			kind, index = "cpu", []int{0}
		}
	}
	var names []string
	switch kind {
	case "gpu":
		visible := make([]string, len(index))
		for i, n := range index {
			if n >= len(gpus) {
				return cfg, nil, fmt.Errorf("%w: gpu:%d requested, TensorFlow exposes %d GPU(s) (see `tfflowers devices`)", ErrNoDevice, n, len(gpus))
			}
			visible[i] = strconv.Itoa(n)
			// VisibleDeviceList renumbers the listed GPUs from 0 in its order.
			names = append(names, fmt.Sprintf("/device:GPU:%d", i))
		}
		cfg.VisibleGPUs = strings.Join(visible, ",")
	case "cpu":
		sorted := append([]int(nil), index...)
		sort.Ints(sorted)
		cfg.CPUOnly, cfg.CPUDevices = true, sorted[len(sorted)-1]+1
		for _, n := range index {
			names = append(names, fmt.Sprintf("/device:CPU:%d", n))
		}
	}
	return cfg, names, nil
}
