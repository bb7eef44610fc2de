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
// bounded number of chunks ahead of add (inOrder), so adding one chunk to
// the builder overlaps converting the next ones and memory stays bounded.
func convertSets(sets []types.ResourceRecordSet, add func(in *types.ResourceRecordSet, rs *RecordSet, err error)) {
	workers := runtime.GOMAXPROCS(0)
	if len(sets) < 2*convChunk || workers < 2 {
		for i := range sets {
			rs, err := convertSetPtr(&sets[i])
			add(&sets[i], &rs, err)
		}
		return
	}
	chunks := make([]converted, (len(sets)+convChunk-1)/convChunk)
	inOrder(len(chunks), func(i int) {
		chunks[i] = convertPart(sets[i*convChunk : min((i+1)*convChunk, len(sets))])
	}, func(i int) bool {
		c := &chunks[i]
		for j := range c.out {
			add(&sets[i*convChunk+j], &c.out[j], c.errs[j])
		}
		*c = converted{}
		return true
	})
}
