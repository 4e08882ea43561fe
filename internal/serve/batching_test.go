package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConcurrentClientsAreBatched(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBatch = 16
	cfg.BatchTimeout = 2 * time.Millisecond
	l := newFakeLoader(func(v int64) (*fakeModel, error) {
		m := newFake(v)
		m.delay = time.Millisecond // lets the queue build up behind a running batch
		return m, nil
	})
	_, ts := startServer(t, cfg, l)
	url := ts.URL + "/v1/models/flowers:predict"
	labels := []string{"daisy", "roses", "tulips"}

	const clients, requests = 16, 60
	var wg sync.WaitGroup
	errs := make(chan error, clients*requests)
	for c := range clients {
		wg.Go(func() {
			for r := range requests {
				// 1..3 images per request, each with a distinct first byte,
				// so a mixed-up fan-out would show as a wrong class.
				n := 1 + (c+r)%3
				insts := make([]string, n)
				want := make([]string, n)
				for i := range insts {
					first := byte(c*7 + r*3 + i)
					insts[i] = fmt.Sprintf(`{"b64": %q}`, b64(string([]byte{first, 'x'})))
					want[i] = labels[int(first)%3]
				}
				resp, err := http.Post(url, "application/json", strings.NewReader(`{"instances": [`+strings.Join(insts, ",")+`]}`))
				if err != nil {
					errs <- err
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("client %d request %d: status %d: %s", c, r, resp.StatusCode, body)
					continue
				}
				var got rowResponse
				if err := json.Unmarshal(body, &got); err != nil {
					errs <- err
					continue
				}
				if len(got.Predictions) != n {
					errs <- fmt.Errorf("client %d request %d: %d predictions, want %d", c, r, len(got.Predictions), n)
					continue
				}
				for i, p := range got.Predictions {
					if p.Classes != want[i] {
						errs <- fmt.Errorf("client %d request %d image %d: class %q, want %q", c, r, i, p.Classes, want[i])
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	m := l.model(t, 1)
	if mb := m.maxBatch(); mb <= 1 || mb > cfg.MaxBatch {
		t.Errorf("largest batch %d, want 2..%d", mb, cfg.MaxBatch)
	}
	t.Logf("%d Predict calls for %d requests, largest batch %d", m.calls.Load(), clients*requests, m.maxBatch())
}

// blockedServer serves a model whose calls block until release is closed,
// with one image per batch and room for two waiting images.
func blockedServer(t *testing.T) (s *Server, url string, m *fakeModel, release func()) {
	t.Helper()
	cfg := testConfig(t)
	cfg.MaxBatch, cfg.QueueSize, cfg.MaxInstances = 1, 2, 2
	block := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(block) }) }
	l := newFakeLoader(func(v int64) (*fakeModel, error) {
		m := newFake(v)
		m.block, m.entered = block, make(chan struct{}, 16)
		return m, nil
	})
	s, ts := startServer(t, cfg, l)
	t.Cleanup(release) // registered last, so it runs before the server's teardown
	return s, ts.URL + "/v1/models/flowers:predict", l.model(t, 1), release
}

func instances(n int) string {
	insts := make([]string, n)
	for i := range insts {
		insts[i] = fmt.Sprintf(`{"b64": %q}`, b64("\x01"))
	}
	return `{"instances": [` + strings.Join(insts, ",") + `]}`
}

func TestOverloadedIs503(t *testing.T) {
	s, url, m, release := blockedServer(t)
	type answer struct {
		code int
		body string
	}
	answers := make(chan answer, 2)
	post := func(n int) {
		resp, err := http.Post(url, "application/json", strings.NewReader(instances(n)))
		if err != nil {
			answers <- answer{0, err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answers <- answer{resp.StatusCode, string(b)}
	}
	go post(1)
	<-m.entered // the first image is in the (blocked) model, not waiting
	go post(2)
	eventually(t, 5*time.Second, "two images waiting", func() bool { return s.queue.waiting.Load() == 2 })

	code, body := do(t, http.MethodPost, url, instances(1))
	if code != http.StatusServiceUnavailable || !strings.Contains(errorMessage(t, body), "overloaded") {
		t.Fatalf("status %d body %s, want 503 overloaded", code, body)
	}

	release()
	for range 2 {
		if a := <-answers; a.code != http.StatusOK {
			t.Errorf("queued request: status %d body %s", a.code, a.body)
		}
	}
	if code, body := do(t, http.MethodPost, url, instances(2)); code != http.StatusOK {
		t.Errorf("after overload: status %d body %s", code, body)
	}
}

func TestCancelledClientLeavesQueue(t *testing.T) {
	s, url, m, release := blockedServer(t)
	go func() { // occupies the model
		resp, err := http.Post(url, "application/json", strings.NewReader(instances(1)))
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-m.entered

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(instances(2)))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	eventually(t, 5*time.Second, "two images waiting", func() bool { return s.queue.waiting.Load() == 2 })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("cancelled request succeeded")
	}
	// The server notices the disconnect asynchronously; its handler
	// returning (dropping its version reference) is the sign.
	eventually(t, 5*time.Second, "the cancelled handler to return", func() bool { return refs(s, 1) == 1 })
	release()
	// The cancelled images leave the queue without reaching the model.
	eventually(t, 5*time.Second, "empty queue", func() bool { return s.queue.waiting.Load() == 0 })
	if code, body := do(t, http.MethodPost, url, instances(1)); code != http.StatusOK {
		t.Fatalf("after cancel: status %d body %s", code, body)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.batches) != 2 {
		t.Errorf("model saw batches %v, want the first and the last request only", m.batches)
	}
}

// refs is the reference count of a loaded version (-1 if not loaded).
func refs(s *Server, num int64) int {
	s.models["flowers"].reg.mu.Lock()
	defer s.models["flowers"].reg.mu.Unlock()
	if v := s.models["flowers"].reg.loaded[num]; v != nil {
		return v.refs
	}
	return -1
}
