package serve

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config configures a Server. Zero fields take the defaults documented on each field.
type Config struct {
	BaseDir      string        // BASE_DIR holding <int>/ version dirs
	Name         string        // model name in URLs, e.g. "flowers"
	MaxBatch     int           // max images per Model.Predict call across clients (default 32)
	BatchTimeout time.Duration // how long a batch waits to fill (default 5ms)
	QueueSize    int           // max images waiting; beyond → 503 overloaded (default 1024)
	MaxBodyBytes int64         // request body limit (default 64 MiB) → 413
	MaxInstances int           // images per request (default 256) → 400
	PollInterval time.Duration // how often BaseDir is scanned for new versions (default 2s)
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
	if c.BaseDir == "" {
		return c, errors.New("serve: config: base dir is empty")
	}
	if c.Name == "" {
		return c, errors.New("serve: config: model name is empty")
	}
	for _, r := range c.Name {
		// The name is matched against URL path segments, where '/' and ':'
		// are separators; allowing them would make routes ambiguous.
		if r == '/' || r == ':' {
			return c, fmt.Errorf("serve: config: model name %q must not contain '/' or ':'", c.Name)
		}
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
	setInt(&c.keepVersions, 1)
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
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.MaxBatch < 0, c.QueueSize < 0, c.MaxInstances < 0, c.MaxBodyBytes < 0, c.keepVersions < 0:
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
