// Package r53 mirrors Amazon Route 53 hosted zones into a zonestore.Store:
// it discovers zones, pages through their record sets under one rate limit
// shared by every call of the process, converts them losslessly, builds and
// validates each zone off to the side and swaps it in, keeps the last good
// zone on any failure, and writes snapshots for a cold start.
package r53

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"
)

// API is what the mirror calls; *route53.Client satisfies it.
type API interface {
	ListHostedZones(context.Context, *route53.ListHostedZonesInput, ...func(*route53.Options)) (*route53.ListHostedZonesOutput, error)
	GetHostedZone(context.Context, *route53.GetHostedZoneInput, ...func(*route53.Options)) (*route53.GetHostedZoneOutput, error)
	ListResourceRecordSets(context.Context, *route53.ListResourceRecordSetsInput, ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error)
	GetHealthCheckStatus(context.Context, *route53.GetHealthCheckStatusInput, ...func(*route53.Options)) (*route53.GetHealthCheckStatusOutput, error)
	ListTagsForResources(context.Context, *route53.ListTagsForResourcesInput, ...func(*route53.Options)) (*route53.ListTagsForResourcesOutput, error)
	// The write path (UPDATE, the HTTP API, import) and change tracking.
	ChangeResourceRecordSets(context.Context, *route53.ChangeResourceRecordSetsInput, ...func(*route53.Options)) (*route53.ChangeResourceRecordSetsOutput, error)
	GetChange(context.Context, *route53.GetChangeInput, ...func(*route53.Options)) (*route53.GetChangeOutput, error)
}

var _ API = (*route53.Client)(nil)

// Defaults for the shared Route 53 budget: the account allows 5 requests a
// second across every caller (Terraform, the console, ExternalDNS), so we
// stay at it and no higher.
const (
	DefaultRPS   = 5
	DefaultBurst = 10
)

// NewLimiter returns the one limiter every Route 53 request of the process
// waits on.
func NewLimiter(rps float64, burst int) *rate.Limiter {
	if rps <= 0 {
		rps = DefaultRPS
	}
	if burst <= 0 {
		burst = DefaultBurst
	}
	return rate.NewLimiter(rate.Limit(rps), burst)
}

// ClientOptions configures NewClient.
type ClientOptions struct {
	Endpoint string        // custom endpoint (the fake, LocalStack, moto); empty: AWS
	RoleARN  string        // assume this role (another account); empty: the default chain
	Limiter  *rate.Limiter // required: shared by every client of the process
	// MaxAttempts per call, retries included (Throttling and
	// PriorRequestNotComplete back off and retry); default 8.
	MaxAttempts int
	// MaxBackoff caps the wait between attempts of one call (default 5s,
	// not the SDK's 20s): the sync loop is sequential, so a long in-call
	// wait on one throttled zone would stall every other zone; the zone
	// itself backs off further between syncs.
	MaxBackoff time.Duration
	// AWSConfig, when set, is used instead of config.LoadDefaultConfig
	// (tests pass static credentials).
	AWSConfig *aws.Config
	// Counters, when set, counts every HTTP attempt and its outcome.
	Counters *APICounters
}

// APICounters counts Route 53 HTTP attempts (retries included) by outcome.
// Each outcome has its own counter: one derived from the others by
// subtraction of separate loads can go negative (wrap) mid-update.
type APICounters struct {
	Requests, OK, Throttled, Errors atomic.Uint64
}

func (c *APICounters) record(err error) {
	if c == nil {
		return
	}
	c.Requests.Add(1)
	if err == nil {
		c.OK.Add(1)
		return
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "Throttling", "ThrottlingException", "PriorRequestNotComplete":
			c.Throttled.Add(1)
			return
		}
	}
	c.Errors.Add(1)
}

// NewClient returns a Route 53 client whose every HTTP attempt — retries
// included — first waits on the shared limiter.
func NewClient(ctx context.Context, o ClientOptions) (*route53.Client, error) {
	if o.Limiter == nil {
		return nil, fmt.Errorf("route53 client: no rate limiter")
	}
	var cfg aws.Config
	if o.AWSConfig != nil {
		cfg = *o.AWSConfig
	} else {
		var err error
		cfg, err = config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
		if err != nil {
			return nil, fmt.Errorf("route53 client: load AWS config: %w", err)
		}
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1" // Route 53 is global; any region signs for us-east-1
	}
	if o.RoleARN != "" {
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), o.RoleARN,
			func(ao *stscreds.AssumeRoleOptions) { ao.RoleSessionName = "hybridns" }))
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	limiter, counters := o.Limiter, o.Counters
	return route53.NewFromConfig(cfg, func(ro *route53.Options) {
		if o.Endpoint != "" {
			ro.BaseEndpoint = aws.String(o.Endpoint)
		}
		ro.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = o.MaxAttempts
			so.MaxBackoff = o.MaxBackoff
		})
		ro.APIOptions = append(ro.APIOptions, func(st *middleware.Stack) error {
			// After the retry middleware: runs once per attempt.
			return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("hybridnsPace",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					if err := limiter.Wait(ctx); err != nil {
						return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("route53 rate limiter: %w", err)
					}
					out, md, err := next.HandleFinalize(ctx, in)
					counters.record(err)
					return out, md, err
				}), middleware.After)
		})
	}), nil
}
