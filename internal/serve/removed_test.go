package serve

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestRemovedVersionUnloaded: a version whose folder disappears is unloaded, as TF
// Serving's file-system source and availability-preserving policy do: the next version
// takes over (latest), the rest keep serving (all), and the last one goes when nothing
// is left on disk. Each step waits for the event it expects (a status change, a model
// closed, a poll count), never for a fixed time.
func TestRemovedVersionUnloaded(t *testing.T) {
	t.Run("latest", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.PollInterval = 5 * time.Millisecond
		writeVersion(t, cfg.BaseDir, 2)
		l := taggedLoader()
		_, ts := startServer(t, cfg, l)
		eventually(t, 5*time.Second, "version 2", func() bool { return statusVersions(t, ts.URL) == "2:AVAILABLE" })
		if err := os.RemoveAll(filepath.Join(cfg.BaseDir, "2")); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "version 2 closed", func() bool { return l.model(t, 2).closed.Load() })
		if got := statusVersions(t, ts.URL); got != "1:AVAILABLE" {
			t.Fatalf("after removing version 2: status %s, want 1:AVAILABLE", got)
		}
		if tag, err := servedBy(ts.URL + "/v1/models/flowers:predict"); err != nil || tag != "v1" {
			t.Fatalf("after removing version 2: served by %q, %v; want v1", tag, err)
		}
		if code, body := do(t, http.MethodPost, ts.URL+"/v1/models/flowers/versions/2:predict", instances(1)); code != http.StatusNotFound {
			t.Fatalf("removed version 2: %d %s, want 404", code, body)
		}
		// The last version: nothing on disk to wait for, so it goes at once.
		if err := os.RemoveAll(filepath.Join(cfg.BaseDir, "1")); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "version 1 closed", func() bool { return l.model(t, 1).closed.Load() })
		if code, body := do(t, http.MethodPost, ts.URL+"/v1/models/flowers:predict", instances(1)); code != http.StatusNotFound {
			t.Fatalf("no version left: %d %s, want 404", code, body)
		}
		// A version exported again is loaded again.
		writeVersion(t, cfg.BaseDir, 3)
		eventually(t, 5*time.Second, "version 3", func() bool { return statusVersions(t, ts.URL) == "3:AVAILABLE" })
	})

	t.Run("replacement fails to load", func(t *testing.T) {
		cfg := testConfig(t) // version 1, which will not load
		cfg.PollInterval = 5 * time.Millisecond
		writeVersion(t, cfg.BaseDir, 2)
		var broken atomic.Bool
		broken.Store(true)
		l := newFakeLoader(func(v int64) (*fakeModel, error) {
			if v == 1 && broken.Load() {
				return nil, errors.New("corrupt variables")
			}
			return newFake(v), nil
		})
		s, ts := startServer(t, cfg, l)
		eventually(t, 5*time.Second, "version 2", func() bool { return statusVersions(t, ts.URL) == "2:AVAILABLE" })
		if err := os.RemoveAll(filepath.Join(cfg.BaseDir, "2")); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "an attempt to load version 1", func() bool { return l.loadCount(1) > 0 })
		polled := s.polls.Load()
		eventually(t, 5*time.Second, "three more polls", func() bool { return s.polls.Load() >= polled+3 })
		// TF Serving keeps the removed version until an aspired one is ready.
		if got := statusVersions(t, ts.URL); got != "2:AVAILABLE" || l.model(t, 2).closed.Load() {
			t.Fatalf("replacement failed: status %s, version 2 closed %v; want version 2 still serving", got, l.model(t, 2).closed.Load())
		}
		if code, body := do(t, http.MethodPost, ts.URL+"/v1/models/flowers:predict", instances(1)); code != http.StatusOK {
			t.Fatalf("replacement failed: %d %s, want 200 from version 2", code, body)
		}
		// Version 1 rewritten in place (its folder never gone, so version 2 is never the
		// last one standing): it loads, and version 2 goes.
		broken.Store(false)
		pb := filepath.Join(cfg.BaseDir, "1", savedModelFile)
		if err := os.WriteFile(pb, []byte("graph, fixed"), 0o644); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Minute)
		if err := os.Chtimes(pb, later, later); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "version 2 closed", func() bool { return l.model(t, 2).closed.Load() })
		if got := statusVersions(t, ts.URL); got != "1:AVAILABLE" {
			t.Fatalf("after the replacement loaded: status %s, want 1:AVAILABLE", got)
		}
	})

	t.Run("all", func(t *testing.T) {
		base := t.TempDir()
		for v := int64(1); v <= 3; v++ {
			writeVersion(t, base, v)
		}
		cfg := Config{Models: []ModelConfig{{Name: "flowers", BaseDir: base, Policy: VersionPolicy{All: true}}},
			PollInterval: 5 * time.Millisecond, Logger: quietLogger(), Inspect: func([]byte) error { return nil }}
		l := taggedLoader()
		_, ts := startServer(t, cfg, l)
		eventually(t, 5*time.Second, "three versions", func() bool {
			return statusVersions(t, ts.URL) == "3:AVAILABLE,2:AVAILABLE,1:AVAILABLE"
		})
		if err := os.RemoveAll(filepath.Join(base, "2")); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "version 2 closed", func() bool { return l.model(t, 2).closed.Load() })
		if got := statusVersions(t, ts.URL); got != "3:AVAILABLE,1:AVAILABLE" {
			t.Fatalf("after removing version 2: status %s", got)
		}
		if tag, err := servedBy(ts.URL + "/v1/models/flowers/versions/1:predict"); err != nil || tag != "v1" {
			t.Fatalf("version 1: %q, %v", tag, err)
		}
	})
}
