package train

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/tfops"
)

// dataSplit is the data of a run after scanning and splitting.
type dataSplit struct {
	classes          []string
	train, val, test []pipeline.Sample
	skipped          []pipeline.Skipped
}

// loadData scans the inputs and splits them, failing before any training on bad data.
func loadData(cfg *Config) (*dataSplit, error) {
	opts := pipeline.ScanOptions{Strict: cfg.Strict}
	var ds *pipeline.Dataset
	var err error
	if cfg.Data != "" {
		ds, err = pipeline.ScanFolders(cfg.Data, opts)
	} else {
		ds, err = pipeline.ReadTFRecords(cfg.TFRecords, cfg.Classes, opts)
	}
	if err != nil {
		return nil, err
	}
	out := &dataSplit{classes: ds.Classes, skipped: ds.Skipped}
	// The test set comes out first, by a ranking of names alone, so that neither the
	// validation fraction nor the test images' contents change what training sees.
	valFraction := cfg.ValSplit
	switch {
	case cfg.TestDir != "":
		tds, err := pipeline.ScanFolders(cfg.TestDir, opts)
		if err != nil {
			return nil, fmt.Errorf("--test-dir: %w", err)
		}
		if err := pipeline.CheckSameClasses(ds, tds); err != nil {
			return nil, fmt.Errorf("--test-dir: %w", err)
		}
		out.test = tds.Samples
		out.skipped = append(out.skipped, tds.Skipped...)
	case cfg.TestSplit > 0:
		rest, test, err := pipeline.SplitTest(ds, cfg.TestSplit, cfg.Seed)
		if err != nil {
			return nil, fmt.Errorf("--test-split: %w", err)
		}
		ds = &pipeline.Dataset{Classes: ds.Classes, Samples: rest, Skipped: ds.Skipped}
		out.test = test
		valFraction = cfg.ValSplit / (1 - cfg.TestSplit) // --val-split is a fraction of the whole dataset
	}
	if cfg.ValDir != "" {
		vds, err := pipeline.ScanFolders(cfg.ValDir, opts)
		if err != nil {
			return nil, fmt.Errorf("--val-dir: %w", err)
		}
		if err := pipeline.CheckSameClasses(ds, vds); err != nil {
			return nil, err
		}
		out.train, out.val = ds.Samples, vds.Samples
		out.skipped = append(out.skipped, vds.Skipped...)
	} else if out.train, out.val, err = pipeline.Split(ds, valFraction, cfg.Seed); err != nil {
		return nil, err
	}
	if cfg.TestDir != "" && overlaps(out.test, out.train, out.val) {
		return nil, fmt.Errorf("%w: --test-dir %s holds images that are also training or validation images; a test set must be disjoint", ErrConfig, cfg.TestDir)
	}
	if len(out.val) == 0 {
		return nil, fmt.Errorf("%w: the validation set is empty; raise --val-split or give --val-dir", ErrConfig)
	}
	warnSkipped(cfg.Logger, out.skipped)
	return out, nil
}

// overlaps reports whether a file of test is also in one of the others, by resolved path
// (symlinks followed; a byte-identical copy under another name is not detected).
func overlaps(test []pipeline.Sample, others ...[]pipeline.Sample) bool {
	abs := func(name string) string {
		if r, err := filepath.EvalSymlinks(name); err == nil {
			name = r
		}
		if a, err := filepath.Abs(name); err == nil {
			return a
		}
		return name
	}
	seen := map[string]bool{}
	for _, set := range others {
		for _, s := range set {
			seen[abs(s.Name)] = true
		}
	}
	for _, s := range test {
		if seen[abs(s.Name)] {
			return true
		}
	}
	return false
}

func warnSkipped(log *slog.Logger, skipped []pipeline.Skipped) {
	if len(skipped) == 0 {
		return
	}
	first := make([]string, 0, 3)
	for _, s := range skipped[:min(3, len(skipped))] {
		first = append(first, s.Name+" ("+s.Reason+")")
	}
	log.Warn("skipped unusable files (use --strict to make this an error)", "count", len(skipped), "first", strings.Join(first, "; "))
}

// batch is one step's input: either backbone features (frozen, cacheable path) or
// preprocessed images (augmentation and fine-tuning run the backbone in the step).
type batch struct {
	index    int
	labels   []int64
	names    []string
	features []float32 // n * featLen (the head input), when images == nil
	images   []float32 // n * size*size*3
	size     int       // the images' side: the source's
	bad      []string  // samples dropped because they could not be decoded
	// device, instead of images, holds a cluster batch's images on the workers, in a bank
	// that release gives back: call done once the step or evaluation has run.
	device  *tfops.DeviceBatch
	release func()
}

func (b *batch) n() int { return len(b.labels) }

// done gives back what the batch holds on the workers (nothing for other batches).
func (b *batch) done() {
	if b.release != nil {
		b.release()
	}
}

// source turns samples into batches. Safe for concurrent use.
type source struct {
	extract  func(images []float32, n int) ([]float32, error) // backbone features, over every replica
	dec      *tfops.ImageDecoder                              // nil when the workers decode (remote)
	remote   *remoteInput                                     // --cluster: the input pipeline runs on the workers
	cache    *pipeline.FeatureCache                           // nil: no on-disk cache
	size     int
	featLen  int
	workers  int
	seed     uint64
	ids      sync.Map // sample name -> content id, so later epochs skip hashing
	strict   bool
	badMu    sync.Mutex
	badNames map[string]bool

	log       *slog.Logger
	cacheErrs atomic.Int64 // cache reads and writes that failed (disk full, I/O error)
	cacheWarn sync.Once

	// spill keeps the cache entries this run has read or written, so that later epochs
	// read them with one pread each (spillStore); nil without a cache, or when its file
	// could not be created (then each epoch reads the cache's files).
	spill *spillStore
}

// remember spills features for id, for the later epochs.
func (s *source) remember(id string, feats []float32) {
	if s.spill == nil {
		return
	}
	if err := s.spill.put(id, feats); err != nil {
		s.cacheFailed(err)
	}
}

// close frees what the source holds: the decoder and the spill file.
func (s *source) close() {
	if s.dec != nil {
		s.dec.Close()
		s.dec = nil
	}
	if s.spill != nil {
		if err := s.spill.close(); err != nil {
			s.log.Warn("feature spill file", "error", err)
		}
		s.spill = nil
	}
}

func newSource(extract func([]float32, int) ([]float32, error), dec *tfops.ImageDecoder, cache *pipeline.FeatureCache, size, featLen int, seed uint64, strict bool, log *slog.Logger) *source {
	s := &source{extract: extract, dec: dec, cache: cache, size: size, featLen: featLen, workers: runtime.GOMAXPROCS(0),
		seed: seed, strict: strict, badNames: map[string]bool{}, log: log}
	if cache != nil {
		var err error
		if s.spill, err = openSpill(cache.Dir(), featLen); err != nil {
			log.Warn("epochs will read the feature cache's files", "error", err)
		}
	}
	return s
}

// cacheFailed notes a feature-cache read or write that failed. The cache only saves
// time: training goes on with the features it has just computed (or recomputes them),
// and the first failure is logged so a full or broken cache disk does not go unnoticed.
func (s *source) cacheFailed(err error) {
	s.cacheErrs.Add(1)
	s.cacheWarn.Do(func() {
		s.log.Warn("feature cache failed; training continues, computing features that cannot be cached", "dir", s.cache.Dir(), "error", err)
	})
}

// errDecode wraps per-image failures; in strict mode they stop training.
var errDecode = errors.New("image could not be used")

// parallel runs fn(i) for i in [0,n) on at most s.workers goroutines. The first error
// stops handing out work and is returned; otherwise the context's error, if any.
func (s *source) parallel(ctx context.Context, n int, fn func(i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, s.workers))
	for i := 0; i < n && gctx.Err() == nil; i++ {
		g.Go(func() error { return fn(i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// pending is a batch between the two stages of the pipeline: decoded (or read from the
// cache) by prepare, and completed by finish, which runs the backbone for cache misses.
type pending struct {
	b      *batch
	ok     []bool
	ids    []string  // features mode: content ids, the cache keys
	misses []int     // features mode: the samples the cache did not have, in batch order
	images []float32 // features mode: decoded images of the misses, packed in misses' order

	withImages bool               // the batch carries images (else features)
	dev        *tfops.DeviceBatch // remote: the rows decoded on the workers
	devRows    []int              // remote: dev's rows, as rows of b
	release    func()             // remote: gives dev's bank back
}

// prepare reads, checks the cache and decodes batch idx. augmentEpoch >= 0 asks for
// augmented images (seeded by seed, epoch and sample); withImages forces images
// (fine-tuning); otherwise the batch carries backbone features.
func (s *source) prepare(ctx context.Context, idx int, samples []pipeline.Sample, augmentEpoch int, withImages bool, pool bankPool) (*pending, error) {
	n := len(samples)
	p := &pending{b: &batch{index: idx, size: s.size, labels: make([]int64, n), names: make([]string, n)}, ok: make([]bool, n), withImages: augmentEpoch >= 0 || withImages}
	if p.withImages && s.remote != nil {
		return p, s.prepareRemote(ctx, p, samples, augmentEpoch, pool)
	}
	if p.withImages {
		return p, s.decodeAll(ctx, p, samples, augmentEpoch)
	}
	// First the cache, then decoding for the misses alone: a warm epoch allocates no
	// image buffers (64 images at 192 px are 28 MB per batch).
	data, err := s.lookupFeatures(ctx, p, samples)
	if err != nil || len(p.misses) == 0 {
		return p, err
	}
	if s.remote != nil {
		return p, s.decodeMissesRemote(ctx, p, samples, data, pool)
	}
	return p, s.decodeMisses(ctx, p, samples, data)
}

// decodeAll decodes every sample of the batch into p.b.images, augmented when
// augmentEpoch >= 0.
func (s *source) decodeAll(ctx context.Context, p *pending, samples []pipeline.Sample, augmentEpoch int) error {
	b, per := p.b, s.size*s.size*3
	b.images = make([]float32, len(samples)*per)
	return s.parallel(ctx, len(samples), func(i int) error {
		data, err := samples[i].ReadBytes()
		if err == nil {
			var seed *[2]int64
			if augmentEpoch >= 0 {
				seed = &[2]int64{int64(s.seed), int64(augmentEpoch)<<32 | int64(hashName(samples[i].Name))}
			}
			err = s.dec.Decode(data, seed, b.images[i*per:(i+1)*per])
		}
		return s.record(samples[i], i, b, p.ok, err)
	})
}

// lookupFeatures fills p.b.features from the in-memory and on-disk caches and lists the
// samples they did not have in p.misses. It returns the bytes it had to read (to learn a
// sample's content id), so a miss is not read twice.
func (s *source) lookupFeatures(ctx context.Context, p *pending, samples []pipeline.Sample) ([][]byte, error) {
	n, b := len(samples), p.b
	b.features = make([]float32, n*s.featLen)
	p.ids = make([]string, n)
	data := make([][]byte, n) // bytes already read for a miss
	missed := make([]bool, n)
	err := s.parallel(ctx, n, func(i int) error {
		id, known := s.ids.Load(samples[i].Name)
		if !known {
			raw, err := samples[i].ReadBytes()
			if err != nil {
				return s.record(samples[i], i, b, p.ok, err)
			}
			data[i], id = raw, pipeline.ContentID(raw)
			s.ids.Store(samples[i].Name, id)
		}
		p.ids[i] = id.(string)
		if s.cache != nil {
			dst := b.features[i*s.featLen : (i+1)*s.featLen]
			if s.spill != nil {
				if hit, err := s.spill.get(p.ids[i], dst); hit {
					return s.record(samples[i], i, b, p.ok, nil)
				} else if err != nil {
					s.cacheFailed(err)
				}
			}
			hit, err := s.cache.GetInto(p.ids[i], dst)
			if err != nil {
				s.cacheFailed(err)
			}
			if err == nil && hit {
				s.remember(p.ids[i], dst)
				return s.record(samples[i], i, b, p.ok, nil)
			}
		}
		missed[i] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, m := range missed {
		if m {
			p.misses = append(p.misses, i)
		}
	}
	return data, nil
}

// decodeMisses decodes the cache misses into p.images, in p.misses' order; data holds
// the bytes lookupFeatures already read.
func (s *source) decodeMisses(ctx context.Context, p *pending, samples []pipeline.Sample, data [][]byte) error {
	per := s.size * s.size * 3
	p.images = make([]float32, len(p.misses)*per)
	return s.parallel(ctx, len(p.misses), func(j int) error {
		i := p.misses[j]
		raw := data[i]
		if raw == nil {
			var err error
			if raw, err = samples[i].ReadBytes(); err != nil {
				return s.record(samples[i], i, p.b, p.ok, err)
			}
		}
		return s.record(samples[i], i, p.b, p.ok, s.dec.Decode(raw, nil, p.images[j*per:(j+1)*per]))
	})
}

// finish runs the backbone once on the misses of the batch that decoded, stores their
// new features, and drops the samples that failed.
func (s *source) finish(p *pending) (*batch, error) {
	if s.remote != nil {
		return s.finishRemote(p)
	}
	b := p.b
	per := s.size * s.size * 3
	if b.images != nil {
		return b.compact(p.ok, per, true), nil
	}
	// Pack out the misses that failed to decode (rare: usually nothing moves).
	todo, packed := p.misses[:0:0], p.images
	for j, i := range p.misses {
		if p.ok[i] {
			if len(todo) != j {
				copy(packed[len(todo)*per:], p.images[j*per:(j+1)*per])
			}
			todo = append(todo, i)
		}
	}
	if len(todo) > 0 {
		feats, err := s.extract(packed[:len(todo)*per], len(todo))
		if err != nil {
			return nil, err
		}
		s.store(p, todo, feats)
	}
	return b.compact(p.ok, s.featLen, false), nil
}

// store puts the features computed for rows todo of p's batch (in todo's order) into the
// batch and the cache.
func (s *source) store(p *pending, todo []int, feats []float32) {
	for j, i := range todo {
		f := feats[j*s.featLen : (j+1)*s.featLen]
		copy(p.b.features[i*s.featLen:], f)
		if s.cache != nil {
			if err := s.cache.Put(p.ids[i], f); err != nil {
				s.cacheFailed(err)
			}
			s.remember(p.ids[i], f)
		}
	}
}

// record notes sample i's outcome; a failure drops it from the batch (or stops in strict mode).
func (s *source) record(sm pipeline.Sample, i int, b *batch, ok []bool, err error) error {
	b.labels[i] = int64(sm.Label)
	b.names[i] = sm.Name
	if err == nil {
		ok[i] = true
		return nil
	}
	if s.strict {
		return fmt.Errorf("%w: %s: %v (--strict)", errDecode, sm.Name, err)
	}
	s.badMu.Lock()
	s.badNames[sm.Name] = true
	s.badMu.Unlock()
	return nil
}

// compact removes failed samples from the batch.
func (b *batch) compact(ok []bool, per int, images bool) *batch {
	buf := b.features
	if images {
		buf = b.images
	}
	j := 0
	for i := range ok {
		if !ok[i] {
			b.bad = append(b.bad, b.names[i])
			continue
		}
		if i != j {
			b.labels[j], b.names[j] = b.labels[i], b.names[i]
			copy(buf[j*per:(j+1)*per], buf[i*per:(i+1)*per])
		}
		j++
	}
	b.labels, b.names = b.labels[:j], b.names[:j]
	if images {
		b.images = buf[:j*per]
	} else {
		b.features = buf[:j*per]
	}
	return b
}

// badCount returns how many distinct samples failed to decode so far, in the training
// source and the final evaluations' one.
func (t *trainer) badCount() (int, []string) {
	n, names := t.src.badCount()
	if t.evalSrc == nil || t.evalSrc == t.src {
		return n, names
	}
	seen := map[string]bool{}
	for _, name := range names {
		seen[name] = true
	}
	_, more := t.evalSrc.badCount()
	for _, name := range more {
		if !seen[name] {
			names = append(names, name)
		}
	}
	return len(names), names
}

// badCount returns how many distinct samples failed to decode so far.
func (s *source) badCount() (int, []string) {
	s.badMu.Lock()
	defer s.badMu.Unlock()
	names := make([]string, 0, len(s.badNames))
	for n := range s.badNames {
		names = append(names, n)
	}
	return len(names), names
}

// hashName is FNV-1a, a stable per-sample seed component (independent of list order).
func hashName(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name)) // never fails
	return h.Sum32()
}
