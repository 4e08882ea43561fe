package serve

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/wrapperspb"

	tfs "github.com/tfflowers/tfflowers/internal/tfservingpb"
)

// metadataJSON is TF Serving's REST metadata answer (ToJsonString of a
// GetModelMetadataResponse): the model spec and the SignatureDefs as stored in
// the loaded export, printed by protobuf's JSON mapping with proto field names
// and every field, int64s as strings.
func metadataJSON(name string, v *version) (json.RawMessage, error) {
	opts := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}
	spec, err := opts.Marshal(&tfs.ModelSpec{Name: name, VersionChoice: &tfs.ModelSpec_Version{Version: wrapperspb.Int64(v.num)}})
	if err != nil {
		return nil, fmt.Errorf("encode model spec: %w", err)
	}
	defs, err := opts.Marshal(&tfs.SignatureDefMap{SignatureDef: v.signatures})
	if err != nil {
		return nil, fmt.Errorf("encode signature defs: %w", err)
	}
	// TF >= 2.11's SignatureDef has a "defaults" map, which TF Serving always
	// prints ({} for tfflowers' signatures); the SignatureDef message linked
	// here predates it.
	var m struct {
		SignatureDef map[string]map[string]json.RawMessage `json:"signature_def"`
	}
	if err := json.Unmarshal(defs, &m); err != nil {
		return nil, fmt.Errorf("re-read signature defs: %w", err)
	}
	for _, sd := range m.SignatureDef {
		if _, ok := sd["defaults"]; !ok {
			sd["defaults"] = json.RawMessage(`{}`)
		}
	}
	return json.Marshal(map[string]any{
		"model_spec": json.RawMessage(spec),
		"metadata":   map[string]any{"signature_def": m},
	})
}
