package tfops

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	tf "github.com/galeone/tensorflow/tensorflow/go"
)

// Device is one device TensorFlow exposes.
type Device struct {
	Name        string `json:"name"` // e.g. /job:localhost/replica:0/task:0/device:GPU:0
	Type        string `json:"type"` // CPU, GPU, TPU
	MemoryBytes int64  `json:"memory_bytes"`
}

// Short returns the device's short name, e.g. "GPU:0".
func (d Device) Short() string {
	if i := strings.LastIndex(d.Name, "device:"); i >= 0 {
		return d.Name[i+len("device:"):]
	}
	return d.Name
}

func convertDevices(devs []tf.Device, err error) ([]Device, error) {
	if err != nil {
		return nil, fmt.Errorf("tfops: list devices: %w", err)
	}
	out := make([]Device, 0, len(devs))
	for _, d := range devs {
		out = append(out, Device{Name: d.Name, Type: d.Type, MemoryBytes: d.MemoryLimitBytes})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ListDevices returns every device TensorFlow exposes to a session built with cfg.
func ListDevices(cfg SessionConfig) ([]Device, error) {
	g := tf.NewGraph()
	s, err := NewSession(g, cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Devices()
}

// DeviceChoice is a parsed --device value.
type DeviceChoice struct {
	Kind  string // auto, cpu, gpu, tpu
	Index int    // for gpu:N
}

// ParseDevice parses auto, cpu, gpu, gpu:N or tpu.
func ParseDevice(s string) (DeviceChoice, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch v {
	case "", "auto":
		return DeviceChoice{Kind: "auto"}, nil
	case "cpu", "gpu", "tpu":
		return DeviceChoice{Kind: v}, nil
	}
	if rest, ok := strings.CutPrefix(v, "gpu:"); ok {
		n, err := strconv.Atoi(rest)
		if err == nil && n >= 0 {
			return DeviceChoice{Kind: "gpu", Index: n}, nil
		}
	}
	return DeviceChoice{}, fmt.Errorf("device %q: want auto, cpu, gpu, gpu:N or tpu", s)
}

// Resolve picks the device for c among devs (as listed with all devices visible) and
// returns the session config that pins TensorFlow to it, plus the chosen device.
func (c DeviceChoice) Resolve(devs []Device, base SessionConfig) (SessionConfig, Device, error) {
	byType := map[string][]Device{}
	for _, d := range devs {
		byType[d.Type] = append(byType[d.Type], d)
	}
	cfg := base
	pick := func(typ string, idx int) (Device, error) {
		list := byType[typ]
		if idx >= len(list) {
			return Device{}, fmt.Errorf("%w: %s:%d requested, TensorFlow exposes %d %s device(s) (see `tfflowers devices`)", ErrNoDevice, strings.ToLower(typ), idx, len(list), typ)
		}
		return list[idx], nil
	}
	switch c.Kind {
	case "auto":
		for _, typ := range []string{"GPU", "TPU"} {
			if len(byType[typ]) > 0 {
				return cfg, byType[typ][0], nil
			}
		}
		cfg.CPUOnly = true
		d, err := pick("CPU", 0)
		return cfg, d, err
	case "cpu":
		cfg.CPUOnly = true
		d, err := pick("CPU", 0)
		return cfg, d, err
	case "gpu":
		d, err := pick("GPU", c.Index)
		cfg.VisibleGPUs = strconv.Itoa(c.Index)
		return cfg, d, err
	case "tpu":
		d, err := pick("TPU", c.Index)
		return cfg, d, err
	}
	return cfg, Device{}, fmt.Errorf("device kind %q unknown", c.Kind)
}

// Version is the TensorFlow library version, from TF_Version().
func Version() string { return tf.Version() }
