package r53

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// WriteStats count the write path's Route 53 changes by outcome, and how
// long accepted changes took to reach INSYNC.
type WriteStats struct {
	Submitted, Rejected, Failed, InSync atomic.Uint64
	// InSyncSeconds is the summed time from submission to INSYNC, in
	// milliseconds (with InSync, the mean).
	InSyncMillis atomic.Uint64
}

// PendingChange is an accepted change not yet INSYNC.
type PendingChange struct {
	ID        string    `json:"id"`
	ZoneID    string    `json:"zone_id"`
	Zone      string    `json:"zone"`
	Submitted time.Time `json:"submitted"`
	Status    string    `json:"status"`
	Polls     int       `json:"polls"`
}

// WriteStats returns the write path's counters.
func (s *Syncer) WriteStats() *WriteStats { return &s.writeStats }

// PendingChanges lists the accepted changes still PENDING, oldest first.
func (s *Syncer) PendingChanges() []PendingChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.pending)
	slices.SortFunc(out, func(a, b PendingChange) int { return a.Submitted.Compare(b.Submitted) })
	return out
}

func (s *Syncer) track(z *zoneState, id string, submitted time.Time) {
	if id == "" {
		return
	}
	if submitted.IsZero() {
		submitted = time.Now()
	}
	s.mu.Lock()
	s.pending = append(s.pending, PendingChange{ID: id, ZoneID: z.id, Zone: z.name, Submitted: submitted, Status: string(types.ChangeStatusPending)})
	s.mu.Unlock()
}

// TrackChanges polls every pending change with GetChange (through the one
// limiter, like every call) until it is INSYNC, every ChangePoll, until ctx
// ends. Run starts it.
func (s *Syncer) TrackChanges(ctx context.Context) {
	t := time.NewTicker(s.cfg.ChangePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.pollChanges(ctx)
	}
}

// giveUpAfter is how long a change is polled before it is dropped from the
// pending list (with an error line): Route 53 says changes propagate within
// 60 s; one still PENDING after this is a problem for a person.
const giveUpAfter = 30 * time.Minute

// pollChanges asks about one change per zone: the newest. Route 53 applies
// a zone's changes in order, so when the newest is INSYNC every older one
// is too; the API budget spent is one call per zone with pending changes,
// not one per change.
func (s *Syncer) pollChanges(ctx context.Context) {
	now := time.Now()
	newest := map[string]PendingChange{}
	for _, pc := range s.PendingChanges() { // oldest first
		newest[pc.ZoneID] = pc
	}
	for zoneID, pc := range newest {
		if now.Sub(pc.Submitted) < s.cfg.ChangePoll/2 {
			continue
		}
		out, err := s.api.GetChange(ctx, &route53.GetChangeInput{Id: aws.String(pc.ID)})
		s.calls.Add(1)
		if ctx.Err() != nil {
			return
		}
		status := types.ChangeStatusPending
		var gone *types.NoSuchChange
		switch {
		case err == nil && out.ChangeInfo != nil:
			status = out.ChangeInfo.Status
		case errors.As(err, &gone):
			status = types.ChangeStatusInsync // long gone: it was applied
		default:
			s.log.Warn("change status", slog.String("change_id", pc.ID), slog.String("zone", pc.Zone), slog.Any("err", err))
		}
		if status != types.ChangeStatusInsync {
			s.bumpPolls(pc.ID)
			if age := time.Since(pc.Submitted); age > giveUpAfter {
				s.log.Error("change still not INSYNC; no longer polled", slog.String("change_id", pc.ID), slog.String("zone", pc.Zone), slog.Duration("age", age))
				s.settle(zoneID, pc.Submitted, false)
			} else if age > 5*time.Minute && pc.Polls%10 == 0 {
				s.log.Warn("change still pending", slog.String("change_id", pc.ID), slog.String("zone", pc.Zone), slog.Duration("age", age))
			}
			continue
		}
		s.settle(zoneID, pc.Submitted, true)
		s.log.Info("change in sync", slog.String("change_id", pc.ID), slog.String("zone", pc.Zone), slog.Duration("took", time.Since(pc.Submitted)))
	}
}

// settle removes the zone's pending changes submitted up to until; insync
// counts them as INSYNC (with their latency), else they are given up.
func (s *Syncer) settle(zoneID string, until time.Time, insync bool) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = slices.DeleteFunc(s.pending, func(p PendingChange) bool {
		if p.ZoneID != zoneID || p.Submitted.After(until) {
			return false
		}
		if insync {
			s.writeStats.InSync.Add(1)
			s.writeStats.InSyncMillis.Add(uint64(now.Sub(p.Submitted).Milliseconds()))
		}
		return true
	})
}

func (s *Syncer) bumpPolls(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.pending {
		if s.pending[i].ID == id {
			s.pending[i].Polls++
		}
	}
}
