package serve

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	"google.golang.org/grpc/codes"

	"github.com/tfflowers/tfflowers/internal/reliability/fixtures"
	tfs "github.com/tfflowers/tfflowers/internal/tfservingpb"
)

// TestDecompressionBombRefusedBeforeQueueing: a 20000x20000 PNG is refused
// with 400 / INVALID_ARGUMENT from its header, before it reaches a batch (the
// model is never called), while another client's images are answered from
// one batched run.
func TestDecompressionBombRefusedBeforeQueueing(t *testing.T) {
	cfg := testConfig(t)
	cfg.Inspect = InspectImage
	cfg.BatchTimeout = 200 * time.Millisecond
	fake := newFake(1)
	s, err := New(cfg, newFakeLoader(func(int64) (*fakeModel, error) { return fake, nil }).load)
	if err != nil {
		t.Fatal(err)
	}
	url, conn, _ := grpcServer(t, s)
	bomb := fixtures.HugePNG(20000, 20000)
	t.Logf("bomb: %d bytes for 20000x20000 pixels", len(bomb))
	good := fixtures.PNG(fixtures.Quadrants(4, 4))

	// One client sends two good images while another sends a good one and the bomb.
	goodDone := make(chan string, 1)
	go func() {
		code, body := do(t, "POST", url+"/v1/models/flowers:predict", fmt.Sprintf(`{"instances": [{"b64": %q}, {"b64": %q}]}`, b64(string(good)), b64(string(good))))
		goodDone <- fmt.Sprint(code, " ", body)
	}()
	start := time.Now()
	code, body := do(t, "POST", url+"/v1/models/flowers:predict", fmt.Sprintf(`{"instances": [{"b64": %q}, {"b64": %q}]}`, b64(string(good)), b64(string(bomb))))
	took := time.Since(start)
	if code != http.StatusBadRequest || !strings.Contains(body, "instance 1: image too large: PNG 20000x20000") {
		t.Errorf("bomb over REST: %d %s", code, body)
	}
	t.Logf("bomb refused over REST in %v (the request carries %d KB of base64)", took, len(bomb)*4/3>>10)
	if got := <-goodDone; !strings.HasPrefix(got, "200 ") {
		t.Errorf("the other client: %s", got)
	}
	if fake.calls.Load() != 1 || fake.maxBatch() != 2 {
		t.Errorf("model calls %d, largest batch %d: want the other client's 2 images in one run, nothing of the bomb's request", fake.calls.Load(), fake.maxBatch())
	}

	_, err = tfs.NewPredictionServiceClient(conn).Predict(context.Background(), &tfs.PredictRequest{ModelSpec: spec("flowers", 0, ""),
		Inputs: map[string]*tensorpb.TensorProto{"image_bytes": stringTensor(string(bomb))}})
	wantCode(t, "bomb over gRPC", err, codes.InvalidArgument, "instance 0: image too large: PNG 20000x20000")
	if fake.calls.Load() != 1 {
		t.Errorf("the model ran for the gRPC bomb")
	}
}

func TestInspectImage(t *testing.T) {
	jpegHeader := func(w, h int) []byte {
		// SOI, SOF0 with the size, SOS, EOI: what the header reader reads.
		sof := []byte{0xFF, 0xC0, 0, 17, 8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1}
		sos := []byte{0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0x3F, 0}
		return append(append(append([]byte{0xFF, 0xD8}, sof...), sos...), 0xFF, 0xD9)
	}
	cases := []struct {
		name string
		data []byte
		msg  string // "" = accepted
	}{
		{"small PNG", fixtures.HugePNG(64, 64), ""},
		{"16 MP PNG", fixtures.HugePNG(4096, 4096), ""},
		{"PNG bomb", fixtures.HugePNG(8000, 8000), "image too large: PNG 8000x8000"},
		{"24 MP camera JPEG", jpegHeader(6000, 4000), ""},
		{"400 MP JPEG (decoded at 1/8)", jpegHeader(20000, 20000), ""},
		{"JPEG too large even at 1/8", jpegHeader(40000, 40000), "image too large: JPEG 40000x40000"},
		{"text", []byte("hello, not an image"), "not a JPEG, PNG, GIF or BMP"},
		{"WebP", []byte("RIFF\x10\x00\x00\x00WEBPVP8 "), "WebP is not supported"},
		{"truncated PNG header", []byte("\x89PNG\r\n\x1a\n\x00\x00"), ""}, // left to the decoder
	}
	for _, c := range cases {
		err := InspectImage(c.data)
		if (c.msg == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.msg)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.msg)
		}
	}
}
