package reliability_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	shapepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tfflowers/tfflowers/internal/contract"
	tfs "github.com/tfflowers/tfflowers/internal/tfservingpb"
)

// The memory tests run the real binary on a real export (trained here, ImageNet base at
// 32x32 so that a model run costs little next to the JPEG decode) and read the child's
// resident set size from /proc while it works. Every model run's feed and fetch tensors
// hold C memory that only their finalizers free; tfops charges them to a byte budget and
// forces a collection when it fills (tfops/memory.go). RSS is judged once warm, on the
// second half of the load against the first (the allocator's arenas and TF's thread
// pools grow during the first), with memTolerance as the limit.

// memTolerance is the RSS growth allowed over the second half of a load. Flat runs
// measured +0.0 MiB (predict, 403.2 -> 403.2) and -3.7 MiB (serve, whose samples spread
// over ~4 MiB); a leak of the input tensor alone (4 photos of ~25 KB a batch) would add
// ~50 MiB over 500 batches. With the collector off (GOGC=off in the child, so neither
// dead tensors nor dead Go buffers are freed) predict grew 158 MiB and serve 349 MiB over
// the second half, and the test failed.
const memTolerance = 20.0 // MiB

// memPhotos are the real photos the loads cycle through: 32 of each class.
func memPhotos(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, c := range []string{"daisy", "dandelion", "roses", "sunflowers", "tulips"} {
		files = append(files, photos(t, c, 32)...)
	}
	return files
}

// memExport trains one epoch on 8 photos of two classes and exports it.
func memExport(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	flowerSet(t, data, 8, "daisy", "roses")
	cfg := smallConfig(t, data, nil)
	cfg.Export = filepath.Join(t.TempDir(), "export")
	if _, err := run(t, cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.Export
}

// rssOf is process pid's resident set size in MiB, from /proc/PID/statm.
func rssOf(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(raw))
	if len(f) < 2 {
		return 0, fmt.Errorf("statm: %q", raw)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, err
	}
	return float64(pages*int64(os.Getpagesize())) / (1 << 20), nil
}

// judgeFlat fails the test when RSS grew more than memTolerance between the samples
// taken at the middle and at the end of a load.
func judgeFlat(t *testing.T, what string, at []int, rss []float64) {
	t.Helper()
	parts := make([]string, len(at))
	for i := range at {
		parts[i] = fmt.Sprintf("%d: %.1f", at[i], rss[i])
	}
	t.Logf("%s: RSS (MiB) by progress: %s", what, strings.Join(parts, ", "))
	mid, end := len(rss)/2, len(rss)-1
	if d := rss[end] - rss[mid]; d > memTolerance {
		t.Errorf("%s: RSS grew %.1f MiB from %d to %d, more than the %.0f MiB allowed once warm (it keeps growing with the load)",
			what, d, at[mid], at[end], memTolerance)
	}
}

// TestMemoryFlatOverPredictAndServe runs `tfflowers predict` over 1,000 batches, then a
// `tfflowers serve` under 3,000 requests from 8 clients over REST and gRPC, and checks
// that neither process keeps growing.
func TestMemoryFlatOverPredictAndServe(t *testing.T) {
	if testing.Short() {
		t.Skip("trains, then predicts 4,000 images and serves 3,000 requests; skipped with -short")
	}
	if _, err := rssOf(os.Getpid()); err != nil {
		t.Skipf("no /proc/PID/statm to read RSS from: %v", err)
	}
	export := memExport(t)
	files := memPhotos(t)
	t.Run("predict", func(t *testing.T) { predictMemory(t, export, files) })
	t.Run("serve", func(t *testing.T) { serveMemory(t, export, files) })
}

// predictMemory runs predict over 1,000 batches of 4 photos, sampling its RSS as the
// result lines (one an image) come in.
func predictMemory(t *testing.T, export string, files []string) {
	const batches, batchSize = 1000, 4
	args := []string{"predict", "--model", export, "--batch-size", strconv.Itoa(batchSize), "--json"}
	for i := range batches * batchSize {
		args = append(args, files[i%len(files)])
	}
	cmd := exec.Command(cliBin, args...)
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	// Samples after batches 100 (warm) ... 990: the last ones must come before the
	// process exits.
	at := []int{100, 250, 400, 550, 700, 850, 990}
	var rss []float64
	sc := bufio.NewScanner(stdout)
	lines, errors := 0, 0
	for sc.Scan() {
		lines++
		var r struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.Error != "" {
			errors++
		}
		if len(rss) < len(at) && lines == at[len(rss)]*batchSize {
			v, err := rssOf(cmd.Process.Pid)
			if err != nil {
				t.Fatalf("read predict's RSS after %d batches: %v", at[len(rss)], err)
			}
			rss = append(rss, v)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("predict: %v\n%s", err, lastLines(stderr.String(), 20))
	}
	if lines != batches*batchSize || errors > 0 || len(rss) != len(at) {
		t.Fatalf("predict printed %d results (%d errors), want %d; %d RSS samples\n%s", lines, errors, batches*batchSize, len(rss), lastLines(stderr.String(), 20))
	}
	judgeFlat(t, fmt.Sprintf("predict, %d batches of %d", batches, batchSize), at, rss)
}

// serveMemory starts serve on loopback and sends it 3,000 one-photo requests from 8
// clients, half over REST and half over gRPC, sampling its RSS every 300 requests.
func serveMemory(t *testing.T, export string, files []string) {
	const requests, clients, every = 3000, 8, 300
	grpcPort := freePort(t)
	p := startCLI(t, nil, "--log-format", "json", "serve", "--model", export, "--name", "flowers",
		"--host", "127.0.0.1", "--port", "0", "--grpc-port", strconv.Itoa(grpcPort))
	restAddr := ""
	deadline := time.After(60 * time.Second)
	for restAddr == "" {
		select {
		case line := <-p.seen:
			var l struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "serving TF Serving REST API" {
				restAddr = l.Addr
			}
		case <-p.done:
			t.Fatalf("serve exited: %v\n%s", p.err, p.stderr())
		case <-deadline:
			t.Fatalf("serve did not start in 60 s:\n%s", p.stderr())
		}
	}
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", grpcPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := tfs.NewPredictionServiceClient(conn)
	raw := make([][]byte, len(files))
	for i, f := range files {
		raw[i] = readFile(t, f)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	send := func(i int) error {
		img := raw[i%len(raw)]
		if i%2 == 1 {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			resp, err := client.Predict(ctx, &tfs.PredictRequest{ModelSpec: &tfs.ModelSpec{Name: "flowers"},
				Inputs: map[string]*tensorpb.TensorProto{contract.InputBytes: {Dtype: typespb.DataType_DT_STRING, StringVal: [][]byte{img},
					TensorShape: &shapepb.TensorShapeProto{Dim: []*shapepb.TensorShapeProto_Dim{{Size: 1}}}}}})
			if err != nil {
				return fmt.Errorf("gRPC: %w", err)
			}
			if len(resp.Outputs[contract.OutputScores].GetFloatVal()) == 0 {
				return fmt.Errorf("gRPC: no scores in %v", resp)
			}
			return nil
		}
		body, _ := json.Marshal(map[string]any{"instances": []any{map[string]string{"b64": base64.StdEncoding.EncodeToString(img)}}})
		resp, err := hc.Post("http://"+restAddr+"/v1/models/flowers:predict", "application/json", bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("REST: %w", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"scores"`)) {
			return fmt.Errorf("REST: status %d: %.200s", resp.StatusCode, b)
		}
		return nil
	}
	var (
		next, done atomic.Int64
		mu         sync.Mutex
		at         []int
		rss        []float64
		firstErr   error
		wg         sync.WaitGroup
	)
	pid := p.cmd.Process.Pid
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= requests {
					return
				}
				err := send(i)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if n := int(done.Add(1)); n%every == 0 {
					if v, err := rssOf(pid); err == nil {
						at, rss = append(at, n), append(rss, v)
					}
				}
				stop := firstErr != nil
				mu.Unlock()
				if stop {
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("request failed: %v\n%s", firstErr, lastLines(p.stderr(), 20))
	}
	if len(rss) != requests/every {
		t.Fatalf("%d RSS samples of serve, want %d", len(rss), requests/every)
	}
	judgeFlat(t, fmt.Sprintf("serve, %d requests from %d clients (REST and gRPC)", requests, clients), at, rss)
}

// freePort is a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
