package r53

import (
	"errors"
	"testing"

	"github.com/aws/smithy-go"
)

// TestAPICountersByOutcome: every attempt lands in exactly one outcome
// counter, successes included (counted, not derived by subtraction).
func TestAPICountersByOutcome(t *testing.T) {
	var c APICounters
	c.record(nil)
	c.record(nil)
	c.record(&smithy.GenericAPIError{Code: "Throttling"})
	c.record(errors.New("connection reset"))
	if c.Requests.Load() != 4 || c.OK.Load() != 2 || c.Throttled.Load() != 1 || c.Errors.Load() != 1 {
		t.Fatalf("requests %d ok %d throttled %d errors %d", c.Requests.Load(), c.OK.Load(), c.Throttled.Load(), c.Errors.Load())
	}
	var nilc *APICounters
	nilc.record(nil) // no counters configured: no panic
}
