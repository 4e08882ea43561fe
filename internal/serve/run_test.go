package serve

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// runOnListener starts s.serve on a free port; stop cancels it and returns
// serve's error.
func runOnListener(t *testing.T, s *Server) (url string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, ln, nil) }()
	var once sync.Once
	var serr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case serr = <-errc:
			case <-time.After(10 * time.Second):
				serr = fmt.Errorf("serve did not return")
			}
		})
		return serr
	}
	t.Cleanup(func() { _ = stop() })
	return "http://" + ln.Addr().String(), stop
}

func TestSlowClientsAreCutOff(t *testing.T) {
	cfg := testConfig(t)
	cfg.readHeaderTimeout = 300 * time.Millisecond
	cfg.readTimeout = 600 * time.Millisecond
	cfg.writeTimeout = 2 * time.Second
	cfg.idleTimeout = time.Second
	s, err := New(cfg, newFakeLoader(nil).load)
	if err != nil {
		t.Fatal(err)
	}
	url, stop := runOnListener(t, s)
	addr := strings.TrimPrefix(url, "http://")

	// trickle opens a connection, sends head, then one byte of drip every
	// 50ms until the server hangs up; it reports how long that took.
	trickle := func(head, drip string) <-chan time.Duration {
		out := make(chan time.Duration, 1)
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		go func() {
			defer conn.Close()
			if _, err := io.WriteString(conn, head); err != nil {
				out <- 0
				return
			}
			go func() {
				for i := 0; ; i++ {
					time.Sleep(50 * time.Millisecond)
					if _, err := io.WriteString(conn, drip[i%len(drip):i%len(drip)+1]); err != nil {
						return
					}
				}
			}()
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, bufio.NewReader(conn)) // until the server closes
			out <- time.Since(start)
		}()
		return out
	}
	slowHeaders := trickle("POST /v1/models/flowers:predict HTTP/1.1\r\nHost: x\r\n", "X-Slow: yes\r\n")
	slowBody := trickle("POST /v1/models/flowers:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n", instances(1))

	// Meanwhile everyone else is served promptly.
	for range 10 {
		start := time.Now()
		code, body := do(t, http.MethodPost, url+"/v1/models/flowers:predict", instances(1))
		if code != http.StatusOK {
			t.Fatalf("normal client: %d %s", code, body)
		}
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("normal client took %v while slow clients trickled", d)
		}
	}
	for what, ch := range map[string]<-chan time.Duration{"headers": slowHeaders, "body": slowBody} {
		d := <-ch
		if d == 0 || d > 2*time.Second {
			t.Errorf("slow %s client held its connection %v; want it cut off by the server's timeouts", what, d)
		}
		t.Logf("slow %s client cut off after %v", what, d)
	}
	if err := stop(); err != nil {
		t.Errorf("serve: %v", err)
	}
}

func TestRunDrainsInFlightRequests(t *testing.T) {
	cfg := testConfig(t)
	block := make(chan struct{})
	l := newFakeLoader(func(v int64) (*fakeModel, error) {
		m := newFake(v)
		m.block, m.entered = block, make(chan struct{}, 1)
		return m, nil
	})
	s, err := New(cfg, l.load)
	if err != nil {
		t.Fatal(err)
	}
	url, stop := runOnListener(t, s)
	m := l.model(t, 1)

	answered := make(chan int, 1)
	go func() {
		resp, err := http.Post(url+"/v1/models/flowers:predict", "application/json", strings.NewReader(instances(1)))
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	<-m.entered
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// Shutdown closes the listener first and then drains: once a new connection is
	// refused, Run is draining, and must not return before the request does.
	eventually(t, 5*time.Second, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-stopped:
		t.Fatalf("Run returned before the in-flight request finished: %v", err)
	default:
	}
	if m.closed.Load() {
		t.Fatal("model closed under an in-flight request")
	}
	close(block)
	if code := <-answered; code != http.StatusOK {
		t.Errorf("in-flight request: status %d, want 200", code)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Run: %v", err)
	}
	if !m.closed.Load() {
		t.Error("Run returned without closing the model")
	}
}

func TestRunListenError(t *testing.T) {
	l := newFakeLoader(nil)
	s, err := New(testConfig(t), l.load)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background(), "127.0.0.1:-1", ""); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("Run on a bad address: %v", err)
	}
	if !l.model(t, 1).closed.Load() {
		t.Error("Run did not close the server")
	}
}
