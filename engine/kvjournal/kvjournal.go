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
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/engine"
)

// Bucket is the JetStream KeyValue bucket of parent checkpoints.
const Bucket = "blockexec_parents"

// Journal keeps the engine's parent checkpoints in JetStream KeyValue.
// Every write is checked against the revision this journal last read or
// wrote for the key, so two engines can never both advance one parent: the
// second gets engine.ErrJournalConflict.
type Journal struct {
	kv    jetstream.KeyValue
	owner string // written into every checkpoint it saves

	mu  sync.Mutex
	rev map[string]uint64 // key → the revision this journal knows

	size atomic.Int64 // of the last checkpoint written
}

// New opens (creating if needed) the checkpoint bucket. The bucket keeps
// one value per key, on file, with the stream's replicas; owner names this
// engine in every checkpoint it writes.
func New(ctx context.Context, js jetstream.JetStream, replicas int, owner string) (*Journal, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket, History: 1,
		Storage: jetstream.FileStorage, Replicas: bus.ReplicasAtLeast(ctx, js, replicas, "KV_"+Bucket),
		Description: "blockexec parent checkpoints: schedule position, tallies and open child orders"})
	if err != nil {
		return nil, fmt.Errorf("journal bucket %s: %w", Bucket, err)
	}
	return &Journal{kv: kv, owner: owner, rev: map[string]uint64{}}, nil
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
	working := err == nil
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		e, err = j.kv.Get(ctx, endedKey(id))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return cp, false, nil
		}
	}
	if err != nil {
		return cp, false, fmt.Errorf("journal: read %s: %w", id, err)
	}
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		return cp, false, fmt.Errorf("journal: checkpoint of %s at revision %d: %w", id, e.Revision(), err)
	}
	if working { // an ended parent is never written again: no revision to keep
		j.mu.Lock()
		j.rev[id] = e.Revision()
		j.mu.Unlock()
	}
	return cp, true, nil
}

// Save writes a checkpoint: created if this journal never saw the key,
// otherwise updated from the revision it knows.
func (j *Journal) Save(ctx context.Context, cp engine.Checkpoint) error {
	cp.Owner = j.owner
	// A buffer the size of the last checkpoint, which the next one mostly
	// is: appended to once.
	body, err := cp.AppendJSON(make([]byte, 0, j.size.Load()+256))
	if err != nil {
		return fmt.Errorf("journal: encode %s: %w", cp.ParentID, err)
	}
	j.size.Store(int64(len(body)))
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
	if conflict(err) {
		// A write of ours that timed out but landed moved the revision
		// too: if the checkpoint there is this journal's own, write over
		// it; otherwise another engine has the parent.
		if e, gerr := j.kv.Get(ctx, key); gerr == nil && ownedBy(e.Value(), j.owner) {
			next, err = j.kv.Update(ctx, key, body, e.Revision())
		}
	}
	switch {
	case conflict(err):
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

// conflict reports a write refused because the key changed since the
// revision given (or exists, for a create).
func conflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) ||
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// ownedBy reports whether a stored checkpoint names owner.
func ownedBy(value []byte, owner string) bool {
	var cp struct {
		Owner string `json:"owner"`
	}
	return json.Unmarshal(value, &cp) == nil && cp.Owner == owner
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

// HeartbeatBucket is the JetStream KeyValue bucket of engine heartbeats:
// one key per serving engine, which expires (the bucket's MaxAge) unless
// the engine writes it again.
const HeartbeatBucket = "blockexec_engines"

// Heartbeat is a serving engine's sign of life. The parents an engine
// works name it as their checkpoints' owner; when its heartbeat expires,
// another engine may take them over. That is fenced by the journal's
// revision check: an engine that took a parent over wrote its checkpoint,
// so the old owner, if it was only slow, can no longer write it and
// places nothing more. One write per engine every third of the time to
// live, however many parents it works.
type Heartbeat struct {
	kv     jetstream.KeyValue
	owner  string
	ttl    time.Duration
	landed atomic.Int64 // wall time (Unix ns) of the last beat the server took
}

// NewHeartbeat opens (creating if needed) the heartbeat bucket, with
// entries that live ttl unless written again, and beats once for owner.
func NewHeartbeat(ctx context.Context, js jetstream.JetStream, owner string, ttl time.Duration, replicas int) (*Heartbeat, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: HeartbeatBucket, History: 1, TTL: ttl,
		Storage: jetstream.FileStorage, Replicas: bus.ReplicasAtLeast(ctx, js, replicas, "KV_"+HeartbeatBucket),
		Description: "blockexec serving engines: each writes its key while it runs; the parents of an engine whose key expired may be taken over"})
	if err != nil {
		return nil, fmt.Errorf("heartbeat bucket %s: %w", HeartbeatBucket, err)
	}
	h := &Heartbeat{kv: kv, owner: owner, ttl: ttl}
	return h, h.Beat(ctx)
}

// Owner is this engine's name.
func (h *Heartbeat) Owner() string { return h.owner }

func engineKey(owner string) string { return base64.RawURLEncoding.EncodeToString([]byte(owner)) }

// Beat writes this engine's key.
func (h *Heartbeat) Beat(ctx context.Context) error {
	sent := time.Now() //nolint:forbidigo // liveness is network time, not market time
	if _, err := h.kv.Put(ctx, engineKey(h.owner), []byte(h.owner)); err != nil {
		return fmt.Errorf("heartbeat %s: %w", h.owner, err)
	}
	h.landed.Store(sent.UnixNano())
	return nil
}

// Fence is nil while this engine's heartbeat is surely alive: its last
// beat the server took was sent less than half the time to live ago. The
// engine asks before every order it places, so that once its heartbeat may
// have expired (the bus unreachable) it stops placing before another
// engine can take its orders over.
func (h *Heartbeat) Fence() error {
	age := time.Since(time.Unix(0, h.landed.Load())) //nolint:forbidigo // network time
	if age >= h.ttl/2 {
		return fmt.Errorf("heartbeat %s last landed %s ago (lives %s): another engine may be taking its orders over",
			h.owner, age.Round(time.Millisecond), h.ttl)
	}
	return nil
}

// Alive reports whether owner's heartbeat lives (this engine's always
// does).
func (h *Heartbeat) Alive(ctx context.Context, owner string) (bool, error) {
	if owner == h.owner {
		return true, nil
	}
	_, err := h.kv.Get(ctx, engineKey(owner))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Keep beats every third of the time to live until ctx ends; fail is told
// of a beat that did not land. (Stop removes the key.)
func (h *Heartbeat) Keep(ctx context.Context, fail func(error)) {
	t := time.NewTicker(h.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := h.Beat(ctx); err != nil && ctx.Err() == nil {
				fail(err)
			}
		}
	}
}

// Stop removes this engine's key: its parents may be taken over now.
func (h *Heartbeat) Stop(ctx context.Context) error {
	if err := h.kv.Delete(ctx, engineKey(h.owner)); err != nil {
		return fmt.Errorf("heartbeat %s: stop: %w", h.owner, err)
	}
	return nil
}
