package serve

import "strconv"

// The types below mirror TF Serving's GetModelMetadataResponse as its REST
// API prints it (the SignatureDefMap unpacked from its Any, int64 as
// strings), so that tools that read TF Serving's metadata work unchanged.

type metadataResponse struct {
	ModelSpec modelSpec     `json:"model_spec"`
	Metadata  metadataField `json:"metadata"`
}

type modelSpec struct {
	Name          string `json:"name"`
	SignatureName string `json:"signature_name"`
	Version       string `json:"version"`
}

type metadataField struct {
	SignatureDef signatureDefMap `json:"signature_def"`
}

type signatureDefMap struct {
	SignatureDef map[string]signatureDef `json:"signature_def"`
}

type signatureDef struct {
	Inputs     map[string]tensorInfo `json:"inputs"`
	Outputs    map[string]tensorInfo `json:"outputs"`
	MethodName string                `json:"method_name"`
}

type tensorInfo struct {
	Dtype       string      `json:"dtype"`
	TensorShape tensorShape `json:"tensor_shape"`
	Name        string      `json:"name"`
}

type tensorShape struct {
	Dim         []dim `json:"dim"`
	UnknownRank bool  `json:"unknown_rank"`
}

type dim struct {
	Size string `json:"size"`
	Name string `json:"name"`
}

func tensor(dtype, name string, sizes ...int) tensorInfo {
	ds := make([]dim, len(sizes))
	for i, s := range sizes {
		ds[i] = dim{Size: strconv.Itoa(s)}
	}
	return tensorInfo{Dtype: dtype, TensorShape: tensorShape{Dim: ds}, Name: name + ":0"}
}

// metadataFor describes the two signatures tfflowers exports for v.
func metadataFor(name string, v *version) metadataResponse {
	outputs := map[string]tensorInfo{
		"scores":    tensor("DT_FLOAT", "scores", -1, len(v.labels)),
		"classes":   tensor("DT_STRING", "classes", -1),
		"class_ids": tensor("DT_INT64", "class_ids", -1),
	}
	const method = "tensorflow/serving/predict"
	return metadataResponse{
		ModelSpec: modelSpec{Name: name, Version: strconv.FormatInt(v.num, 10)},
		Metadata: metadataField{SignatureDef: signatureDefMap{SignatureDef: map[string]signatureDef{
			sigBytes: {
				Inputs:     map[string]tensorInfo{inputBytes: tensor("DT_STRING", inputBytes, -1)},
				Outputs:    outputs,
				MethodName: method,
			},
			sigPixels: {
				Inputs:     map[string]tensorInfo{inputPixels: tensor("DT_FLOAT", inputPixels, -1, v.imageSize, v.imageSize, 3)},
				Outputs:    outputs,
				MethodName: method,
			},
		}}},
	}
}
