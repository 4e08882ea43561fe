package train

import (
	"fmt"
	"strings"

	"github.com/tfflowers/tfflowers/tfops"
)

// sessionConfig resolves --device (one device) or --devices (in-graph replicas, one per
// device) into the session config the base is loaded with.
func (t *trainer) sessionConfig() (tfops.SessionConfig, error) {
	cfg := t.cfg
	devs, err := tfops.ListDevices(cfg.Threads)
	if err != nil {
		return tfops.SessionConfig{}, err
	}
	if cfg.Devices == "" {
		choice, _ := tfops.ParseDevice(cfg.Device)
		sessCfg, dev, err := choice.Resolve(devs, cfg.Threads)
		if err != nil {
			return sessCfg, fmt.Errorf("--device %s: %w", cfg.Device, err)
		}
		t.device = dev
		return sessCfg, nil
	}
	set, _ := tfops.ParseDevices(cfg.Devices)
	sessCfg, names, err := set.Resolve(devs, cfg.Threads)
	if err != nil {
		return sessCfg, fmt.Errorf("--devices %s: %w", cfg.Devices, err)
	}
	t.replicas = names
	t.device = tfops.Device{Name: strings.Join(names, ","), Type: strings.Split(names[0], ":")[1]}
	return sessCfg, nil
}

// replicate spreads the training graph over the --devices replicas (nothing for one).
func (t *trainer) replicate() error {
	if len(t.replicas) < 2 {
		return nil
	}
	if err := t.graph.Replicate(t.base.Session.Graph(), t.replicas); err != nil {
		return err
	}
	t.cfg.Logger.Info("data parallel", "replicas", len(t.replicas), "devices", strings.Join(t.replicas, ","))
	return nil
}

// extract computes backbone features for the feature cache, over every replica.
func (t *trainer) extract(images []float32, n int) ([]float32, error) {
	return t.graph.ExtractFeatures(t.base.Session, images, n, t.cfg.ImageSize, t.cfg.MicroBatch)
}
