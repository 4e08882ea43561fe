package train

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/tfops"
)

// The input pipeline of a --cluster run runs on the workers: the chief reads each image's
// header (the pixel budget, the EXIF orientation, the JPEG decode scale: the rules the
// local decoder's Inspector applies) and feeds the file's path with what it decided; the
// worker that runs the image's row reads, decodes and resizes it (tfops.DeviceInputs).
// Pixels never leave the workers, and each file is read by one worker per pass. The data
// must be at the same path on every worker (a shared volume); images inside TFRecord
// files are sent as their encoded bytes.

// ErrWorkerData marks a cluster run whose workers do not see the training data.
var ErrWorkerData = errors.New("a cluster worker cannot read the training data")

// remoteInput is a source's link to the device input pipelines.
type remoteInput struct {
	in      *tfops.DeviceInputs
	sess    *tfops.Session
	extract func(*tfops.DeviceBatch) ([]float32, error)
	workers []string // addresses, by tower, for messages
	hints   sync.Map // sample name -> imageHint
	// running counts the goroutines of the newest stream: a new stream waits for the old
	// one's, whose decodes could otherwise still write into the banks it hands out.
	running sync.WaitGroup
}

// imageHint is what the chief decided about one image.
type imageHint struct {
	img tfops.EncodedImage // without Seed, and without Contents for a TFRecord image
	err error
}

// image returns how sample is to be decoded on a worker. data are its bytes when the
// chief has read them already (to hash them for the feature cache); a file's header is
// read otherwise, once per run.
func (r *remoteInput) image(sm pipeline.Sample, data []byte) (tfops.EncodedImage, error) {
	if h, ok := r.hints.Load(sm.Name); ok {
		hint := h.(imageHint)
		return r.withContents(sm, hint.img, data, hint.err)
	}
	var h imageHint
	var o, scale int
	if data != nil {
		o, scale, h.err = pipeline.DecodeHints(data)
	} else {
		o, scale, h.err = sm.DecodeHints()
	}
	h.img = tfops.EncodedImage{Orientation: o, Scale: scale}
	if f := sm.File(); f != "" {
		abs, err := filepath.Abs(f)
		if err != nil {
			return tfops.EncodedImage{}, fmt.Errorf("%s: %w", sm.Name, err)
		}
		h.img.Path = abs
	}
	r.hints.Store(sm.Name, h)
	return r.withContents(sm, h.img, data, h.err)
}

// withContents completes img: a TFRecord image travels as its encoded bytes.
func (r *remoteInput) withContents(sm pipeline.Sample, img tfops.EncodedImage, data []byte, hintErr error) (tfops.EncodedImage, error) {
	if hintErr != nil {
		return img, fmt.Errorf("%w: %w", tfops.ErrDecode, hintErr)
	}
	if img.Path != "" {
		return img, nil
	}
	if data == nil {
		var err error
		if data, err = sm.ReadBytes(); err != nil {
			return img, err
		}
	}
	img.Contents = data
	return img, nil
}

// decodeErr sorts a worker's decode failure: a bad image (err wrapping tfops.ErrDecode, or
// a file gone for the chief too) is the image's; a worker that cannot read a file the
// chief reads, or a worker that is gone, is the run's (returned wrapped in errRun).
func (r *remoteInput) decodeErr(db *tfops.DeviceBatch, row int, img tfops.EncodedImage, err error) (imageErr error, runErr error) {
	if err == nil || errors.Is(err, tfops.ErrDecode) {
		return err, nil
	}
	if errors.Is(err, tfops.ErrDeviceRead) {
		if _, statErr := os.Stat(img.Path); statErr != nil {
			return err, nil // gone for the chief as well: the image's failure
		}
		return nil, r.unreadable(db.Tower(row), img.Path, err)
	}
	return nil, err
}

// unreadable is the error for worker k not seeing path.
func (r *remoteInput) unreadable(k int, path string, err error) error {
	return fmt.Errorf("%w: worker task %d (%s) cannot read %s, which this process reads: the data must be at the same path on every worker "+
		"(a shared volume, as deploy/kubernetes mounts it): %w", ErrWorkerData, k, r.workers[k], path, err)
}

// checkWorkers reads one training image on every worker before training starts, so that
// a worker without the data fails the run at once, not after a frozen phase that ran on
// cached features.
func (r *remoteInput) checkWorkers(samples []pipeline.Sample) error {
	for _, sm := range samples {
		if sm.File() == "" {
			continue
		}
		path, err := filepath.Abs(sm.File())
		if err != nil {
			return err
		}
		for k := 0; k < r.in.Devices(); k++ {
			if err := r.in.CheckRead(r.sess, k, path); err != nil {
				if errors.Is(err, tfops.ErrDeviceRead) {
					return r.unreadable(k, path, err)
				}
				return err
			}
		}
		return nil
	}
	return nil // TFRecord images travel as bytes
}

// bankPool hands out a stream's banks: a batch holds one from its decoding until its step
// (or, for features, its extraction) has run.
type bankPool chan int

func newBankPool(n int) bankPool {
	p := make(bankPool, n)
	for i := 0; i < n; i++ {
		p <- i
	}
	return p
}

// acquire waits for a free bank; release gives it back (once, however often it is called).
func (p bankPool) acquire(ctx context.Context) (bank int, release func(), err error) {
	select {
	case bank = <-p:
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
	var once sync.Once
	return bank, func() { once.Do(func() { p <- bank }) }, nil
}

// prepareRemote is prepare's images mode for a cluster: the chief reads headers, the
// workers the images.
func (s *source) prepareRemote(ctx context.Context, p *pending, samples []pipeline.Sample, augmentEpoch int, pool bankPool) error {
	b, n := p.b, len(samples)
	imgs := make([]tfops.EncodedImage, n)
	want := make([]bool, n)
	err := s.parallel(ctx, n, func(i int) error {
		img, err := s.remote.image(samples[i], nil)
		if err != nil {
			return s.record(samples[i], i, b, p.ok, err)
		}
		if augmentEpoch >= 0 {
			img.Seed = &[2]int64{int64(s.seed), int64(augmentEpoch)<<32 | int64(hashName(samples[i].Name))}
		}
		imgs[i], want[i] = img, true
		return nil
	})
	if err != nil {
		return err
	}
	var rows []int
	for i, w := range want {
		if w {
			rows = append(rows, i)
		}
	}
	return s.decodeRemote(ctx, p, samples, rows, imgs, pool)
}

// decodeRemote decodes samples[rows] on the workers, into one bank.
func (s *source) decodeRemote(ctx context.Context, p *pending, samples []pipeline.Sample, rows []int, imgs []tfops.EncodedImage, pool bankPool) error {
	if len(rows) == 0 {
		return nil
	}
	bank, release, err := pool.acquire(ctx)
	if err != nil {
		return err
	}
	db, err := s.remote.in.NewBatch(bank, len(rows))
	if err != nil {
		release()
		return err
	}
	p.dev, p.devRows, p.release = db, rows, release
	err = s.parallel(ctx, len(rows), func(j int) error {
		i := rows[j]
		imgErr, runErr := s.remote.decodeErr(db, j, imgs[i], db.Decode(s.remote.sess, j, imgs[i]))
		if runErr != nil {
			return runErr
		}
		return s.record(samples[i], i, p.b, p.ok, imgErr)
	})
	if err != nil {
		release()
	}
	return err
}

// decodeMissesRemote decodes the cache misses on the workers; data holds the bytes
// lookupFeatures already read (their headers are read from them).
func (s *source) decodeMissesRemote(ctx context.Context, p *pending, samples []pipeline.Sample, data [][]byte, pool bankPool) error {
	imgs := make([]tfops.EncodedImage, len(samples))
	var rows []int
	for _, i := range p.misses {
		img, err := s.remote.image(samples[i], data[i])
		if err != nil {
			if err := s.record(samples[i], i, p.b, p.ok, err); err != nil {
				return err
			}
			continue
		}
		imgs[i], rows = img, append(rows, i)
	}
	return s.decodeRemote(ctx, p, samples, rows, imgs, pool)
}

// finishRemote completes a batch decoded on the workers: it drops the images that failed
// and, for features, runs the backbone where the images are and gives the bank back.
// An images batch keeps its bank until the step has run (batch.done).
func (s *source) finishRemote(p *pending) (*batch, error) {
	b := p.b
	if p.dev != nil {
		keep := make([]bool, len(p.devRows))
		for j, i := range p.devRows {
			keep[j] = p.ok[i]
		}
		if err := p.dev.Keep(keep); err != nil {
			p.release()
			return nil, err
		}
	}
	if p.withImages {
		if p.dev != nil && p.dev.Len() > 0 {
			b.device, b.release = p.dev, p.release
		} else if p.release != nil {
			p.release()
		}
		return b.compact(p.ok, 0, false), nil
	}
	if p.dev != nil {
		defer p.release()
		if p.dev.Len() > 0 {
			feats, err := s.remote.extract(p.dev)
			if err != nil {
				return nil, err
			}
			var todo []int
			for _, i := range p.devRows {
				if p.ok[i] {
					todo = append(todo, i)
				}
			}
			s.store(p, todo, feats)
		}
	}
	return b.compact(p.ok, s.featLen, false), nil
}
