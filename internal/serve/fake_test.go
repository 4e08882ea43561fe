package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	shapepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
)

// fakeModel classifies by the first byte (or first pixel value): class
// first%len(labels) scores 0.5 and the others share the rest. Images whose
// bytes start with "bad" fail; "panic" panics. It records batch sizes and
// whether it was used after Close.
type fakeModel struct {
	version int64
	labels  []string
	size    int
	delay   time.Duration   // per call, to let batches fill
	block   <-chan struct{} // if set, each call waits for it (or ctx)
	entered chan struct{}   // if set, receives one value per call, non-blocking

	mu      sync.Mutex
	batches []int

	calls      atomic.Int64
	closed     atomic.Bool
	usedClosed atomic.Bool
}

func newFake(version int64) *fakeModel {
	return &fakeModel{version: version, labels: []string{"daisy", "roses", "tulips"}, size: 2}
}

func (f *fakeModel) begin(ctx context.Context, n int) {
	if f.closed.Load() {
		f.usedClosed.Store(true)
	}
	f.calls.Add(1)
	f.mu.Lock()
	f.batches = append(f.batches, n)
	f.mu.Unlock()
	if f.entered != nil {
		select {
		case f.entered <- struct{}{}:
		default:
		}
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
		}
	}
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
}

func (f *fakeModel) row(first int) ([]float32, int64, string) {
	n := len(f.labels)
	top := first % n
	scores := make([]float32, n)
	for k := range scores {
		scores[k] = 0.5 / float32(n-1)
	}
	scores[top] = 0.5
	return scores, int64(top), f.labels[top]
}

func (f *fakeModel) Predict(ctx context.Context, images [][]byte) ([][]float32, []int64, []string, []error, error) {
	for _, img := range images {
		if bytes.HasPrefix(img, []byte("panic")) {
			panic("fake model: boom")
		}
	}
	f.begin(ctx, len(images))
	scores := make([][]float32, len(images))
	ids := make([]int64, len(images))
	classes := make([]string, len(images))
	errs := make([]error, len(images))
	for i, img := range images {
		if len(img) == 0 || bytes.HasPrefix(img, []byte("bad")) {
			errs[i] = errors.New("cannot decode image: unknown format")
			continue
		}
		scores[i], ids[i], classes[i] = f.row(int(img[0]))
	}
	return scores, ids, classes, errs, nil
}

func (f *fakeModel) PredictPixels(ctx context.Context, pixels [][]float32) ([][]float32, []int64, []string, error) {
	f.begin(ctx, len(pixels))
	scores := make([][]float32, len(pixels))
	ids := make([]int64, len(pixels))
	classes := make([]string, len(pixels))
	for i, px := range pixels {
		if len(px) != f.size*f.size*3 {
			return nil, nil, nil, errors.New("fake model: wrong pixel count")
		}
		scores[i], ids[i], classes[i] = f.row(int(px[0]))
	}
	return scores, ids, classes, nil
}

func (f *fakeModel) Labels() []string { return f.labels }
func (f *fakeModel) ImageSize() int   { return f.size }
func (f *fakeModel) Version() int64   { return f.version }
func (f *fakeModel) Close() error {
	if f.closed.Swap(true) {
		return errors.New("fake model: closed twice")
	}
	return nil
}

func (f *fakeModel) maxBatch() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := 0
	for _, n := range f.batches {
		m = max(m, n)
	}
	return m
}

// fakeLoader hands out fake models built by mk and remembers them.
type fakeLoader struct {
	mu     sync.Mutex
	mk     func(version int64) (*fakeModel, error)
	models map[int64][]*fakeModel
	loads  map[int64]int
}

func newFakeLoader(mk func(version int64) (*fakeModel, error)) *fakeLoader {
	if mk == nil {
		mk = func(v int64) (*fakeModel, error) { return newFake(v), nil }
	}
	return &fakeLoader{mk: mk, models: map[int64][]*fakeModel{}, loads: map[int64]int{}}
}

func (l *fakeLoader) load(dir string, version int64) (Model, error) {
	if _, err := os.Stat(filepath.Join(dir, savedModelFile)); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.loads[version]++
	l.mu.Unlock()
	m, err := l.mk(version)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.models[version] = append(l.models[version], m)
	l.mu.Unlock()
	return m, nil
}

func (l *fakeLoader) model(t *testing.T, version int64) *fakeModel {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	ms := l.models[version]
	if len(ms) == 0 {
		t.Fatalf("version %d was never loaded", version)
	}
	return ms[len(ms)-1]
}

func (l *fakeLoader) loadCount(version int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.loads[version]
}

// writeVersion creates base/<v>/saved_model.pb the way an exporter does:
// in a dot-prefixed temporary directory renamed into place.
func writeVersion(t *testing.T, base string, v int64) {
	t.Helper()
	tmp := filepath.Join(base, ".tmp-"+strconv.FormatInt(v, 10))
	if err := os.MkdirAll(filepath.Join(tmp, "variables"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, savedModelFile), []byte("graph"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(base, strconv.FormatInt(v, 10))); err != nil {
		t.Fatal(err)
	}
}

func quietLogger() *slog.Logger {
	if os.Getenv("SERVE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testConfig is a config over a fresh base dir holding version 1.
func testConfig(t *testing.T) Config {
	t.Helper()
	base := t.TempDir()
	writeVersion(t, base, 1)
	// The fakes classify arbitrary bytes; inspect_test.go checks the real inspector.
	return Config{BaseDir: base, Name: "flowers", PollInterval: time.Hour, Logger: quietLogger(), Inspect: func([]byte) error { return nil }}
}

// startServer runs s behind httptest and tears both down in order.
func startServer(t *testing.T, cfg Config, l *fakeLoader) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(cfg, l.load)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, ts
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// do sends a request and returns the status and body.
func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, url, ct)
	}
	return resp.StatusCode, string(b)
}

// canonJSON re-encodes s with sorted keys, so tests compare meaning
// rather than key order or spacing.
func canonJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantJSON(t *testing.T, what string, gotCode int, got string, wantCode int, want string) {
	t.Helper()
	if gotCode != wantCode {
		t.Errorf("%s: status %d, want %d; body %s", what, gotCode, wantCode, got)
		return
	}
	if g, w := canonJSON(t, got), canonJSON(t, want); g != w {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// errorMessage extracts {"error": ...}.
func errorMessage(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error *string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == nil {
		t.Fatalf("not a TF Serving error body: %s", body)
	}
	return *e.Error
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

// SignatureDefs describes the two signatures as an export stores them (the
// tensor names are graph names, not the input keys).
func (f *fakeModel) SignatureDefs() (map[string]*pb.SignatureDef, error) {
	info := func(name string, dt typespb.DataType, ds ...int64) *pb.TensorInfo {
		shape := &shapepb.TensorShapeProto{}
		for _, d := range ds {
			shape.Dim = append(shape.Dim, &shapepb.TensorShapeProto_Dim{Size: d})
		}
		return &pb.TensorInfo{Encoding: &pb.TensorInfo_Name{Name: name}, Dtype: dt, TensorShape: shape}
	}
	n, s := int64(len(f.labels)), int64(f.size)
	outputs := map[string]*pb.TensorInfo{
		"scores":    info("head/Softmax:0", typespb.DataType_DT_FLOAT, -1, n),
		"classes":   info("head/classes:0", typespb.DataType_DT_STRING, -1),
		"class_ids": info("head/ArgMax:0", typespb.DataType_DT_INT64, -1),
	}
	const method = "tensorflow/serving/predict"
	return map[string]*pb.SignatureDef{
		sigBytes:  {MethodName: method, Outputs: outputs, Inputs: map[string]*pb.TensorInfo{"image_bytes": info("image_bytes/Placeholder:0", typespb.DataType_DT_STRING, -1)}},
		sigPixels: {MethodName: method, Outputs: outputs, Inputs: map[string]*pb.TensorInfo{"images": info("images:0", typespb.DataType_DT_FLOAT, -1, s, s, 3)}},
	}, nil
}
