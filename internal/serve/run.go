package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
)

// Run listens on addr and serves until ctx is done, then shuts down
// gracefully: it stops accepting, lets in-flight requests finish (up to a
// drain timeout), and closes the server and its models. Run always closes
// s before returning, even when listening fails.
func (s *Server) Run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return errors.Join(fmt.Errorf("serve: listen: %w", err), s.Close())
	}
	return s.serve(ctx, ln)
}

// serve is Run on an existing listener, which tests use to pick a free port.
func (s *Server) serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler: s.handler,
		// Without these a client that trickles its headers or body (or
		// never sends the next request) holds a connection and a goroutine
		// forever.
		ReadHeaderTimeout: s.cfg.readHeaderTimeout,
		ReadTimeout:       s.cfg.readTimeout,
		WriteTimeout:      s.cfg.writeTimeout,
		IdleTimeout:       s.cfg.idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.log.Info("serving TF Serving REST API", "addr", ln.Addr().String(), "base_dir", s.cfg.BaseDir)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var err error
	select {
	case err = <-served:
		err = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		s.log.Info("shutting down: draining in-flight requests", "timeout", s.cfg.shutdownTimeout)
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.shutdownTimeout)
		defer cancel()
		if err = srv.Shutdown(sctx); err != nil {
			err = fmt.Errorf("serve: graceful shutdown: %w", err)
			_ = srv.Close() // the drain timed out: cut the stragglers off
		}
		<-served // http.ErrServerClosed, expected
	}
	return errors.Join(err, s.Close())
}
