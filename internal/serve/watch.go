package serve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/tfflowers/tfflowers/internal/contract"
)

// watch rescans every model's base folder every PollInterval until ctx is
// done, loading the versions its policy asks for.
func (s *Server) watch(ctx context.Context) {
	defer close(s.watchDone)
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, m := range s.models {
				if ctx.Err() != nil {
					return
				}
				s.poll(m)
			}
			s.polls.Add(1)
		}
	}
}

// poll rescans m's base folder and syncs the loaded versions with it.
func (s *Server) poll(m *servable) {
	found, err := scanVersions(m.BaseDir)
	if err != nil {
		// Transient (e.g. the directory is being replaced): keep serving.
		if err.Error() != m.lastScanErr {
			m.log.Warn("scan for model versions failed", "err", err)
		}
		m.lastScanErr = err.Error()
		return
	}
	m.lastScanErr = ""
	s.unloadRemoved(m, found)
	s.sync(m, found)
}

// unloadRemoved retires the available versions whose folders have disappeared, as TF
// Serving does: its file-system source stops aspiring them, and its availability-
// preserving policy unloads them at once when another version still serves or nothing
// on disk is left to load, and otherwise only once a replacement has loaded (a removed
// latest keeps answering until the next one is up; if that fails to load, it keeps
// serving). A folder that is still there but lacks saved_model.pb (being rewritten)
// is not a removal.
func (s *Server) unloadRemoved(m *servable, found []diskVersion) {
	onDisk := map[int64]bool{}
	wanted := false
	for _, dv := range found {
		onDisk[dv.version] = true
		wanted = wanted || m.Policy.wants(dv.version)
	}
	var gone []int64
	serving := false
	for _, num := range m.reg.loadedNums() {
		if onDisk[num] {
			serving = true
			continue
		}
		if st, err := os.Stat(contract.VersionDir(m.BaseDir, num)); err == nil && st.IsDir() {
			serving = true
			continue
		}
		gone = append(gone, num)
	}
	m.reg.removed(gone, serving || !wanted)
}

// sync loads the on-disk versions (found, newest first) that m's policy
// serves and that are not loaded yet. For "latest N" that is the newest
// versions above the N-th newest one served, until N are available: a newer
// version that fails to load leaves the older ones serving, and loading
// falls back to lower (still newer) versions. For "specific" and "all" it
// is every wanted version. A version that failed is not retried until its
// files change, so a broken export costs one load attempt, not one per poll.
// The registry retires what a load pushes out of the newest N.
func (s *Server) sync(m *servable, found []diskVersion) []error {
	var errs []error
	if len(m.Policy.Specific) == 0 && !m.Policy.All {
		n := m.Policy.keep()
		avail := m.reg.available() // newest first
		threshold := int64(-1)
		if len(avail) >= n {
			threshold = avail[n-1]
		}
		count := 0
		for _, dv := range found {
			if count == n || dv.version <= threshold {
				break
			}
			if m.reg.has(dv.version) {
				count++
				continue
			}
			if err := s.tryLoad(m, dv); err != nil {
				errs = append(errs, err)
				continue
			}
			count++
		}
		return errs
	}
	for _, dv := range found {
		if !m.Policy.wants(dv.version) || m.reg.has(dv.version) {
			continue
		}
		if err := s.tryLoad(m, dv); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// tryLoad loads dv unless it failed before with the same files.
func (s *Server) tryLoad(m *servable, dv diskVersion) error {
	if stamp, failed := m.failed[dv.version]; failed && stamp == dv.stamp {
		return fmt.Errorf("version %d failed to load before and has not changed", dv.version)
	}
	return s.loadVersion(m, dv)
}

// loadVersion loads dv and makes it available. Failures are logged and
// remembered; the caller decides whether to try another version.
func (s *Server) loadVersion(m *servable, dv diskVersion) error {
	start := time.Now()
	model, err := safeLoad(s.load, dv.dir, dv.version)
	if err != nil {
		m.failed[dv.version] = dv.stamp
		m.log.Error("model version failed to load; will retry when its directory changes", "version", dv.version, "dir", dv.dir, "err", err)
		return err
	}
	sigs, err := signatureDefs(model)
	if err != nil {
		err = fmt.Errorf("load model version %d from %s: %w", dv.version, dv.dir, err)
		if cerr := model.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		m.failed[dv.version] = dv.stamp
		m.log.Error("model version failed to load; will retry when its directory changes", "version", dv.version, "dir", dv.dir, "err", err)
		return err
	}
	delete(m.failed, dv.version)
	if mv := model.Version(); mv != dv.version {
		// The directory name is what TF Serving and clients go by.
		m.log.Warn("model reports a version other than its directory's", "version", dv.version, "model_version", mv)
	}
	v := newVersion(s.ctx, dv.version, dv.dir, model, sigs, s.cfg, s.queue, m.log)
	v.reg = m.reg
	if !m.reg.add(v) {
		return errClosed
	}
	m.log.Info("model version loaded", "version", dv.version, "dir", dv.dir, "classes", len(v.labels), "image_size", v.imageSize, "duration", time.Since(start))
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
