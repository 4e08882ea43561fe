package serve

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/prototext"

	tfs "github.com/tfflowers/tfflowers/internal/tfservingpb"
)

// ModelConfig is one served model: TF Serving's ModelConfig, as a
// model_config_list entry of --model_config_file holds it.
type ModelConfig struct {
	Name    string // model name in URLs and ModelSpecs
	BaseDir string // holds <version>/ folders
	Policy  VersionPolicy
	// Labels map version labels (/labels/LABEL, ModelSpec.version_label)
	// to version numbers.
	Labels map[string]int64
}

// VersionPolicy is TF Serving's ServableVersionPolicy: which of the versions
// on disk are loaded. The zero value is TF Serving's default, the newest one.
type VersionPolicy struct {
	Latest   int     // serve the newest Latest versions (0: 1)
	Specific []int64 // serve exactly these versions, when present
	All      bool    // serve every version
}

func (p VersionPolicy) String() string {
	switch {
	case p.All:
		return "all"
	case len(p.Specific) > 0:
		return fmt.Sprintf("specific %v", p.Specific)
	}
	return fmt.Sprintf("latest %d", max(p.Latest, 1))
}

// keep is how many of the newest available versions the registry keeps;
// specific and all retire nothing by age.
func (p VersionPolicy) keep() int {
	if p.All || len(p.Specific) > 0 {
		return math.MaxInt
	}
	return max(p.Latest, 1)
}

// wants says whether the policy ever serves version v (latest N decides by
// age, in poll).
func (p VersionPolicy) wants(v int64) bool {
	if len(p.Specific) > 0 {
		return slices.Contains(p.Specific, v)
	}
	return true
}

// ReadModelConfigFile reads TF Serving's --model_config_file: a text-format
// ModelServerConfig with a model_config_list, e.g.
//
//	model_config_list {
//	  config {
//	    name: "flowers"
//	    base_path: "/models/flowers"
//	    model_platform: "tensorflow"
//	    model_version_policy { specific { versions: 1 versions: 2 } }
//	    version_labels { key: "stable" value: 1 }
//	    version_labels { key: "canary" value: 2 }
//	  }
//	}
func ReadModelConfigFile(path string) ([]ModelConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("serve: model config: %w", err)
	}
	models, err := ParseModelConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("serve: model config %s: %w", path, err)
	}
	return models, nil
}

// ParseModelConfig parses the text of a --model_config_file.
func ParseModelConfig(text []byte) ([]ModelConfig, error) {
	var msc tfs.ModelServerConfig
	if err := prototext.Unmarshal(text, &msc); err != nil {
		return nil, fmt.Errorf("not a text-format tensorflow.serving.ModelServerConfig: %w", err)
	}
	if msc.GetCustomModelConfig() != nil {
		return nil, errors.New("custom_model_config is not supported: use model_config_list")
	}
	list := msc.GetModelConfigList().GetConfig()
	if len(list) == 0 {
		return nil, errors.New("model_config_list has no config entries")
	}
	seen := map[string]bool{}
	var out []ModelConfig
	for i, c := range list {
		where := fmt.Sprintf("config %d (%q)", i+1, c.GetName())
		switch {
		case c.GetName() == "":
			return nil, fmt.Errorf("config %d: name is empty", i+1)
		case strings.ContainsAny(c.GetName(), "/:"):
			return nil, fmt.Errorf("%s: a model name must not contain '/' or ':'", where)
		case seen[c.GetName()]:
			return nil, fmt.Errorf("%s: the name is used twice", where)
		case c.GetBasePath() == "":
			return nil, fmt.Errorf("%s: base_path is empty", where)
		case c.GetModelPlatform() != "" && c.GetModelPlatform() != "tensorflow":
			return nil, fmt.Errorf("%s: model_platform %q: only \"tensorflow\" is served", where, c.GetModelPlatform())
		case c.GetModelType() != tfs.ModelType_MODEL_TYPE_UNSPECIFIED && c.GetModelType() != tfs.ModelType_TENSORFLOW:
			return nil, fmt.Errorf("%s: model_type %v: only TENSORFLOW is served", where, c.GetModelType())
		}
		seen[c.GetName()] = true
		mc := ModelConfig{Name: c.GetName(), BaseDir: c.GetBasePath()}
		switch p := c.GetModelVersionPolicy().GetPolicyChoice().(type) {
		case *tfs.FileSystemStoragePathSourceConfig_ServableVersionPolicy_Latest_:
			if n := p.Latest.GetNumVersions(); n > 0 {
				mc.Policy.Latest = int(n)
			}
		case *tfs.FileSystemStoragePathSourceConfig_ServableVersionPolicy_Specific_:
			mc.Policy.Specific = slices.Clone(p.Specific.GetVersions())
			if len(mc.Policy.Specific) == 0 {
				return nil, fmt.Errorf("%s: model_version_policy specific lists no versions", where)
			}
		case *tfs.FileSystemStoragePathSourceConfig_ServableVersionPolicy_All_:
			mc.Policy.All = true
		}
		for label, v := range c.GetVersionLabels() {
			if mc.Labels == nil {
				mc.Labels = map[string]int64{}
			}
			if label == "" || strings.ContainsAny(label, "/:") {
				return nil, fmt.Errorf("%s: version label %q must be non-empty without '/' or ':'", where, label)
			}
			if v < 0 {
				return nil, fmt.Errorf("%s: version label %q points at version %d", where, label, v)
			}
			mc.Labels[label] = v
		}
		out = append(out, mc)
	}
	return out, nil
}
