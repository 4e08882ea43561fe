package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
)

// Server serves one model name over TF Serving's REST API, loading new
// versions from BaseDir as they appear.
type Server struct {
	cfg   Config
	load  Loader
	log   *slog.Logger
	reg   *registry
	queue *queue

	// ctx is handed to the model for every batch; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	// Owned by the watch goroutine (and New before it starts).
	failed      map[int64]string // version → stamp of the attempt that failed
	lastScanErr string
	polls       atomic.Int64 // finished rescans, so tests wait for polls instead of sleeping

	stopWatch context.CancelFunc
	watchDone chan struct{}
	handler   http.Handler

	closeOnce sync.Once
	closeErr  error
}

// New loads the newest version in cfg.BaseDir (falling back to older ones
// if it fails to load) and starts watching for new versions.
func New(cfg Config, load Loader) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if load == nil {
		return nil, errors.New("serve: loader is nil")
	}
	found, err := scanVersions(cfg.BaseDir)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("serve: %s has no <int>/ version dirs with %s", cfg.BaseDir, savedModelFile)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:    cfg,
		load:   load,
		log:    cfg.Logger.With("model", cfg.Name),
		queue:  &queue{limit: int64(cfg.QueueSize)},
		ctx:    ctx,
		cancel: cancel,
		failed: map[int64]string{},
	}
	s.reg = newRegistry(cfg.keepVersions, s.log)
	var errs []error
	for _, dv := range found {
		if err := s.loadVersion(dv); err != nil {
			errs = append(errs, err)
			continue
		}
		break
	}
	if s.reg.latest() < 0 {
		cancel()
		return nil, fmt.Errorf("serve: no version in %s could be loaded: %w", cfg.BaseDir, errors.Join(errs...))
	}
	s.handler = s.handle(s.route)
	watchCtx, stop := context.WithCancel(context.Background())
	s.stopWatch, s.watchDone = stop, make(chan struct{})
	go s.watch(watchCtx)
	return s, nil
}

// Handler returns the REST API handler. It stays valid after Close, when it
// answers 503.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops watching BaseDir, cancels the context of running predictions,
// fails waiting ones, and closes every model once the requests holding it
// have returned. It is safe to call more than once; later calls return the
// first call's error.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stopWatch()
		<-s.watchDone // a load in progress finishes first, then is closed below
		s.cancel()
		s.closeErr = s.reg.close()
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("serve: close: %w", s.closeErr)
		}
	})
	return s.closeErr
}

// acquire returns the version of model name that spec asks for, with a
// reference held that the caller must release.
func (s *Server) acquire(name string, spec versionSpec) (*version, error) {
	if name != s.cfg.Name {
		return nil, notFound(name, spec)
	}
	if spec.label != "" {
		// TF Serving: no label configured for the model.
		return nil, badRequest("Unrecognized servable version label: %s", spec.label)
	}
	return s.reg.acquire(name, spec)
}
