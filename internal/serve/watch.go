package serve

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// watch rescans BaseDir every PollInterval until ctx is done, loading any
// version newer than the one being served.
func (s *Server) watch(ctx context.Context) {
	defer close(s.watchDone)
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.poll()
		}
	}
}

// poll loads the newest on-disk version above the served one, falling back
// to lower (still newer) ones if it fails. A version that failed is not
// retried until its files change, so a broken export costs one load
// attempt, not one per poll.
func (s *Server) poll() {
	defer s.polls.Add(1)
	found, err := scanVersions(s.cfg.BaseDir)
	if err != nil {
		// Transient (e.g. the directory is being replaced): keep serving.
		if err.Error() != s.lastScanErr {
			s.log.Warn("scan for model versions failed", "err", err)
		}
		s.lastScanErr = err.Error()
		return
	}
	s.lastScanErr = ""
	cur := s.reg.latest()
	for _, dv := range found {
		if dv.version <= cur {
			return
		}
		if stamp, failed := s.failed[dv.version]; failed && stamp == dv.stamp {
			continue
		}
		if s.loadVersion(dv) == nil {
			return
		}
	}
}

// loadVersion loads dv and makes it the default. Failures are logged and
// remembered; the caller decides whether to try another version.
func (s *Server) loadVersion(dv diskVersion) error {
	start := time.Now()
	m, err := safeLoad(s.load, dv.dir, dv.version)
	if err != nil {
		s.failed[dv.version] = dv.stamp
		s.log.Error("model version failed to load; will retry when its directory changes", "version", dv.version, "dir", dv.dir, "err", err)
		return err
	}
	delete(s.failed, dv.version)
	sigs, err := signatureDefs(m)
	if err != nil {
		err = fmt.Errorf("load model version %d from %s: %w", dv.version, dv.dir, err)
		if cerr := m.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		s.failed[dv.version] = dv.stamp
		s.log.Error("model version failed to load; will retry when its directory changes", "version", dv.version, "dir", dv.dir, "err", err)
		return err
	}
	if mv := m.Version(); mv != dv.version {
		// The directory name is what TF Serving and clients go by.
		s.log.Warn("model reports a version other than its directory's", "version", dv.version, "model_version", mv)
	}
	v := newVersion(s.ctx, dv.version, dv.dir, m, sigs, s.cfg, s.queue, s.log)
	if !s.reg.add(v) {
		return errClosed
	}
	s.log.Info("model version loaded", "version", dv.version, "dir", dv.dir, "classes", len(v.labels), "image_size", v.imageSize, "duration", time.Since(start))
	return nil
}

// safeLoad calls the Loader, turning a panic or a nil model into an error.
func safeLoad(load Loader, dir string, num int64) (m Model, err error) {
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("load model version %d from %s: panic: %v\n%s", num, dir, p, debug.Stack())
		}
	}()
	m, err = load(dir, num)
	if err != nil {
		return nil, fmt.Errorf("load model version %d from %s: %w", num, dir, err)
	}
	if m == nil {
		return nil, fmt.Errorf("load model version %d from %s: %w", num, dir, errors.New("loader returned no model"))
	}
	if m.ImageSize() <= 0 || len(m.Labels()) == 0 {
		err := fmt.Errorf("load model version %d from %s: model has image size %d and %d labels", num, dir, m.ImageSize(), len(m.Labels()))
		if cerr := m.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	return m, nil
}
