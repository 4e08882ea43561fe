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

// Server serves TF Serving's REST and gRPC APIs for one or more models,
// each loading new versions from its base folder as they appear.
type Server struct {
	cfg    Config
	load   Loader
	log    *slog.Logger
	models map[string]*servable // fixed after New
	queue  *queue

	// ctx is handed to the model for every batch; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	polls atomic.Int64 // finished rescans of every model, so tests wait for polls instead of sleeping

	stopWatch context.CancelFunc
	watchDone chan struct{}
	handler   http.Handler

	closeOnce sync.Once
	closeErr  error
}

// servable is one model name: where its versions are, which of them its
// policy serves, its version labels and the versions loaded.
type servable struct {
	ModelConfig
	reg *registry
	log *slog.Logger

	// Owned by the watch goroutine (and New before it starts).
	failed      map[int64]string // version → stamp of the attempt that failed
	lastScanErr string
}

// New loads the versions each model's policy asks for (for "latest", the
// newest that load, falling back to older ones) and starts watching for new
// versions. Every model must have at least one version that loads.
func New(cfg Config, load Loader) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if load == nil {
		return nil, errors.New("serve: loader is nil")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:    cfg,
		load:   load,
		log:    cfg.Logger,
		models: map[string]*servable{},
		queue:  &queue{limit: int64(cfg.QueueSize)},
		ctx:    ctx,
		cancel: cancel,
	}
	for _, mc := range cfg.Models {
		log := cfg.Logger.With("model", mc.Name)
		m := &servable{ModelConfig: mc, reg: newRegistry(mc.Policy.keep(), log), log: log, failed: map[int64]string{}}
		s.models[mc.Name] = m
		if err := s.start(m); err != nil {
			cancel()
			return nil, errors.Join(err, s.closeModels())
		}
	}
	s.handler = s.handle(s.route)
	watchCtx, stop := context.WithCancel(context.Background())
	s.stopWatch, s.watchDone = stop, make(chan struct{})
	go s.watch(watchCtx)
	return s, nil
}

// start makes the first scan of m's base folder.
func (s *Server) start(m *servable) error {
	found, err := scanVersions(m.BaseDir)
	if err != nil {
		return fmt.Errorf("serve: model %s: %w", m.Name, err)
	}
	if len(found) == 0 {
		return fmt.Errorf("serve: model %s: %s has no <int>/ version dirs with %s", m.Name, m.BaseDir, savedModelFile)
	}
	errs := s.sync(m, found)
	if m.reg.latest() < 0 {
		return fmt.Errorf("serve: model %s: no version in %s could be loaded (policy %v): %w", m.Name, m.BaseDir, m.Policy, errors.Join(errs...))
	}
	return nil
}

// Handler returns the REST API handler. It stays valid after Close, when it
// answers 503.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops watching the base folders, cancels the context of running
// predictions, fails waiting ones, and closes every model once the requests
// holding it have returned. It is safe to call more than once; later calls
// return the first call's error.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stopWatch()
		<-s.watchDone // a load in progress finishes first, then is closed below
		s.cancel()
		if err := s.closeModels(); err != nil {
			s.closeErr = fmt.Errorf("serve: close: %w", err)
		}
	})
	return s.closeErr
}

func (s *Server) closeModels() error {
	var errs []error
	for _, m := range s.models {
		errs = append(errs, m.reg.close())
	}
	return errors.Join(errs...)
}

// acquire returns the version of model name that spec asks for, with a
// reference held that the caller must release.
func (s *Server) acquire(name string, spec versionSpec) (*version, error) {
	m := s.models[name]
	if m == nil {
		if s.ctx.Err() != nil {
			return nil, errClosed
		}
		return nil, notFound(name, spec)
	}
	if spec.label != "" {
		n, ok := m.Labels[spec.label]
		if !ok {
			return nil, badRequest("Unrecognized servable version label: %s", spec.label)
		}
		spec = versionSpec{num: n, specific: true}
	}
	return m.reg.acquire(name, spec)
}

// release drops a reference acquire returned.
func (s *Server) release(v *version) { v.reg.release(v) }
