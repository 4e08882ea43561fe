package serve

import "net/http"

// status answers GET /v1/models/{name}[/versions/{N}] with every loaded
// version (or the one asked for).
func (s *Server) status(w http.ResponseWriter, name string, spec versionSpec) error {
	if name != s.cfg.Name {
		return errorf(http.StatusNotFound, "Could not find any versions of model %s", name)
	}
	states := s.reg.states()
	if spec.specific {
		var one []versionState
		for _, st := range states {
			if st.num == spec.num {
				one = append(one, st)
			}
		}
		if one == nil {
			return errorf(http.StatusNotFound, "Could not find version %d of model %s", spec.num, name)
		}
		states = one
	}
	writeJSON(w, http.StatusOK, statusResponse(states))
	return nil
}

// metadata answers GET /v1/models/{name}[/versions/{N}]/metadata.
func (s *Server) metadata(w http.ResponseWriter, name string, spec versionSpec) error {
	if name != s.cfg.Name {
		return notFound(name, spec)
	}
	v, err := s.reg.acquire(name, spec)
	if err != nil {
		return err
	}
	defer s.reg.release(v)
	writeJSON(w, http.StatusOK, metadataFor(name, v))
	return nil
}
