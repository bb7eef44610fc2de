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

func (s *Syncer) pollChanges(ctx context.Context) {
	now := time.Now()
	for _, pc := range s.PendingChanges() {
		if now.Sub(pc.Submitted) < s.cfg.ChangePoll/2 {
			continue
		}
		out, err := s.api.GetChange(ctx, &route53.GetChangeInput{Id: aws.String(pc.ID)})
		s.calls.Add(1)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("change status", slog.String("change_id", pc.ID), slog.String("zone", pc.Zone), slog.Any("err", err))
			var gone *types.NoSuchChange
			if !errors.As(err, &gone) {
				s.bumpPolls(pc.ID)
				continue
			}
		}
		status := types.ChangeStatusInsync
		if err == nil && out.ChangeInfo != nil {
			status = out.ChangeInfo.Status
		}
		if status != types.ChangeStatusInsync {
			s.bumpPolls(pc.ID)
			if age := time.Since(pc.Submitted); age > 5*time.Minute && pc.Polls%10 == 0 {
				s.log.Warn("change still pending", slog.String("change_id", pc.ID), slog.String("zone", pc.Zone), slog.Duration("age", age))
			}
			continue
		}
		took := time.Since(pc.Submitted)
		s.writeStats.InSync.Add(1)
		s.writeStats.InSyncMillis.Add(uint64(took.Milliseconds()))
		s.mu.Lock()
		s.pending = slices.DeleteFunc(s.pending, func(p PendingChange) bool { return p.ID == pc.ID })
		s.mu.Unlock()
		s.log.Info("change in sync", slog.String("change_id", pc.ID), slog.String("zone", pc.Zone), slog.Duration("took", took))
	}
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
