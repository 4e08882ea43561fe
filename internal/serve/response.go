package serve

// rowPrediction is one instance's outputs in the row ("instances") format.
// TF Serving names every output when a signature has several, in one object
// per instance.
type rowPrediction struct {
	Scores   tfFloats `json:"scores"`
	Classes  string   `json:"classes"`
	ClassIDs int64    `json:"class_ids"`
}

type rowResponse struct {
	Predictions []rowPrediction `json:"predictions"`
}

// columnarOutputs is the columnar ("inputs") answer: one list per output.
type columnarOutputs struct {
	Scores   []tfFloats `json:"scores"`
	Classes  []string   `json:"classes"`
	ClassIDs []int64    `json:"class_ids"`
}

type columnarResponse struct {
	Outputs columnarOutputs `json:"outputs"`
}

// predictResponse shapes results as the request's format asks.
func predictResponse(columnar bool, results []result) any {
	if columnar {
		out := columnarOutputs{
			Scores:   make([]tfFloats, len(results)),
			Classes:  make([]string, len(results)),
			ClassIDs: make([]int64, len(results)),
		}
		for i, r := range results {
			out.Scores[i], out.Classes[i], out.ClassIDs[i] = r.scores, r.class, r.classID
		}
		return columnarResponse{Outputs: out}
	}
	out := make([]rowPrediction, len(results))
	for i, r := range results {
		out[i] = rowPrediction{Scores: r.scores, Classes: r.class, ClassIDs: r.classID}
	}
	return rowResponse{Predictions: out}
}
