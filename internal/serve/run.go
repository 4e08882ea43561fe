package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
)

// Run serves the REST API on restAddr and, when grpcAddr is not empty, TF
// Serving's gRPC API on grpcAddr, until ctx is done; then it shuts down
// gracefully: both stop accepting, in-flight requests finish (up to a drain
// timeout), and the server and its models are closed. Run always closes s
// before returning, even when listening fails.
func (s *Server) Run(ctx context.Context, restAddr, grpcAddr string) error {
	rest, err := net.Listen("tcp", restAddr)
	if err != nil {
		return errors.Join(fmt.Errorf("serve: listen: %w", err), s.Close())
	}
	var grpcLn net.Listener
	if grpcAddr != "" {
		if grpcLn, err = net.Listen("tcp", grpcAddr); err != nil {
			_ = rest.Close()
			return errors.Join(fmt.Errorf("serve: listen (gRPC): %w", err), s.Close())
		}
	}
	return s.Serve(ctx, rest, grpcLn)
}

// Serve is Run on existing listeners (grpcLn nil: no gRPC), which lets
// callers and tests pick free ports. It closes both listeners.
func (s *Server) Serve(ctx context.Context, ln, grpcLn net.Listener) error {
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
	served := make(chan error, 2)
	for _, m := range s.cfg.Models {
		s.log.Info("serving model", "model", m.Name, "base_dir", m.BaseDir, "policy", m.Policy.String(), "labels", m.Labels)
	}
	s.log.Info("serving TF Serving REST API", "addr", ln.Addr().String())
	go func() { served <- srv.Serve(ln) }()
	running := 1
	g := s.newGRPCServer()
	if grpcLn != nil {
		s.log.Info("serving TF Serving gRPC API", "addr", grpcLn.Addr().String())
		go func() {
			err := g.Serve(grpcLn)
			if err == nil {
				err = http.ErrServerClosed // GracefulStop: the same "expected" end
			}
			served <- err
		}()
		running++
	}

	var err error
	select {
	case err = <-served:
		running--
		err = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		s.log.Info("shutting down: draining in-flight requests", "timeout", s.cfg.shutdownTimeout)
	}
	err = errors.Join(err, s.drain(srv, g))
	for ; running > 0; running-- {
		<-served // http.ErrServerClosed, expected
	}
	return errors.Join(err, s.Close())
}

// drain stops both servers accepting and waits for their in-flight
// requests, up to the shutdown timeout, then cuts off the stragglers.
func (s *Server) drain(srv *http.Server, g interface {
	GracefulStop()
	Stop()
}) error {
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.shutdownTimeout)
	defer cancel()
	grpcDone := make(chan struct{})
	go func() { g.GracefulStop(); close(grpcDone) }()
	var err error
	if e := srv.Shutdown(sctx); e != nil {
		err = fmt.Errorf("serve: graceful shutdown: %w", e)
		_ = srv.Close()
	}
	select {
	case <-grpcDone:
	case <-sctx.Done():
		if err == nil {
			err = fmt.Errorf("serve: graceful shutdown (gRPC): %w", sctx.Err())
		}
		g.Stop()
		<-grpcDone
	}
	return err
}
