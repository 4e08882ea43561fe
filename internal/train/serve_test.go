package train_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tfflowers/tfflowers/internal/serve"
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
	srv, err := serve.New(serve.Config{BaseDir: cfg.Export, Name: "flowers", PollInterval: 100 * time.Millisecond}, load)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

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
		resp, err := http.Post(hs.URL+"/v1/models/flowers:predict", "application/json", bytes.NewReader(body))
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
		resp, err := http.Get(hs.URL + "/v1/models/flowers")
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
}
