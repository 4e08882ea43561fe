// Command tfflowers-bench measures the feature-extraction throughput of the frozen base
// through tfflowers' own Go pieces (pipeline.ScanFolders, tfops.ImageDecoder,
// savedmodel.Base.Extract), for scripts/bench.sh. It prints one JSON object per
// measurement on stdout:
//
//   - "raw": Base.Extract on one pre-decoded batch held in memory, repeated (model only);
//   - "pipelined": files to features, a pool of GOMAXPROCS goroutines decoding batch k+1
//     while Base.Extract runs on batch k (one batch of prefetch), as internal/train's
//     two-stage source does without a cache.
//
// internal/train's source is unexported, so the loop below mirrors it with the public APIs.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/savedmodel"
	"github.com/tfflowers/tfflowers/tfops"
)

type options struct {
	base, data    string
	size, batch   int
	repeats       int
	rawBatches    int
	limit         int
	modes         []string
	intra, inter  int
	warmupBatches int
	workers       int
}

// record is one JSON line of output.
type record struct {
	Mode          string  `json:"mode"`
	Repeat        int     `json:"repeat"`
	Images        int     `json:"images"`
	Seconds       float64 `json:"seconds"`
	ImagesPerSec  float64 `json:"images_per_second"`
	DecodeSeconds float64 `json:"decode_seconds,omitempty"` // time the consumer waited for / spent decoding
	ModelSeconds  float64 `json:"model_seconds,omitempty"`  // time inside Base.Extract
	Failed        int     `json:"failed,omitempty"`
	PeakRSSMiB    float64 `json:"peak_rss_mib"`
	Batch         int     `json:"batch"`
	Size          int     `json:"size"`
	Workers       int     `json:"workers"`
	IntraOp       int     `json:"intra_op_threads"`
	InterOp       int     `json:"inter_op_threads"`
}

func main() {
	var o options
	var modes string
	flag.StringVar(&o.base, "base", "", "base SavedModel (scripts/export_base_model.py)")
	flag.StringVar(&o.data, "data", "", "folder of class folders of images")
	flag.IntVar(&o.size, "image-size", 192, "images are resized to SIZE x SIZE")
	flag.IntVar(&o.batch, "batch-size", 64, "images per Base.Extract call")
	flag.IntVar(&o.repeats, "repeats", 3, "measurements per mode")
	flag.IntVar(&o.rawBatches, "raw-batches", 10, "Base.Extract calls per raw measurement")
	flag.IntVar(&o.limit, "limit", 0, "use only the first N images (0: all); for quick checks")
	flag.StringVar(&modes, "modes", "raw,pipelined", "comma-separated: raw, pipelined")
	flag.IntVar(&o.intra, "intra-op-threads", 0, "TensorFlow intra-op threads (0: TensorFlow's default)")
	flag.IntVar(&o.inter, "inter-op-threads", 0, "TensorFlow inter-op threads (0: TensorFlow's default)")
	flag.IntVar(&o.warmupBatches, "warmup-batches", 2, "untimed Base.Extract calls before measuring")
	flag.IntVar(&o.workers, "workers", 0, "decode goroutines (0: GOMAXPROCS, as internal/train)")
	flag.Parse()
	o.modes = strings.Split(modes, ",")
	if o.workers <= 0 {
		o.workers = runtime.GOMAXPROCS(0)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "tfflowers-bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.base == "" || o.data == "" {
		return fmt.Errorf("-base and -data are required")
	}
	ds, err := pipeline.ScanFolders(o.data, pipeline.ScanOptions{})
	if err != nil {
		return err
	}
	samples := ds.Samples
	if o.limit > 0 && o.limit < len(samples) {
		samples = samples[:o.limit]
	}
	threads := tfops.SessionConfig{IntraOpThreads: o.intra, InterOpThreads: o.inter, CPUOnly: true}
	base, err := savedmodel.LoadBase(o.base, threads)
	if err != nil {
		return err
	}
	defer base.Close()
	if _, err := base.CheckImageSize(o.size); err != nil {
		return err
	}
	dec, err := tfops.NewImageDecoder(o.size, tfops.ResizeSquash, tfops.Augment{}, threads, pipeline.DecodeHints)
	if err != nil {
		return err
	}
	defer dec.Close()

	per := o.size * o.size * 3
	// One pre-decoded batch for the raw measurement and the warm-up.
	nb := min(o.batch, len(samples))
	first := make([]float32, nb*per)
	for i := 0; i < nb; i++ {
		data, err := samples[i].ReadBytes()
		if err != nil {
			return err
		}
		if err := dec.Decode(data, nil, first[i*per:(i+1)*per]); err != nil {
			return fmt.Errorf("%s: %w", samples[i].Name, err)
		}
	}
	for i := 0; i < o.warmupBatches; i++ {
		if _, _, err := base.Extract(first, nb, o.size); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(os.Stdout)
	for _, mode := range o.modes {
		for r := 1; r <= o.repeats; r++ {
			var rec record
			switch mode {
			case "raw":
				rec, err = measureRaw(o, base, first, nb)
			case "pipelined":
				rec, err = measurePipelined(o, base, dec, samples)
			default:
				return fmt.Errorf("unknown mode %q (want raw, pipelined)", mode)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", mode, err)
			}
			rec.Mode, rec.Repeat = mode, r
			rec.ImagesPerSec = float64(rec.Images) / rec.Seconds
			rec.PeakRSSMiB = peakRSSMiB()
			rec.Batch, rec.Size, rec.Workers, rec.IntraOp, rec.InterOp = o.batch, o.size, o.workers, o.intra, o.inter
			if err := enc.Encode(rec); err != nil {
				return err
			}
		}
	}
	return nil
}

func measureRaw(o options, base *savedmodel.Base, images []float32, n int) (record, error) {
	start := time.Now()
	for i := 0; i < o.rawBatches; i++ {
		if _, _, err := base.Extract(images, n, o.size); err != nil {
			return record{}, err
		}
	}
	sec := time.Since(start).Seconds()
	return record{Images: n * o.rawBatches, Seconds: sec, ModelSeconds: sec}, nil
}

type decoded struct {
	images []float32
	n      int
	failed int
	err    error
}

// decodeBatch reads and decodes samples on o.workers goroutines into one batch buffer,
// dropping (and counting) images that fail, as internal/train does without --strict.
// With hash set it also computes each file's content id, as makeBatch does on a first pass.
func decodeBatch(o options, dec *tfops.ImageDecoder, samples []pipeline.Sample, hash bool) decoded {
	per := o.size * o.size * 3
	n := len(samples)
	buf := make([]float32, n*per)
	ok := make([]bool, n)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < min(o.workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				data, err := samples[i].ReadBytes()
				if err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					continue
				}
				if hash {
					_ = pipeline.ContentID(data)
				}
				ok[i] = dec.Decode(data, nil, buf[i*per:(i+1)*per]) == nil
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		return decoded{err: first}
	}
	j := 0
	for i := range ok {
		if ok[i] {
			if i != j {
				copy(buf[j*per:(j+1)*per], buf[i*per:(i+1)*per])
			}
			j++
		}
	}
	return decoded{images: buf[:j*per], n: j, failed: n - j}
}

func measurePipelined(o options, base *savedmodel.Base, dec *tfops.ImageDecoder, samples []pipeline.Sample) (record, error) {
	start := time.Now()
	batches := make(chan decoded, 1) // one batch of prefetch, plus the one being decoded
	go func() {
		defer close(batches)
		for lo := 0; lo < len(samples); lo += o.batch {
			batches <- decodeBatch(o, dec, samples[lo:min(lo+o.batch, len(samples))], false)
		}
	}()
	var rec record
	waitStart := time.Now()
	for b := range batches {
		rec.DecodeSeconds += time.Since(waitStart).Seconds()
		if b.err != nil {
			for range batches { // let the producer finish
			}
			return record{}, b.err
		}
		t0 := time.Now()
		if b.n > 0 {
			if _, _, err := base.Extract(b.images, b.n, o.size); err != nil {
				for range batches {
				}
				return record{}, err
			}
		}
		rec.ModelSeconds += time.Since(t0).Seconds()
		rec.Images += b.n
		rec.Failed += b.failed
		waitStart = time.Now()
	}
	rec.Seconds = time.Since(start).Seconds()
	return rec, nil
}

func peakRSSMiB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kb)
			return kb / 1024
		}
	}
	return 0
}
