package serve

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Config configures a Server. Zero fields take the defaults documented on each field.
type Config struct {
	// One model: BaseDir holds its <int>/ version dirs, Name is its name in
	// URLs (e.g. "flowers"), and the newest version is served. Or Models,
	// from a --model_config_file (ReadModelConfigFile), with BaseDir and
	// Name empty.
	BaseDir      string
	Name         string
	Models       []ModelConfig
	MaxBatch     int           // max images per Model.Predict call across clients (default 32)
	BatchTimeout time.Duration // how long a batch waits to fill (default 5ms)
	QueueSize    int           // max images waiting; beyond → 503 overloaded (default 1024)
	MaxBodyBytes int64         // request body limit (default 64 MiB) → 413
	MaxInstances int           // images per request (default 256) → 400
	PollInterval time.Duration // how often BaseDir is scanned for new versions (default 2s)
	Inspect      Inspector     // checks each encoded image before it is queued (default InspectImage)
	Logger       *slog.Logger  // default slog.Default()

	// The fields below are unexported so that tests can shrink them without
	// widening the public API; production always uses the defaults.
	readHeaderTimeout time.Duration // default 10s
	readTimeout       time.Duration // default 60s: a 64 MiB body on a slow link
	writeTimeout      time.Duration // default 120s: covers queueing behind full batches
	idleTimeout       time.Duration // default 120s
	shutdownTimeout   time.Duration // default 30s: how long Run drains before forcing
	keepVersions      int           // versions kept servable (default 1, TF Serving's "latest: 1")
}

// Defaults for the zero fields of Config.
const (
	DefaultMaxBatch     = 32
	DefaultBatchTimeout = 5 * time.Millisecond
	DefaultQueueSize    = 1024
	DefaultMaxBodyBytes = 64 << 20
	DefaultMaxInstances = 256
	DefaultPollInterval = 2 * time.Second
)

// withDefaults fills the zero fields and rejects values that cannot work.
func (c Config) withDefaults() (Config, error) {
	if len(c.Models) == 0 {
		if c.BaseDir == "" {
			return c, errors.New("serve: config: base dir is empty")
		}
		if c.Name == "" {
			return c, errors.New("serve: config: model name is empty")
		}
		if strings.ContainsAny(c.Name, "/:") {
			// The name is matched against URL path segments, where '/' and ':'
			// are separators; allowing them would make routes ambiguous.
			return c, fmt.Errorf("serve: config: model name %q must not contain '/' or ':'", c.Name)
		}
		if c.keepVersions < 0 {
			return c, errors.New("serve: config: sizes must not be negative")
		}
		c.Models = []ModelConfig{{Name: c.Name, BaseDir: c.BaseDir, Policy: VersionPolicy{Latest: c.keepVersions}}}
	} else if c.BaseDir != "" || c.Name != "" {
		return c, errors.New("serve: config: give BaseDir and Name, or Models, not both")
	}
	seen := map[string]bool{}
	for _, m := range c.Models {
		switch {
		case m.Name == "" || strings.ContainsAny(m.Name, "/:"):
			return c, fmt.Errorf("serve: config: model name %q must be non-empty without '/' or ':'", m.Name)
		case m.BaseDir == "":
			return c, fmt.Errorf("serve: config: model %s: base dir is empty", m.Name)
		case seen[m.Name]:
			return c, fmt.Errorf("serve: config: model %s is configured twice", m.Name)
		case m.Policy.Latest < 0:
			return c, fmt.Errorf("serve: config: model %s: latest %d versions", m.Name, m.Policy.Latest)
		}
		seen[m.Name] = true
	}
	setInt := func(p *int, def int) {
		if *p == 0 {
			*p = def
		}
	}
	setDur := func(p *time.Duration, def time.Duration) {
		if *p == 0 {
			*p = def
		}
	}
	setInt(&c.MaxBatch, DefaultMaxBatch)
	setInt(&c.QueueSize, DefaultQueueSize)
	setInt(&c.MaxInstances, DefaultMaxInstances)
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	setDur(&c.BatchTimeout, DefaultBatchTimeout)
	setDur(&c.PollInterval, DefaultPollInterval)
	setDur(&c.readHeaderTimeout, 10*time.Second)
	setDur(&c.readTimeout, 60*time.Second)
	setDur(&c.writeTimeout, 120*time.Second)
	setDur(&c.idleTimeout, 120*time.Second)
	setDur(&c.shutdownTimeout, 30*time.Second)
	if c.Inspect == nil {
		c.Inspect = InspectImage
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.MaxBatch < 0, c.QueueSize < 0, c.MaxInstances < 0, c.MaxBodyBytes < 0:
		return c, errors.New("serve: config: sizes must not be negative")
	case c.BatchTimeout < 0, c.PollInterval < 0:
		return c, errors.New("serve: config: durations must not be negative")
	case c.QueueSize < c.MaxInstances:
		// A request is admitted whole or not at all, so a request of
		// MaxInstances images must fit in an empty queue.
		return c, fmt.Errorf("serve: config: queue size %d is smaller than max instances %d", c.QueueSize, c.MaxInstances)
	}
	return c, nil
}
