package main

// Run-time control of the behaviour rules, on the simulator's own HTTP server:
//
//	GET  /_nestlab/config   the current rules as JSON
//	PUT  /_nestlab/config   replace the kinds of rule present in the JSON body
//	POST /_nestlab/reset    back to the rules given on the command line

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
)

const (
	configPath = "/_nestlab/config"
	resetPath  = "/_nestlab/reset"
)

func writeJSON(w http.ResponseWriter, status int, value interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(value)
}

func (l *launcher) serveConfig(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, l.rules.get().document())
	case http.MethodPut, http.MethodPost:
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		rules, err := l.rules.update(body)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		log.Printf("nestlab: rules set to %s", body)
		writeJSON(w, http.StatusOK, rules.document())
	default:
		w.Header().Set("Allow", "GET, PUT")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use GET or PUT"})
	}
}

func (l *launcher) serveReset(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use POST"})
		return
	}
	rules := l.rules.reset()
	log.Printf("nestlab: rules reset to the command-line flags")
	writeJSON(w, http.StatusOK, rules.document())
}
