package serve

import (
	"net/http"
	"testing"
)

func TestStatus(t *testing.T) {
	_, ts := startServer(t, testConfig(t), newFakeLoader(nil))
	want := `{"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}`
	code, body := do(t, http.MethodGet, ts.URL+"/v1/models/flowers", "")
	wantJSON(t, "status", code, body, http.StatusOK, want)
	code, body = do(t, http.MethodGet, ts.URL+"/v1/models/flowers/versions/1", "")
	wantJSON(t, "status of version 1", code, body, http.StatusOK, want)

	code, body = do(t, http.MethodGet, ts.URL+"/v1/models/flowers/versions/2", "")
	wantJSON(t, "status of version 2", code, body, http.StatusNotFound, `{"error": "Could not find version 2 of model flowers"}`)
	code, body = do(t, http.MethodGet, ts.URL+"/v1/models/tulips", "")
	wantJSON(t, "status of unknown model", code, body, http.StatusNotFound, `{"error": "Could not find any versions of model tulips"}`)
}

// TestMetadata: the SignatureDefs as the export stores them (tensor names
// included), printed as TF Serving prints them, "defaults": {} too.
func TestMetadata(t *testing.T) {
	_, ts := startServer(t, testConfig(t), newFakeLoader(nil))
	outputs := `{
		"scores": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1", "name": ""}, {"size": "3", "name": ""}], "unknown_rank": false}, "name": "head/Softmax:0"},
		"classes": {"dtype": "DT_STRING", "tensor_shape": {"dim": [{"size": "-1", "name": ""}], "unknown_rank": false}, "name": "head/classes:0"},
		"class_ids": {"dtype": "DT_INT64", "tensor_shape": {"dim": [{"size": "-1", "name": ""}], "unknown_rank": false}, "name": "head/ArgMax:0"}}`
	want := `{
	"model_spec": {"name": "flowers", "signature_name": "", "version": "1"},
	"metadata": {"signature_def": {"signature_def": {
		"serving_default": {
			"inputs": {"image_bytes": {"dtype": "DT_STRING", "tensor_shape": {"dim": [{"size": "-1", "name": ""}], "unknown_rank": false}, "name": "image_bytes/Placeholder:0"}},
			"outputs": ` + outputs + `,
			"method_name": "tensorflow/serving/predict",
			"defaults": {}},
		"predict_images": {
			"inputs": {"images": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1", "name": ""}, {"size": "2", "name": ""}, {"size": "2", "name": ""}, {"size": "3", "name": ""}], "unknown_rank": false}, "name": "images:0"}},
			"outputs": ` + outputs + `,
			"method_name": "tensorflow/serving/predict",
			"defaults": {}}
	}}}}`
	for _, path := range []string{"/v1/models/flowers/metadata", "/v1/models/flowers/versions/1/metadata"} {
		code, body := do(t, http.MethodGet, ts.URL+path, "")
		wantJSON(t, path, code, body, http.StatusOK, want)
	}
	code, body := do(t, http.MethodGet, ts.URL+"/v1/models/flowers/versions/9/metadata", "")
	wantJSON(t, "unknown version", code, body, http.StatusNotFound, `{"error": "Servable not found for request: Specific(flowers, 9)"}`)
	code, body = do(t, http.MethodGet, ts.URL+"/v1/models/roses/metadata", "")
	wantJSON(t, "unknown model", code, body, http.StatusNotFound, `{"error": "Servable not found for request: Latest(roses)"}`)
	code, body = do(t, http.MethodDelete, ts.URL+"/v1/models/flowers/metadata", "")
	wantJSON(t, "DELETE metadata", code, body, http.StatusBadRequest, `{"error": "Malformed request: DELETE /v1/models/flowers/metadata"}`)
}
