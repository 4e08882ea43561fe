package train_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tfflowers/tfflowers/internal/reliability/fixtures"
	"github.com/tfflowers/tfflowers/internal/serve"
	"github.com/tfflowers/tfflowers/internal/tftest"
	"github.com/tfflowers/tfflowers/internal/train"
	"github.com/tfflowers/tfflowers/savedmodel"
	"github.com/tfflowers/tfflowers/tfops"
)

// TestServeRealExport serves a real export over HTTP on loopback: concurrent clients get
// the same scores as the Go loader, and a new version exported while serving takes over.
func TestServeRealExport(t *testing.T) {
	if testing.Short() {
		t.Skip("trains and serves; skipped with -short")
	}
	data := subset(t, 20)
	cfg := baseConfig(t, data)
	cfg.Epochs = 2
	cfg.Export = filepath.Join(t.TempDir(), "flowers")
	if _, err := train.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	load := func(dir string, _ int64) (serve.Model, error) {
		return savedmodel.LoadExport(dir, tfops.SessionConfig{})
	}
	srv, err := serve.New(serve.Config{BaseDir: cfg.Export, Name: "flowers", PollInterval: 100 * time.Millisecond, MaxBodyBytes: 4 << 20}, load)
	if err != nil {
		t.Fatal(err)
	}
	restURL, grpcAddr := serveBoth(t, srv)

	files, _ := filepath.Glob(filepath.Join(data, "*", "*.jpg"))
	sort.Strings(files)
	files = files[:8]
	direct, err := savedmodel.LoadExport(cfg.Export, tfops.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	raw := make([][]byte, len(files))
	for i, f := range files {
		raw[i], _ = os.ReadFile(f)
	}
	want, _, _, _, err := direct.Predict(context.Background(), raw)
	direct.Close()
	if err != nil {
		t.Fatal(err)
	}
	predict := func(i int) ([]float32, error) {
		body, _ := json.Marshal(map[string]any{"instances": []any{map[string]string{"b64": base64.StdEncoding.EncodeToString(raw[i])}}})
		resp, err := http.Post(restURL+"/v1/models/flowers:predict", "application/json", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		var out struct {
			Predictions []struct {
				Scores []float32 `json:"scores"`
			} `json:"predictions"`
		}
		if err := json.Unmarshal(b, &out); err != nil || len(out.Predictions) != 1 {
			return nil, fmt.Errorf("bad body %s: %v", b, err)
		}
		return out.Predictions[0].Scores, nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for k := 0; k < 6; k++ {
				i := (c + k) % len(files)
				got, err := predict(i)
				if err != nil {
					errs <- err
					return
				}
				for j := range got {
					if math.Abs(float64(got[j]-want[i][j])) > 1e-5 {
						errs <- fmt.Errorf("image %d: served %v, loader %v", i, got, want[i])
						return
					}
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Export version 2 while serving; the server must pick it up without a restart.
	if _, v, err := train.Export(train.ExportConfig{Run: cfg.Out, ModelBasePath: cfg.Export}); err != nil || v != 2 {
		t.Fatalf("export v2: %d %v", v, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(restURL + "/v1/models/flowers")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(b, []byte(`"version":"2","state":"AVAILABLE"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("version 2 not served after 20s: %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := predict(0); err != nil {
		t.Fatalf("predict after the version switch: %v", err)
	}
	checkDecompressionBomb(t, restURL)
	checkOfficialGRPCClient(t, grpcAddr, files, want)
}

// checkDecompressionBomb: a 20000x20000 PNG (400 MB decoded) is refused from its header,
// without decoding: the process's peak RSS does not move.
func checkDecompressionBomb(t *testing.T, restURL string) {
	bomb := fixtures.HugePNG(20000, 20000)
	body, _ := json.Marshal(map[string]any{"instances": []any{map[string]string{"b64": base64.StdEncoding.EncodeToString(bomb)}}})
	before := peakRSS(t)
	start := time.Now()
	resp, err := http.Post(restURL+"/v1/models/flowers:predict", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	after := peakRSS(t)
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(b, []byte("image too large: PNG 20000x20000")) {
		t.Errorf("bomb: %d %s", resp.StatusCode, b)
	}
	t.Logf("20000x20000 PNG bomb (%d bytes): 400 in %v, peak RSS %d -> %d MB", len(bomb), took, before>>20, after>>20)
	if after-before > 100<<20 {
		t.Errorf("peak RSS grew by %d MB answering the bomb: it was decoded", (after-before)>>20)
	}
}

// peakRSS is this process's peak resident set (VmHWM), in bytes.
func peakRSS(t *testing.T) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatalf("peak RSS: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb << 10
		}
	}
	t.Fatal("peak RSS: no VmHWM in /proc/self/status")
	return 0
}

// serveBoth runs srv's REST and gRPC APIs on free loopback ports until the test ends.
func serveBoth(t *testing.T, srv *serve.Server) (restURL, grpcAddr string) {
	t.Helper()
	rest, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, rest, g) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + rest.Addr().String(), g.Addr().String()
}

// checkOfficialGRPCClient talks to the server (serving version 2 of the export) with
// TF Serving's own Python client: the scores the Go loader gives, model_spec versions,
// the stored signatures, and TF Serving's status codes for bad requests.
func checkOfficialGRPCClient(t *testing.T, addr string, files []string, want [][]float32) {
	type call = map[string]any
	bombPath := filepath.Join(t.TempDir(), "bomb.png")
	if err := os.WriteFile(bombPath, fixtures.HugePNG(20000, 20000), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []call{
		{"images": files},
		{"images": files[:1], "version": 2},
		{"images": files[:1], "version": 1},
		{"images": files[:1], "model": "tulips"},
		{"images": files[:1], "label": "stable"},
		{"images": files[:1], "signature": "nope"},
		{"raw": []string{"not an image"}},
		{"junk_bytes": 5 << 20},
		{"pixels": []int{2, 128}, "signature": "predict_images"},
		{"call": "metadata"},
		{"call": "status"},
		{"call": "classify"},
		{"call": "regress", "model": "tulips"},
		{"images": []string{bombPath}},
	}
	spec, _ := json.Marshal(cases)
	path := filepath.Join(t.TempDir(), "cases.json")
	if err := os.WriteFile(path, spec, 0o644); err != nil {
		t.Fatal(err)
	}
	out := tftest.RunPython(t, "grpc_predict.py", "--server", addr, "--cases", path)
	type result struct {
		Code, Message string
		SignatureName string `json:"signature_name"`
		Version       int64
		Scores        [][]float32
		Classes       []string
		N             int
		Signatures    map[string]struct {
			MethodName string `json:"method_name"`
			Inputs     map[string]string
		}
		Versions []struct {
			Version int64
			State   string
		}
	}
	var res []result
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("grpc_predict.py: %v: %q", err, line)
		}
		res = append(res, r)
	}
	if len(res) != len(cases) {
		t.Fatalf("%d results for %d cases:\n%s", len(res), len(cases), out)
	}
	r := res[0]
	if r.Code != "OK" || r.Version != 2 || r.SignatureName != "serving_default" || len(r.Scores) != len(files) {
		t.Fatalf("predict: %+v", r)
	}
	for i := range files {
		for j := range want[i] {
			if math.Abs(float64(r.Scores[i][j]-want[i][j])) > 1e-5 {
				t.Errorf("image %d: gRPC %v, loader %v", i, r.Scores[i], want[i])
				break
			}
		}
	}
	codes := []struct{ code, msg string }{
		1:  {"OK", ""},
		2:  {"NOT_FOUND", "Servable not found for request: Specific(flowers, 1)"},
		3:  {"NOT_FOUND", "Servable not found for request: Latest(tulips)"},
		4:  {"INVALID_ARGUMENT", "Unrecognized servable version label: stable"},
		5:  {"FAILED_PRECONDITION", `Serving signature key "nope" not found.`},
		6:  {"INVALID_ARGUMENT", "instance 0:"},
		7:  {"RESOURCE_EXHAUSTED", "larger than max"},
		8:  {"OK", ""},
		9:  {"OK", ""},
		10: {"OK", ""},
		11: {"INVALID_ARGUMENT", "Expected classification signature method_name to be tensorflow/serving/classify. Was: tensorflow/serving/predict"},
		12: {"NOT_FOUND", "Servable not found for request: Latest(tulips)"},
		13: {"INVALID_ARGUMENT", "instance 0: image too large: PNG 20000x20000"},
	}
	for i := 1; i < len(codes); i++ {
		if res[i].Code != codes[i].code || !strings.Contains(res[i].Message, codes[i].msg) {
			t.Errorf("case %d %v: %s %q, want %s containing %q", i, cases[i], res[i].Code, res[i].Message, codes[i].code, codes[i].msg)
		}
	}
	if r := res[8]; r.N != 2 || r.Version != 2 || r.SignatureName != "predict_images" {
		t.Errorf("predict_images: %+v", r)
	}
	if sig := res[9].Signatures["serving_default"]; sig.MethodName != "tensorflow/serving/predict" || sig.Inputs["image_bytes"] == "" || sig.Inputs["image_bytes"] == "image_bytes:0" {
		t.Errorf("metadata serving_default %+v: want the stored tensor names", sig)
	}
	if v := res[10].Versions; len(v) != 1 || v[0].Version != 2 || v[0].State != "AVAILABLE" {
		t.Errorf("status %+v", v)
	}
}
