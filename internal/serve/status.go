package serve

import "strconv"

// The types below mirror TF Serving's GetModelStatusResponse as its REST
// API prints it: int64 fields as strings, enums by name.

type modelStatusResponse struct {
	ModelVersionStatus []modelVersionStatus `json:"model_version_status"`
}

type modelVersionStatus struct {
	Version string       `json:"version"`
	State   string       `json:"state"`
	Status  statusDetail `json:"status"`
}

type statusDetail struct {
	ErrorCode    string `json:"error_code"`
	ErrorMessage string `json:"error_message"`
}

func statusResponse(states []versionState) modelStatusResponse {
	out := modelStatusResponse{ModelVersionStatus: make([]modelVersionStatus, len(states))}
	for i, st := range states {
		out.ModelVersionStatus[i] = modelVersionStatus{
			Version: strconv.FormatInt(st.num, 10),
			State:   st.state,
			Status:  statusDetail{ErrorCode: "OK"},
		}
	}
	return out
}
