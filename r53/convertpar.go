package r53

import (
	"runtime"

	"github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// convChunk is how many record sets one conversion task takes. Zones
// smaller than this convert on the caller's goroutine.
const convChunk = 4096

// convertSets converts every record set (ConvertRecordSet is pure) and
// hands each result, in the order of sets, to add on the caller's
// goroutine. A large zone is converted by every core, chunk by chunk, a
// bounded number of chunks ahead of add, so adding one chunk to the
// builder overlaps converting the next ones and memory stays bounded.
func convertSets(sets []types.ResourceRecordSet, add func(in types.ResourceRecordSet, rs RecordSet, err error)) {
	workers := runtime.GOMAXPROCS(0)
	if len(sets) < 2*convChunk || workers < 2 {
		for _, in := range sets {
			rs, err := ConvertRecordSet(in)
			add(in, rs, err)
		}
		return
	}
	type chunk struct {
		out  []RecordSet
		errs []error
		done chan struct{}
	}
	chunks := make([]chunk, (len(sets)+convChunk-1)/convChunk)
	for i := range chunks {
		chunks[i].done = make(chan struct{})
	}
	jobs := make(chan int)
	window := make(chan struct{}, 2*workers) // chunks converted but not added yet
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(jobs)
		for i := range chunks {
			select {
			case window <- struct{}{}:
			case <-stop:
				return
			}
			jobs <- i
		}
	}()
	for range workers {
		go func() {
			for i := range jobs {
				part := sets[i*convChunk : min((i+1)*convChunk, len(sets))]
				c := &chunks[i]
				c.out, c.errs = make([]RecordSet, len(part)), make([]error, len(part))
				for j, in := range part {
					c.out[j], c.errs[j] = ConvertRecordSet(in)
				}
				close(c.done)
			}
		}()
	}
	for i := range chunks {
		c := &chunks[i]
		<-c.done
		for j, rs := range c.out {
			add(sets[i*convChunk+j], rs, c.errs[j])
		}
		c.out, c.errs = nil, nil
		<-window
	}
}
