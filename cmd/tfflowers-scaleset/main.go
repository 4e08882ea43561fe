// Command tfflowers-scaleset makes a large class-folder dataset from a small one for
// scripts/bench_scale.sh: every output file is a distinct image (a random crop, maybe
// flipped, colour-jittered, downscaled and re-encoded at a random JPEG quality), so a
// content-hash cache cannot deduplicate it and decoding costs what real photos cost.
//
//	tfflowers-scaleset -src ../shared/data/flower_photos -out build/scale/10000 -n 10000 [-seed 1]
//	tfflowers-scaleset -scan DIR      # seconds tfflowers' scan + split take on DIR
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"golang.org/x/image/draw"

	"github.com/tfflowers/tfflowers/pipeline"
)

func main() {
	src := flag.String("src", "", "folder of class folders to draw from")
	out := flag.String("out", "", "output folder (class folders are created in it)")
	n := flag.Int("n", 0, "number of images to write, spread evenly over the classes")
	seed := flag.Uint64("seed", 1, "seed of the crops and jitter")
	maxSide := flag.Int("max-side", 320, "longest side of the written images")
	scan := flag.String("scan", "", "time tfflowers' scan + split of this folder instead")
	flag.Parse()
	var err error
	if *scan != "" {
		err = timeScan(*scan)
	} else {
		err = generate(*src, *out, *n, *seed, *maxSide)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tfflowers-scaleset:", err)
		os.Exit(1)
	}
}

func timeScan(dir string) error {
	start := time.Now()
	ds, err := pipeline.ScanFolders(dir, pipeline.ScanOptions{})
	if err != nil {
		return err
	}
	if _, _, err := pipeline.Split(ds, 0.2, 42); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"images": len(ds.Samples), "scan_split_seconds": time.Since(start).Seconds()})
}

func generate(src, out string, n int, seed uint64, maxSide int) error {
	if src == "" || out == "" || n < 1 {
		return fmt.Errorf("-src, -out and -n >= 1 are required")
	}
	classes, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	type job struct{ from, to string }
	var perClass [][]string
	var names []string
	for _, c := range classes {
		if !c.IsDir() {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(src, c.Name(), "*.jpg"))
		if len(files) == 0 {
			continue
		}
		sort.Strings(files)
		perClass = append(perClass, files)
		names = append(names, c.Name())
	}
	if len(perClass) < 2 {
		return fmt.Errorf("%s: need at least 2 class folders of .jpg files", src)
	}
	var jobs []job
	for i := 0; i < n; i++ {
		k := i % len(perClass)
		files := perClass[k]
		dir := filepath.Join(out, names[k])
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		jobs = append(jobs, job{files[(i/len(perClass))%len(files)], filepath.Join(dir, fmt.Sprintf("%06d.jpg", i))})
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				rng := rand.New(rand.NewPCG(seed, uint64(i)))
				if err := variant(jobs[i].from, jobs[i].to, rng, maxSide); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range jobs {
		if _, err := os.Stat(jobs[i].to); err == nil {
			continue // made by an earlier run with the same arguments
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// variant writes one distinct version of the photo at from to to (via a temp file).
func variant(from, to string, rng *rand.Rand, maxSide int) error {
	f, err := os.Open(from)
	if err != nil {
		return err
	}
	img, err := jpeg.Decode(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	b := img.Bounds()
	// A crop of 70-100 % of each side at a random place.
	cw := int(float64(b.Dx()) * (0.7 + 0.3*rng.Float64()))
	ch := int(float64(b.Dy()) * (0.7 + 0.3*rng.Float64()))
	x0 := b.Min.X + rng.IntN(b.Dx()-cw+1)
	y0 := b.Min.Y + rng.IntN(b.Dy()-ch+1)
	scale := min(1, float64(maxSide)/float64(max(cw, ch)))
	dw, dh := max(1, int(float64(cw)*scale)), max(1, int(float64(ch)*scale))
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	draw.ApproxBiLinear.Scale(dst, dst.Bounds(), img, image.Rect(x0, y0, x0+cw, y0+ch), draw.Src, nil)
	flip := rng.IntN(2) == 1
	gain := [3]float64{}
	bright := 0.85 + 0.3*rng.Float64()
	for c := range gain {
		gain[c] = bright * (0.92 + 0.16*rng.Float64())
	}
	if flip {
		for y := 0; y < dh; y++ {
			for x := 0; x < dw/2; x++ {
				a, z := dst.RGBAAt(x, y), dst.RGBAAt(dw-1-x, y)
				dst.SetRGBA(x, y, z)
				dst.SetRGBA(dw-1-x, y, a)
			}
		}
	}
	clamp := func(v float64) uint8 { return uint8(min(255, max(0, v))) }
	for y := 0; y < dh; y++ {
		for x := 0; x < dw; x++ {
			p := dst.RGBAAt(x, y)
			dst.SetRGBA(x, y, color.RGBA{clamp(float64(p.R) * gain[0]), clamp(float64(p.G) * gain[1]), clamp(float64(p.B) * gain[2]), 255})
		}
	}
	tmp := to + ".tmp"
	w, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := jpeg.Encode(w, dst, &jpeg.Options{Quality: 80 + rng.IntN(16)}); err != nil {
		w.Close()
		os.Remove(tmp)
		return err
	}
	if err := w.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, to)
}
