package r53

import "github.com/aws/aws-sdk-go-v2/service/route53/types"

// What the tests read snapshots with: the daemon's path (LoadSnapshots)
// goes through openSnapshot and decodeSnapshotThen directly.

// readSnapshot reads one snapshot file. The record sets of a large file
// are decoded by every core (one JSON value per line).
func readSnapshot(path string) (snapshotMeta, []types.ResourceRecordSet, error) {
	meta, body, err := openSnapshot(path)
	if err != nil {
		return meta, nil, err
	}
	sets, err := decodeSnapshot(path, meta, body, func([]types.ResourceRecordSet) {})
	return meta, sets, err
}

// decodeSnapshot decodes body's record sets, in order, handing them to
// each part by part as they are decoded, and checks their number against
// the header. It returns them all; the parts are pieces of that slice.
func decodeSnapshot(path string, meta snapshotMeta, body []byte, each func([]types.ResourceRecordSet)) ([]types.ResourceRecordSet, error) {
	return decodeSnapshotThen(path, meta, body, func([]types.ResourceRecordSet) struct{} { return struct{}{} },
		func(part []types.ResourceRecordSet, _ struct{}) { each(part) })
}

// decodeSetLine decodes one snapshot line (a record set as json.Encoder
// wrote it) into rs. The lines of plain record sets — every field a plain
// string, number, bool or null, values without escapes — take a direct
// path several times faster than encoding/json's reflection; anything
// else (an alias, a routing location, an escape, a field it does not
// know) goes to json.Unmarshal. Both give the same record set for every
// line the direct path takes (FuzzDecodeSetLine).
func decodeSetLine(line []byte, rs *types.ResourceRecordSet) error {
	return new(lineSlabs).decode(line, rs)
}
