package server

import "math"

// SetQueryLogSample changes the fraction of queries logged to
// Config.QueryLog (0: none, 1: all) for the queries that start after it;
// a reload turns query logging on and off with it.
func (s *Server) SetQueryLogSample(f float64) {
	s.qlSample.Store(math.Float64bits(min(max(f, 0), 1)))
}

func (s *Server) queryLogSample() float64 { return math.Float64frombits(s.qlSample.Load()) }
