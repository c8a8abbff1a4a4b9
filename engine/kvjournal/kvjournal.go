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
	"time"

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

// journalKey maps a parent id (any text) to a KeyValue key: under "p."
// while the parent works, under "e." once it ended, so that engines
// looking for parents to take over list the working ones only.
func journalKey(id string) string { return "p." + base64.RawURLEncoding.EncodeToString([]byte(id)) }

func endedKey(id string) string { return "e." + base64.RawURLEncoding.EncodeToString([]byte(id)) }

// Load reads a parent's checkpoint and remembers its revision.
func (j *Journal) Load(ctx context.Context, id string) (engine.Checkpoint, bool, error) {
	var cp engine.Checkpoint
	e, err := j.kv.Get(ctx, journalKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		if e, err = j.kv.Get(ctx, endedKey(id)); errors.Is(err, jetstream.ErrKeyNotFound) {
			return cp, false, nil
		}
		if err == nil {
			// An ended parent is never written again: no revision to keep.
			if err := json.Unmarshal(e.Value(), &cp); err != nil {
				return cp, false, fmt.Errorf("journal: checkpoint of %s: %w", id, err)
			}
			return cp, true, nil
		}
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
	if st, ok := engine.ParseState(cp.State); ok && st.Terminal() {
		// Ended: kept under "e." (the id stays taken, its status
		// readable), no longer among the working.
		if _, err := j.kv.Put(ctx, endedKey(cp.ParentID), body); err != nil {
			return fmt.Errorf("journal: write %s: %w", cp.ParentID, err)
		}
		if err := j.kv.Delete(ctx, key, jetstream.LastRevision(next)); err != nil {
			return fmt.Errorf("journal: %s ended: %w", cp.ParentID, err)
		}
		j.mu.Lock()
		delete(j.rev, cp.ParentID)
		j.mu.Unlock()
	}
	return nil
}

// List returns every checkpoint in the bucket, working and ended (for a
// service restarting: the orders it must take back), remembering the
// working ones' revisions.
func (j *Journal) List(ctx context.Context) ([]engine.Checkpoint, error) {
	return j.list(ctx, "p.>", "e.>")
}

// Working returns the checkpoints of the parents still working (for an
// engine looking for parents to take over).
func (j *Journal) Working(ctx context.Context) ([]engine.Checkpoint, error) {
	return j.list(ctx, "p.>")
}

func (j *Journal) list(ctx context.Context, filters ...string) ([]engine.Checkpoint, error) {
	keys, err := j.kv.ListKeysFiltered(ctx, filters...)
	if err != nil {
		return nil, fmt.Errorf("journal: list: %w", err)
	}
	seen := map[string]bool{}
	var out []engine.Checkpoint
	for k := range keys.Keys() {
		raw, err := base64.RawURLEncoding.DecodeString(k[len("p."):])
		if err != nil {
			continue // not ours
		}
		if seen[string(raw)] {
			continue // between its two writes as it ended
		}
		seen[string(raw)] = true
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

// LeaseBucket is the JetStream KeyValue bucket of parent leases: the key
// of a parent, the id of the engine that works it. Its entries expire
// (the bucket's MaxAge) unless renewed.
const LeaseBucket = "blockexec_leases"

// Leases are this engine's leases on parents: one engine works a parent
// while it renews the parent's lease; when it stops renewing, the entry
// expires and another engine may take the parent over. A lease is fencing
// enough with the journal's revision check: an engine that lost its lease
// but not yet noticed cannot write the checkpoint its successor wrote
// after it, so it places nothing more.
type Leases struct {
	kv    jetstream.KeyValue
	owner string
	ttl   time.Duration

	mu   sync.Mutex
	held map[string]uint64 // parent id → the lease's revision
}

// NewLeases opens (creating if needed) the lease bucket with entries that
// live ttl unless renewed, for the engine named owner.
func NewLeases(ctx context.Context, js jetstream.JetStream, owner string, ttl time.Duration, replicas int) (*Leases, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: LeaseBucket, History: 1, TTL: ttl,
		Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
		Description: "blockexec parent leases: which engine works a parent; they expire unless renewed"})
	if err != nil {
		return nil, fmt.Errorf("lease bucket %s: %w", LeaseBucket, err)
	}
	return &Leases{kv: kv, owner: owner, ttl: ttl, held: map[string]uint64{}}, nil
}

// Owner is this engine's name in the leases.
func (l *Leases) Owner() string { return l.owner }

// Acquire takes a parent's lease: free, or already this engine's.
// engine.ErrLeaseHeld when another engine holds it.
func (l *Leases) Acquire(ctx context.Context, id string) error {
	key := journalKey(id)
	rev, err := l.kv.Create(ctx, key, []byte(l.owner))
	if errors.Is(err, jetstream.ErrKeyExists) {
		e, gerr := l.kv.Get(ctx, key)
		switch {
		case errors.Is(gerr, jetstream.ErrKeyNotFound):
			return fmt.Errorf("lease %s: %w (it changed hands as it was read)", id, engine.ErrLeaseHeld)
		case gerr != nil:
			return fmt.Errorf("lease %s: %w", id, gerr)
		case string(e.Value()) != l.owner:
			return fmt.Errorf("lease %s: %w: %s", id, engine.ErrLeaseHeld, e.Value())
		}
		// Ours already (this engine took it before): renew it now.
		rev, err = l.kv.Update(ctx, key, []byte(l.owner), e.Revision())
	}
	if err != nil {
		return fmt.Errorf("lease %s: %w", id, err)
	}
	l.mu.Lock()
	l.held[id] = rev
	l.mu.Unlock()
	return nil
}

// Release gives a parent's lease up (a parent that ended needs none).
func (l *Leases) Release(ctx context.Context, id string) error {
	l.mu.Lock()
	rev, ok := l.held[id]
	delete(l.held, id)
	l.mu.Unlock()
	if !ok {
		return nil
	}
	if err := l.kv.Delete(ctx, journalKey(id), jetstream.LastRevision(rev)); err != nil {
		return fmt.Errorf("lease %s: release: %w", id, err)
	}
	return nil
}

// Renew renews every lease held and returns the parents whose lease was
// lost (expired and taken, or changed by another engine): this engine must
// stop working them.
func (l *Leases) Renew(ctx context.Context) []string {
	l.mu.Lock()
	held := make(map[string]uint64, len(l.held))
	for id, rev := range l.held {
		held[id] = rev
	}
	l.mu.Unlock()
	var lost []string
	for id, rev := range held {
		next, err := l.kv.Update(ctx, journalKey(id), []byte(l.owner), rev)
		l.mu.Lock()
		if _, still := l.held[id]; still {
			if err != nil {
				delete(l.held, id)
			} else {
				l.held[id] = next
			}
		}
		l.mu.Unlock()
		if err != nil {
			lost = append(lost, id)
		}
	}
	return lost
}

// Free reports whether nobody holds a parent's lease.
func (l *Leases) Free(ctx context.Context, id string) (bool, error) {
	_, err := l.kv.Get(ctx, journalKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return true, nil
	}
	return false, err
}

// Keep renews the leases every third of their time to live until ctx
// ends, and tells lost which ones were lost.
func (l *Leases) Keep(ctx context.Context, lost func(id string)) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, id := range l.Renew(ctx) {
				lost(id)
			}
		}
	}
}
