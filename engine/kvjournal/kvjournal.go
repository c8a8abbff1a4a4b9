// Package kvjournal keeps the engine's parent checkpoints in JetStream
// KeyValue.
package kvjournal

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/blockexec/blockexec/engine"
)

// Bucket is the JetStream KeyValue bucket of parent checkpoints.
const Bucket = "blockexec_parents"

// Journal keeps the engine's parent checkpoints in JetStream KeyValue.
// Every write is checked against the revision this journal last read or
// wrote for the key, so two engines can never both advance one parent: the
// second gets engine.ErrJournalConflict.
type Journal struct {
	kv jetstream.KeyValue

	mu  sync.Mutex
	rev map[string]uint64 // key → the revision this journal knows
}

// New opens (creating if needed) the checkpoint bucket. The
// bucket keeps one value per key, on file, with the stream's replicas.
func New(ctx context.Context, js jetstream.JetStream, replicas int) (*Journal, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket, History: 1,
		Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
		Description: "blockexec parent checkpoints: schedule position, tallies and open child orders"})
	if err != nil {
		return nil, fmt.Errorf("journal bucket %s: %w", Bucket, err)
	}
	return &Journal{kv: kv, rev: map[string]uint64{}}, nil
}

// journalKey maps a parent id (any text) to a KeyValue key.
func journalKey(id string) string { return "p." + base64.RawURLEncoding.EncodeToString([]byte(id)) }

// Load reads a parent's checkpoint and remembers its revision.
func (j *Journal) Load(ctx context.Context, id string) (engine.Checkpoint, bool, error) {
	var cp engine.Checkpoint
	e, err := j.kv.Get(ctx, journalKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return cp, false, nil
	}
	if err != nil {
		return cp, false, fmt.Errorf("journal: read %s: %w", id, err)
	}
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		return cp, false, fmt.Errorf("journal: checkpoint of %s at revision %d: %w", id, e.Revision(), err)
	}
	j.mu.Lock()
	j.rev[id] = e.Revision()
	j.mu.Unlock()
	return cp, true, nil
}

// Save writes a checkpoint: created if this journal never saw the key,
// otherwise updated from the revision it knows.
func (j *Journal) Save(ctx context.Context, cp engine.Checkpoint) error {
	body, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("journal: encode %s: %w", cp.ParentID, err)
	}
	j.mu.Lock()
	rev, known := j.rev[cp.ParentID]
	j.mu.Unlock()
	key := journalKey(cp.ParentID)
	var next uint64
	if known {
		next, err = j.kv.Update(ctx, key, body, rev)
	} else {
		next, err = j.kv.Create(ctx, key, body)
	}
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrKeyExists),
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence:
		return fmt.Errorf("journal: %s: %w", cp.ParentID, engine.ErrJournalConflict)
	case err != nil:
		return fmt.Errorf("journal: write %s: %w", cp.ParentID, err)
	}
	j.mu.Lock()
	j.rev[cp.ParentID] = next
	j.mu.Unlock()
	return nil
}

// List returns every checkpoint in the bucket (for a service restarting:
// the parents it must resume), remembering their revisions.
func (j *Journal) List(ctx context.Context) ([]engine.Checkpoint, error) {
	keys, err := j.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("journal: list: %w", err)
	}
	var out []engine.Checkpoint
	for k := range keys.Keys() {
		raw, err := base64.RawURLEncoding.DecodeString(k[len("p."):])
		if err != nil {
			continue // not ours
		}
		cp, found, err := j.Load(ctx, string(raw))
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, cp)
		}
	}
	return out, nil
}
