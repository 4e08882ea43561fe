package serve

import "net/http"

// status answers GET /v1/models/{name}[/versions/{N}] with every loaded
// version (or the one asked for).
func (s *Server) status(w http.ResponseWriter, name string, spec versionSpec) error {
	states, err := s.versionStates(name, spec)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, statusResponse(states))
	return nil
}

// versionStates lists the versions of model name that spec asks for, with
// TF Serving's GetModelStatus errors.
func (s *Server) versionStates(name string, spec versionSpec) ([]versionState, error) {
	m := s.models[name]
	if m == nil {
		return nil, errorf(http.StatusNotFound, "Could not find any versions of model %s", name)
	}
	states := m.reg.states()
	if spec.specific {
		var one []versionState
		for _, st := range states {
			if st.num == spec.num {
				one = append(one, st)
			}
		}
		if one == nil {
			return nil, errorf(http.StatusNotFound, "Could not find version %d of model %s", spec.num, name)
		}
		states = one
	}
	return states, nil
}

// metadata answers GET /v1/models/{name}[/versions/{N}]/metadata.
func (s *Server) metadata(w http.ResponseWriter, name string, spec versionSpec) error {
	v, err := s.acquire(name, spec)
	if err != nil {
		return err
	}
	defer s.release(v)
	md, err := metadataJSON(name, v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, md)
	return nil
}
