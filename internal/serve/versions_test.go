package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// taggedLoader gives version v labels ending in "@v<v>", so every response
// says which version produced it.
func taggedLoader() *fakeLoader {
	return newFakeLoader(func(v int64) (*fakeModel, error) {
		m := newFake(v)
		for i, l := range m.labels {
			m.labels[i] = fmt.Sprintf("%s@v%d", l, v)
		}
		m.delay = 500 * time.Microsecond
		return m, nil
	})
}

// servedBy posts one image and returns the version tag of its class.
func servedBy(url string) (string, error) {
	resp, err := http.Post(url, "application/json", strings.NewReader(instances(1)))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	var got rowResponse
	if err := json.Unmarshal(body, &got); err != nil || len(got.Predictions) != 1 {
		return "", fmt.Errorf("bad response %s", body)
	}
	_, tag, _ := strings.Cut(got.Predictions[0].Classes, "@")
	return tag, nil
}

func statusVersions(t *testing.T, base string) string {
	t.Helper()
	code, body := do(t, http.MethodGet, base+"/v1/models/flowers", "")
	if code != http.StatusOK {
		t.Fatalf("status: %d %s", code, body)
	}
	var st modelStatusResponse
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, v := range st.ModelVersionStatus {
		parts = append(parts, v.Version+":"+v.State)
	}
	return strings.Join(parts, ",")
}

func TestVersionSwitchWhileServing(t *testing.T) {
	cfg := testConfig(t)
	cfg.PollInterval = 10 * time.Millisecond
	l := taggedLoader()
	s, ts := startServer(t, cfg, l)
	url := ts.URL + "/v1/models/flowers:predict"

	var (
		stop      atomic.Bool
		switched  atomic.Int64 // unix nanos when status first showed v2; 0 before
		wg        sync.WaitGroup
		mu        sync.Mutex
		failures  []error
		seen      = map[string]int{}
		lateStale int
	)
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				start := time.Now().UnixNano()
				tag, err := servedBy(url)
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
				}
				seen[tag]++
				if sw := switched.Load(); sw != 0 && start > sw && tag != "v2" {
					lateStale++
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	writeVersion(t, cfg.BaseDir, 2)
	eventually(t, 5*time.Second, "version 2 to be served", func() bool {
		return strings.HasPrefix(statusVersions(t, ts.URL), "2:AVAILABLE")
	})
	switched.Store(time.Now().UnixNano())
	time.Sleep(150 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	for _, err := range failures {
		t.Errorf("request failed during the switch: %v", err)
	}
	if lateStale > 0 {
		t.Errorf("%d requests started after the switch were served by the old version", lateStale)
	}
	if seen["v1"] == 0 || seen["v2"] == 0 {
		t.Errorf("served by %v, want both versions", seen)
	}
	old := l.model(t, 1)
	eventually(t, 5*time.Second, "version 1 to be closed", old.closed.Load)
	if old.usedClosed.Load() {
		t.Error("version 1 was used after Close")
	}
	if got := statusVersions(t, ts.URL); got != "2:AVAILABLE" {
		t.Errorf("status lists %s, want 2:AVAILABLE", got)
	}
	code, body := do(t, http.MethodPost, ts.URL+"/v1/models/flowers/versions/1:predict", instances(1))
	if code != http.StatusNotFound {
		t.Errorf("retired version 1: status %d body %s, want 404", code, body)
	}
	if got := s.models["flowers"].reg.latest(); got != 2 {
		t.Errorf("latest %d, want 2", got)
	}
	t.Logf("served by %v", seen)
}

func TestOldVersionDrainsBeforeClose(t *testing.T) {
	cfg := testConfig(t)
	cfg.PollInterval = 10 * time.Millisecond
	block := make(chan struct{})
	l := newFakeLoader(func(v int64) (*fakeModel, error) {
		m := newFake(v)
		if v == 1 {
			m.block, m.entered = block, make(chan struct{}, 1)
		}
		return m, nil
	})
	_, ts := startServer(t, cfg, l)
	url := ts.URL + "/v1/models/flowers:predict"
	v1 := l.model(t, 1)

	done := make(chan error, 1)
	go func() { _, err := servedBy(url); done <- err }()
	<-v1.entered
	writeVersion(t, cfg.BaseDir, 2)
	eventually(t, 5*time.Second, "version 2", func() bool { return statusVersions(t, ts.URL) == "2:AVAILABLE,1:UNLOADING" })
	if v1.closed.Load() {
		t.Fatal("version 1 closed while a request used it")
	}
	close(block)
	if err := <-done; err != nil {
		t.Fatalf("in-flight request on the old version: %v", err)
	}
	eventually(t, 5*time.Second, "version 1 to be closed", v1.closed.Load)
	if v1.usedClosed.Load() {
		t.Error("version 1 was used after Close")
	}
}

func TestKeepTwoVersions(t *testing.T) {
	cfg := testConfig(t)
	cfg.PollInterval = 10 * time.Millisecond
	cfg.keepVersions = 2
	l := taggedLoader()
	_, ts := startServer(t, cfg, l)
	writeVersion(t, cfg.BaseDir, 2)
	eventually(t, 5*time.Second, "version 2", func() bool { return statusVersions(t, ts.URL) == "2:AVAILABLE,1:AVAILABLE" })
	if tag, err := servedBy(ts.URL + "/v1/models/flowers/versions/1:predict"); err != nil || tag != "v1" {
		t.Errorf("version 1 request: %q, %v", tag, err)
	}
	if tag, err := servedBy(ts.URL + "/v1/models/flowers:predict"); err != nil || tag != "v2" {
		t.Errorf("default request: %q, %v", tag, err)
	}
	writeVersion(t, cfg.BaseDir, 3)
	eventually(t, 5*time.Second, "version 1 closed", func() bool { return l.model(t, 1).closed.Load() })
	if got := statusVersions(t, ts.URL); got != "3:AVAILABLE,2:AVAILABLE" {
		t.Errorf("status %s", got)
	}
}

func TestFailedVersionRetriedOnlyWhenChanged(t *testing.T) {
	cfg := testConfig(t)
	cfg.PollInterval = 5 * time.Millisecond
	var broken atomic.Bool
	broken.Store(true)
	l := newFakeLoader(func(v int64) (*fakeModel, error) {
		switch {
		case v == 2 && broken.Load():
			return nil, errors.New("corrupt variables")
		case v == 3:
			panic("loader bug")
		}
		return newFake(v), nil
	})
	s, ts := startServer(t, cfg, l)

	// Not versions: temp dirs, non-integers, non-canonical numbers, a
	// version dir without saved_model.pb, a plain file.
	for _, name := range []string{".tmp-9", "abc", "09", "8"} {
		dir := filepath.Join(cfg.BaseDir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if name != "8" {
			os.WriteFile(filepath.Join(dir, savedModelFile), nil, 0o644)
		}
	}
	os.WriteFile(filepath.Join(cfg.BaseDir, "7"), nil, 0o644)

	writeVersion(t, cfg.BaseDir, 2)
	eventually(t, 5*time.Second, "a load attempt of version 2", func() bool { return l.loadCount(2) == 1 })
	polled := s.polls.Load()
	eventually(t, 5*time.Second, "a dozen more polls", func() bool { return s.polls.Load() >= polled+12 })
	if n := l.loadCount(2); n != 1 {
		t.Errorf("unchanged broken version loaded %d times, want 1", n)
	}
	for _, v := range []int64{7, 8, 9} {
		if n := l.loadCount(v); n != 0 {
			t.Errorf("non-version %d loaded %d times", v, n)
		}
	}
	if tag := statusVersions(t, ts.URL); tag != "1:AVAILABLE" {
		t.Errorf("status %s, want 1:AVAILABLE", tag)
	}
	if code, body := do(t, http.MethodPost, ts.URL+"/v1/models/flowers:predict", instances(1)); code != http.StatusOK {
		t.Errorf("still serving version 1: %d %s", code, body)
	}

	// A panicking loader is survived the same way.
	writeVersion(t, cfg.BaseDir, 3)
	eventually(t, 5*time.Second, "a load attempt of version 3", func() bool { return l.loadCount(3) == 1 })

	// Fixing version 2 does not help while 3 is newer and unchanged; remove
	// 3, then rewrite 2: it is retried and loads.
	os.RemoveAll(filepath.Join(cfg.BaseDir, "3"))
	broken.Store(false)
	future := time.Now().Add(time.Minute)
	if err := os.Chtimes(filepath.Join(cfg.BaseDir, "2", savedModelFile), future, future); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "version 2 to load", func() bool { return statusVersions(t, ts.URL) == "2:AVAILABLE" })
	if n := l.loadCount(2); n != 2 {
		t.Errorf("version 2 loaded %d times, want 2", n)
	}
}

func TestNewErrors(t *testing.T) {
	l := newFakeLoader(nil)
	empty := t.TempDir()
	os.Mkdir(filepath.Join(empty, ".tmp-1"), 0o755)
	_, err := New(Config{BaseDir: empty, Name: "flowers", Logger: quietLogger()}, l.load)
	if err == nil || !strings.Contains(err.Error(), "has no <int>/ version dirs with saved_model.pb") {
		t.Errorf("empty base dir: %v", err)
	}
	if _, err := New(Config{BaseDir: filepath.Join(empty, "missing"), Name: "flowers"}, l.load); err == nil {
		t.Error("missing base dir: no error")
	}
	if _, err := New(Config{BaseDir: empty, Name: "a:b"}, l.load); err == nil {
		t.Error("bad name: no error")
	}
	cfg := testConfig(t)
	cfg.MaxInstances, cfg.QueueSize = 10, 5
	if _, err := New(cfg, l.load); err == nil || !strings.Contains(err.Error(), "queue size") {
		t.Errorf("queue smaller than a request: %v", err)
	}

	bad := newFakeLoader(func(int64) (*fakeModel, error) { return nil, errors.New("no GPU") })
	_, err = New(testConfig(t), bad.load)
	if err == nil || !strings.Contains(err.Error(), "no GPU") {
		t.Errorf("unloadable version: %v", err)
	}

	// The newest version is broken: fall back to the next one.
	cfg = testConfig(t)
	writeVersion(t, cfg.BaseDir, 2)
	fallback := newFakeLoader(func(v int64) (*fakeModel, error) {
		if v == 2 {
			return nil, errors.New("broken")
		}
		return newFake(v), nil
	})
	s, err := New(cfg, fallback.load)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.models["flowers"].reg.latest(); got != 1 {
		t.Errorf("serving version %d, want 1", got)
	}
}

func TestCloseClosesModels(t *testing.T) {
	l := newFakeLoader(nil)
	s, err := New(testConfig(t), l.load)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !l.model(t, 1).closed.Load() {
		t.Error("model not closed")
	}
	ts := httptestServer(t, s.Handler())
	code, body := do(t, http.MethodPost, ts+"/v1/models/flowers:predict", instances(1))
	if code != http.StatusServiceUnavailable {
		t.Errorf("after Close: status %d body %s, want 503", code, body)
	}
}
