package serve

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	"google.golang.org/grpc/codes"

	tfs "github.com/tfflowers/tfflowers/internal/tfservingpb"
)

func TestParseModelConfig(t *testing.T) {
	models, err := ParseModelConfig([]byte(`
# as tensorflow_model_server --model_config_file reads it
model_config_list {
  config {
    name: "flowers"
    base_path: "/models/flowers"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
  config { name: "tulips" base_path: "/models/tulips" model_version_policy { latest { num_versions: 2 } } }
  config { name: "roses" base_path: "/models/roses" model_version_policy { all {} } }
  config { name: "daisy" base_path: "/models/daisy" }
}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"flowers /models/flowers specific [1 2] map[canary:2 stable:1]",
		"tulips /models/tulips latest 2 map[]",
		"roses /models/roses all map[]",
		"daisy /models/daisy latest 1 map[]",
	}
	for i, m := range models {
		if got := fmt.Sprintf("%s %s %v %v", m.Name, m.BaseDir, m.Policy, m.Labels); i >= len(want) || got != want[i] {
			t.Errorf("model %d: %s", i, got)
		}
	}
	bad := map[string]string{
		`model_config_list { config { name: "a" } }`:                                                      "base_path is empty",
		`model_config_list { config { base_path: "/x" } }`:                                                "name is empty",
		`model_config_list { config { name: "a" base_path: "/x" } config { name: "a" base_path: "/y" } }`: "used twice",
		`model_config_list { config { name: "a" base_path: "/x" model_platform: "onnx" } }`:               `model_platform "onnx"`,
		`model_config_list { config { name: "a" base_path: "/x" model_version_policy { specific {} } } }`: "lists no versions",
		`model_config_list {}`: "no config entries",
		`model_config_list { config { name: "a" base_path: "/x" nme: 1 } }`: "not a text-format",
	}
	for text, msg := range bad {
		if _, err := ParseModelConfig([]byte(text)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: error %v, want %q", text, err, msg)
		}
	}
}

// TestModelConfigServing: two models from one config file, one pinned to
// versions 1 and 2 with labels, the other on the newest; labels resolve over
// REST and gRPC, and status lists what each policy loaded.
func TestModelConfigServing(t *testing.T) {
	root := t.TempDir()
	for _, v := range []int64{1, 2, 3} {
		writeVersion(t, filepath.Join(root, "flowers"), v)
	}
	for _, v := range []int64{4, 5} {
		writeVersion(t, filepath.Join(root, "tulips"), v)
	}
	cfgFile := filepath.Join(root, "models.config")
	text := fmt.Sprintf(`model_config_list {
  config { name: "flowers" base_path: %q model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 } }
  config { name: "tulips" base_path: %q }
}`, filepath.Join(root, "flowers"), filepath.Join(root, "tulips"))
	if err := os.WriteFile(cfgFile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	models, err := ReadModelConfigFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	l := newFakeLoader(nil)
	s, err := New(Config{Models: models, PollInterval: 3600e9, Logger: quietLogger(), Inspect: func([]byte) error { return nil }}, l.load)
	if err != nil {
		t.Fatal(err)
	}
	url, conn, _ := grpcServer(t, s)

	for path, want := range map[string]string{
		"/v1/models/flowers": `{"model_version_status": [{"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}, {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}`,
		"/v1/models/tulips":  `{"model_version_status": [{"version": "5", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}`,
		// As TF Serving's GetModelStatus: a label does not narrow the status.
		"/v1/models/flowers/labels/stable": `{"model_version_status": [{"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}, {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}`,
	} {
		code, body := do(t, http.MethodGet, url+path, "")
		wantJSON(t, path, code, body, http.StatusOK, want)
	}
	if l.loadCount(3) != 0 {
		t.Errorf("version 3 of flowers was loaded; the policy pins 1 and 2")
	}
	body := fmt.Sprintf(`{"instances": [{"b64": %q}]}`, b64("\x01"))
	// REST predictions do not name the version; gRPC below checks which one answered.
	for _, path := range []string{"/v1/models/flowers/labels/stable:predict", "/v1/models/flowers/labels/canary:predict", "/v1/models/flowers:predict", "/v1/models/tulips:predict"} {
		if code, resp := do(t, http.MethodPost, url+path, body); code != 200 {
			t.Errorf("%s: %d %s", path, code, resp)
		}
	}
	code, resp := do(t, http.MethodPost, url+"/v1/models/tulips/labels/stable:predict", body)
	wantJSON(t, "label of a model without labels", code, resp, http.StatusBadRequest, `{"error": "Unrecognized servable version label: stable"}`)
	code, resp = do(t, http.MethodGet, url+"/v1/models/flowers/labels/stable/metadata", "")
	if code != 200 || !strings.Contains(resp, `"version":"1"`) {
		t.Errorf("metadata by label: %d %s", code, resp)
	}

	client := tfs.NewPredictionServiceClient(conn)
	for label, want := range map[string]int64{"stable": 1, "canary": 2} {
		r, err := client.Predict(context.Background(), &tfs.PredictRequest{ModelSpec: spec("flowers", 0, label),
			Inputs: map[string]*tensorpb.TensorProto{"image_bytes": stringTensor("\x01")}})
		if err != nil || r.GetModelSpec().GetVersion().GetValue() != want {
			t.Errorf("label %s: %v %v, want version %d", label, r.GetModelSpec(), err, want)
		}
	}
	_, err = client.Predict(context.Background(), &tfs.PredictRequest{ModelSpec: spec("flowers", 3, ""),
		Inputs: map[string]*tensorpb.TensorProto{"image_bytes": stringTensor("\x01")}})
	wantCode(t, "version outside the policy", err, codes.NotFound, "Specific(flowers, 3)")

	// latest 1: a new version replaces the served one.
	writeVersion(t, filepath.Join(root, "tulips"), 6)
	s.poll(s.models["tulips"])
	if got := s.models["tulips"].reg.available(); !slices.Equal(got, []int64{6}) {
		t.Errorf("tulips (latest 1) after version 6: %v", got)
	}
}

func TestAllVersionsPolicy(t *testing.T) {
	base := t.TempDir()
	for _, v := range []int64{1, 2} {
		writeVersion(t, base, v)
	}
	s, err := New(Config{Models: []ModelConfig{{Name: "flowers", BaseDir: base, Policy: VersionPolicy{All: true}}}, PollInterval: 3600e9, Logger: quietLogger(), Inspect: func([]byte) error { return nil }}, newFakeLoader(nil).load)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	writeVersion(t, base, 3)
	s.poll(s.models["flowers"])
	if got := s.models["flowers"].reg.available(); !slices.Equal(got, []int64{3, 2, 1}) {
		t.Errorf("all: %v, want [3 2 1]", got)
	}
}
