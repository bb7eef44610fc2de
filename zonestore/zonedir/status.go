package zonedir

import (
	"slices"
	"strings"
	"time"
)

// FileStatus is one zone file's state, for /status.
type FileStatus struct {
	Zone      string    `json:"zone"`
	View      string    `json:"view"`
	File      string    `json:"file"`
	Loaded    bool      `json:"loaded"`
	Serial    uint32    `json:"serial"`
	Records   int       `json:"records"`
	LoadedAt  time.Time `json:"loaded_at"`
	LastTry   time.Time `json:"last_try"`
	LastError string    `json:"last_error,omitempty"`
}

// Status returns every zone file the loader knows, by zone name.
func (l *Loader) Status() []FileStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]FileStatus, 0, len(l.files))
	for path, f := range l.files {
		st := FileStatus{Zone: f.origin, View: l.view, File: path, LoadedAt: f.loadedAt, LastTry: f.triedAt, LastError: f.failedErr}
		if f.zone != nil {
			st.Loaded, st.Serial, st.Records = true, f.zone.Serial(), f.zone.Records()
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b FileStatus) int { return strings.Compare(a.Zone, b.Zone) })
	return out
}
