package tfops

import (
	"errors"
	"fmt"
	"sync"

	tf "github.com/galeone/tensorflow/tensorflow/go"
)

// Session runs one graph. It is the one place in tfflowers that runs a tf.Session.
type Session struct {
	mu     sync.RWMutex // Run holds it shared; Close takes it exclusively so it waits for runs in flight
	sess   *tf.Session
	graph  *tf.Graph
	closed bool
}

// NewSession starts a session on g with cfg.
func NewSession(g *tf.Graph, cfg SessionConfig) (*Session, error) {
	opts, err := cfg.Options()
	if err != nil {
		return nil, err
	}
	s, err := tf.NewSession(g, opts)
	if err != nil {
		return nil, fmt.Errorf("tfops: start session: %w", err)
	}
	return &Session{sess: s, graph: g}, nil
}

// WrapSession takes ownership of a session created elsewhere (the SavedModel loader).
func WrapSession(s *tf.Session, g *tf.Graph) *Session { return &Session{sess: s, graph: g} }

// Graph returns the graph the session runs; ops added to it later are picked up by the next Run.
func (s *Session) Graph() *tf.Graph { return s.graph }

// ErrClosed is returned by Run on a closed session.
var ErrClosed = errors.New("tfops: session is closed")

// Run runs the graph. what names the computation in errors ("train step", "decode image").
func (s *Session) Run(what string, feeds map[tf.Output]*tf.Tensor, fetches []tf.Output, targets []*tf.Operation) ([]*tf.Tensor, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	out, err := s.sess.Run(feeds, fetches, targets)
	chargeTensors(feeds, out)
	if err != nil {
		return nil, fmt.Errorf("tfops: run %s: %w", what, err)
	}
	return out, nil
}

// Devices lists the devices this session can use.
func (s *Session) Devices() ([]Device, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	return convertDevices(s.sess.ListDevices())
}

// Close releases the session; it waits for runs in flight and is idempotent.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.sess.Close(); err != nil {
		return fmt.Errorf("tfops: close session: %w", err)
	}
	return nil
}
