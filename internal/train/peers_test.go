package train

import (
	"errors"
	"slices"
	"testing"
)

// The message is TensorFlow's, as a CI run got it when worker task 1 was killed while the
// chief's probe still found its port answering.
func TestUnavailablePeers(t *testing.T) {
	killed := errors.New(`tfops: run train step (run 1 of 1):
UNAVAILABLE: From /job:worker/replica:0/task:1:
recvmsg:Connection reset by peer
Additional GRPC error information from remote target /job:worker/replica:0/task:1 while calling /tensorflow.WorkerService/RunGraph:
:UNKNOWN:Error received from peer  {grpc_message:"recvmsg:Connection reset by peer", grpc_status:14}
UNAVAILABLE: From /job:worker/replica:0/task:0:
recvmsg:Connection reset by peer
Additional GRPC error information from remote target /job:worker/replica:0/task:1 while calling /tensorflow.WorkerService/RecvTensor:
	 [[{{node tfflowers/replica_1/tfflowers/loss/mean/Mean_S549}}]]`)
	for _, tc := range []struct {
		name    string
		err     error
		workers int
		want    []int
	}{
		{"killed task 1", killed, 2, []int{1}},
		{"task outside the cluster", killed, 1, nil},
		{"not UNAVAILABLE", errors.New("INVALID_ARGUMENT: remote target /job:worker/replica:0/task:1"), 2, nil},
		{"no peer named", errors.New("UNAVAILABLE: connection refused"), 2, nil},
	} {
		if got := unavailablePeers(tc.err, tc.workers); !slices.Equal(got, tc.want) {
			t.Errorf("%s: unavailablePeers = %v, want %v", tc.name, got, tc.want)
		}
	}
}
