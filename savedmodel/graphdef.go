package savedmodel

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	gpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/graph_go_proto"
	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfflowers/tfflowers/internal/contract"
	"github.com/tfflowers/tfflowers/tfops"
)

func mgGraph(mg *pb.MetaGraphDef) *gpb.GraphDef {
	if mg.GraphDef == nil {
		mg.GraphDef = &gpb.GraphDef{}
	}
	return mg.GraphDef
}

// graphDef returns the base's forward graph: its MetaGraph's GraphDef pruned to what the
// feature tensor and the given layer tensors need (no Saver, no initializers).
func (b *Base) graphDef(tensors ...string) ([]byte, error) {
	raw, err := os.ReadFile(filepath.Join(b.Dir, contract.SavedModelFile))
	if err != nil {
		return nil, fmt.Errorf("savedmodel: base %q: %w", b.Dir, err)
	}
	var sm pb.SavedModel
	if err := proto.Unmarshal(raw, &sm); err != nil {
		return nil, fmt.Errorf("savedmodel: base %q: %w: saved_model.pb: %v", b.Dir, ErrNotSavedModel, err)
	}
	for _, mg := range sm.MetaGraphs {
		for _, tag := range mg.GetMetaInfoDef().GetTags() {
			if tag != contract.ServeTag {
				continue
			}
			gd, err := proto.Marshal(mg.GraphDef)
			if err != nil {
				return nil, err
			}
			keep := []string{strings.SplitN(b.Meta.FeatureTensor, ":", 2)[0]}
			for _, t := range tensors {
				keep = append(keep, strings.SplitN(t, ":", 2)[0])
			}
			return tfops.PruneGraphDef(gd, keep...)
		}
	}
	return nil, fmt.Errorf("savedmodel: base %q: %w: no MetaGraph tagged %q", b.Dir, ErrNotBase, contract.ServeTag)
}

// signatureDefs reads the SignatureDefs of dir's MetaGraph tagged "serve" as stored, so
// that servers can describe the model exactly as TF Serving does.
func signatureDefs(dir string) (map[string]*pb.SignatureDef, error) {
	raw, err := os.ReadFile(filepath.Join(dir, contract.SavedModelFile))
	if err != nil {
		return nil, fmt.Errorf("savedmodel: %w", err)
	}
	var sm pb.SavedModel
	if err := proto.Unmarshal(raw, &sm); err != nil {
		return nil, fmt.Errorf("savedmodel: %q: %w: saved_model.pb: %v", dir, ErrNotSavedModel, err)
	}
	for _, mg := range sm.MetaGraphs {
		for _, tag := range mg.GetMetaInfoDef().GetTags() {
			if tag == contract.ServeTag {
				return mg.GetSignatureDef(), nil
			}
		}
	}
	return nil, fmt.Errorf("savedmodel: %q: %w: no MetaGraph tagged %q", dir, ErrNotSavedModel, contract.ServeTag)
}
