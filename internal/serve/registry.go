package serve

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
)

// versionSpec says which version a request wants: the newest, a number,
// or a label (resolved to a number by Server.acquire).
type versionSpec struct {
	num      int64
	specific bool
	label    string
}

// registry holds the loaded versions. A version is "available" (servable
// to new requests) until a newer one pushes it out of the newest keep;
// it is then retired, and shut down once its last request releases it.
type registry struct {
	keep int
	log  *slog.Logger

	mu     sync.Mutex
	loaded map[int64]*version // available and retired-but-draining
	// gone are available versions whose folders have disappeared: still served, as TF
	// Serving's availability-preserving policy serves them, until the next add.
	gone     map[int64]bool
	closed   bool
	closing  int           // shutdowns in progress
	drained  chan struct{} // closed when closed and nothing is loaded or closing
	isDrain  bool
	closeErr []error
	wg       sync.WaitGroup
}

func newRegistry(keep int, log *slog.Logger) *registry {
	return &registry{keep: keep, log: log, loaded: map[int64]*version{}, gone: map[int64]bool{}, drained: make(chan struct{})}
}

// notFound is TF Serving's message for a servable it does not have.
func notFound(name string, spec versionSpec) error {
	if spec.specific {
		return errorf(http.StatusNotFound, "Servable not found for request: Specific(%s, %d)", name, spec.num)
	}
	return errorf(http.StatusNotFound, "Servable not found for request: Latest(%s)", name)
}

// acquire returns the version spec asks for with a reference held; the
// caller must release it.
func (r *registry) acquire(name string, spec versionSpec) (*version, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errClosed
	}
	var v *version
	if spec.specific {
		if lv := r.loaded[spec.num]; lv != nil && !lv.retired {
			v = lv
		}
	} else {
		v = r.latestLocked()
	}
	if v == nil {
		return nil, notFound(name, spec)
	}
	v.refs++
	return v, nil
}

func (r *registry) release(v *version) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v.refs--
	if v.retired && v.refs == 0 {
		r.shutdownLocked(v)
	}
}

func (r *registry) latestLocked() *version {
	var best *version
	for _, v := range r.loaded {
		if !v.retired && (best == nil || v.num > best.num) {
			best = v
		}
	}
	return best
}

// available lists the available version numbers whose folders are still there,
// newest first.
func (r *registry) available() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int64
	for _, v := range r.loaded {
		if !v.retired && !r.gone[v.num] {
			out = append(out, v.num)
		}
	}
	slices.SortFunc(out, cmpDesc)
	return out
}

// loadedNums lists every available version number, removed folders included.
func (r *registry) loadedNums() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int64
	for _, v := range r.loaded {
		if !v.retired {
			out = append(out, v.num)
		}
	}
	return out
}

// has says whether version num is available.
func (r *registry) has(num int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.loaded[num]
	return v != nil && !v.retired
}

// latest is the newest available version number, or -1.
func (r *registry) latest() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v := r.latestLocked(); v != nil {
		return v.num
	}
	return -1
}

// add makes v available and retires the versions beyond the newest keep.
// It returns false (after shutting v down) if the registry is closed.
func (r *registry) add(v *version) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.shutdownLocked(v)
		return false
	}
	if old := r.loaded[v.num]; old != nil {
		// Reloading a number already held: the fresh load wins.
		r.retireLocked(old)
	}
	// A version loaded: the ones whose folders are gone have their replacement.
	for num := range r.gone {
		if old := r.loaded[num]; old != nil && num != v.num {
			r.retireLocked(old)
		}
	}
	clear(r.gone)
	r.loaded[v.num] = v
	var avail []*version
	for _, lv := range r.loaded {
		if !lv.retired {
			avail = append(avail, lv)
		}
	}
	slices.SortFunc(avail, func(a, b *version) int { return cmpDesc(a.num, b.num) })
	for _, old := range avail[min(r.keep, len(avail)):] {
		r.retireLocked(old)
	}
	return true
}

// removed records that the folders of the available versions nums have disappeared
// (and that the rest are back). With now, they are retired at once; otherwise they keep
// serving until add brings a replacement.
func (r *registry) removed(nums []int64, now bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.gone)
	for _, num := range nums {
		v := r.loaded[num]
		switch {
		case v == nil || v.retired:
		case now:
			r.log.Info("model version folder removed: unloading", "version", num)
			r.retireLocked(v)
		default:
			r.gone[num] = true
		}
	}
}

func (r *registry) retireLocked(v *version) {
	if v.retired {
		return
	}
	v.retired = true
	r.log.Info("model version retired", "version", v.num, "in_flight", v.refs)
	if v.refs == 0 {
		r.shutdownLocked(v)
	}
}

// shutdownLocked removes v and shuts it down in the background: stopping
// a batcher waits for a running Predict, which must not stall the request
// (or the poll) that dropped the last reference.
func (r *registry) shutdownLocked(v *version) {
	if r.loaded[v.num] == v {
		delete(r.loaded, v.num)
	}
	r.closing++
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		err := v.shutdown()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.closing--
		if err != nil {
			r.log.Error("model version close failed", "version", v.num, "err", err)
			r.closeErr = append(r.closeErr, err)
		} else {
			r.log.Info("model version unloaded", "version", v.num)
		}
		r.checkDrainedLocked()
	}()
}

func (r *registry) checkDrainedLocked() {
	if r.closed && !r.isDrain && len(r.loaded) == 0 && r.closing == 0 {
		r.isDrain = true
		close(r.drained)
	}
}

// versionState is one row of the status endpoint.
type versionState struct {
	num   int64
	state string
}

// states lists the loaded versions, newest first.
func (r *registry) states() []versionState {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]versionState, 0, len(r.loaded))
	for _, v := range r.loaded {
		st := "AVAILABLE"
		if v.retired {
			st = "UNLOADING"
		}
		out = append(out, versionState{num: v.num, state: st})
	}
	slices.SortFunc(out, func(a, b versionState) int { return cmpDesc(a.num, b.num) })
	return out
}

// close refuses new requests, retires every version, and waits until the
// last in-flight request has released its version and every model is closed.
func (r *registry) close() error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		for _, v := range r.loaded {
			r.retireLocked(v)
		}
		r.checkDrainedLocked()
	}
	r.mu.Unlock()
	<-r.drained
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.closeErr...)
}

func cmpDesc(a, b int64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}
