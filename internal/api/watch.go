package api

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/go-memdb"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/auth"
	"github.com/restored/restored/internal/mdkeys"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// bookmarkEvery is how long a watch that asked for bookmarks stays quiet
// before it is sent one (while the state moved on).
var bookmarkEvery = 30 * time.Second

// watchBatch bounds the events read in one pass.
const watchBatch = 1000

// watchFrom is where a watch request starts (every Watch* request has
// these two fields).
type watchFrom interface {
	GetResourceVersion() string
	GetAllowBookmarks() bool
}

// watchSpec is what differs between the watch streams: the kind of object,
// the objects of the first listing, which events the caller sees, how an
// object is shown (nil: as stored), and how one is sent (obj is the zero T
// in a BOOKMARK).
type watchSpec[T any] struct {
	kind    store.Kind
	list    func(r *store.Reader) []T
	match   func(r *store.Reader, obj T) bool
	present func(r *store.Reader, obj T) T
	send    func(typ restorev1.WatchEventType, rv store.Version, obj T) error
}

// shown is obj as the stream shows it, read with r.
func (spec watchSpec[T]) shown(r *store.Reader, obj T) T {
	if spec.present == nil {
		return obj
	}
	return spec.present(r, obj)
}

// eventTypes maps the store's event types to the API's.
var eventTypes = map[store.EventType]restorev1.WatchEventType{
	store.EventAdded:    restorev1.WatchEventType_WATCH_EVENT_TYPE_ADDED,
	store.EventModified: restorev1.WatchEventType_WATCH_EVENT_TYPE_MODIFIED,
	store.EventDeleted:  restorev1.WatchEventType_WATCH_EVENT_TYPE_DELETED,
}

// runWatch serves one watch stream with Kubernetes semantics (see
// WatchEventType in the API): a first listing unless the request resumes,
// then every change of the kind the caller sees, each with the version to
// resume after. It ends when the client goes, the caller's token stops
// working, or the request's version is older than the event log keeps.
func runWatch[T any](d *Deps, stream grpc.ServerStream, req watchFrom, spec watchSpec[T]) error {
	ctx := stream.Context()
	p := principal(ctx)
	var pos store.Version
	resume := req.GetResourceVersion() != ""
	if resume {
		v, err := store.ParseVersion(req.GetResourceVersion())
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		if _, err := d.Store.Read(nil).EventsAfter(spec.kind, v, 1); err != nil {
			return watchError(err)
		}
		pos = v
	}
	// Send headers now, marked: REST clients get their 200 and the stream
	// opens even when nothing matches yet (a stream refused before this
	// answers its error's status instead).
	if err := stream.SendHeader(metadata.Pairs(mdkeys.StreamOpen, "1")); err != nil {
		return err
	}
	var zero T
	sent := pos
	if !resume {
		r := d.Store.Read(nil)
		if !store.TokenUsable(r.Token(p.TokenID), d.Now()) {
			return auth.ErrUnauthenticated
		}
		pos = r.AppliedVersion()
		for _, obj := range spec.list(r) {
			if err := spec.send(restorev1.WatchEventType_WATCH_EVENT_TYPE_ADDED, pos, spec.shown(r, obj)); err != nil {
				return err
			}
		}
		if req.GetAllowBookmarks() {
			if err := spec.send(restorev1.WatchEventType_WATCH_EVENT_TYPE_BOOKMARK, pos, zero); err != nil {
				return err
			}
		}
		sent = pos
	}
	quietSince := d.Now()
	for {
		ws := memdb.NewWatchSet()
		d.Store.WatchTables(ws, store.TableTokens)
		r := d.Store.Read(ws)
		t := r.Token(p.TokenID)
		if !store.TokenUsable(t, d.Now()) {
			return auth.ErrUnauthenticated
		}
		evs, err := r.EventsAfter(spec.kind, pos, watchBatch)
		if err != nil {
			return watchError(err)
		}
		for _, ev := range evs {
			pos = ev.Version
			obj := ev.Object.(T)
			if !spec.match(r, obj) {
				continue
			}
			if err := spec.send(eventTypes[ev.Type], ev.Version, spec.shown(r, obj)); err != nil {
				return err
			}
			sent, quietSince = pos, d.Now()
		}
		if len(evs) == watchBatch {
			continue // more to read now
		}
		// Every event of this state was read: the next pass starts after
		// it, which a bookmark may tell.
		pos = max(pos, r.AppliedVersion())
		deadline := store.TokenEnd(t)
		if req.GetAllowBookmarks() && pos > sent {
			due := quietSince.Add(bookmarkEvery)
			if !d.Now().Before(due) {
				if err := spec.send(restorev1.WatchEventType_WATCH_EVENT_TYPE_BOOKMARK, pos, zero); err != nil {
					return err
				}
				sent, quietSince = pos, d.Now()
				continue
			}
			if deadline.IsZero() || due.Before(deadline) {
				deadline = due
			}
		}
		if err := watchUntil(ctx, ws, deadline); err != nil {
			return err
		}
	}
}

// filtered keeps the objects of a first listing that match.
func filtered[T any](r *store.Reader, all []T, match func(*store.Reader, T) bool) []T {
	var out []T
	for _, x := range all {
		if match(r, x) {
			out = append(out, x)
		}
	}
	return out
}

// watchError is the status of a failed event read.
func watchError(err error) error {
	if errors.Is(err, store.ErrCompacted) {
		return status.Errorf(codes.OutOfRange, "%v: watch again without a resource_version (every object is sent first)", err)
	}
	return status.Errorf(codes.Internal, "read events: %v", err)
}

// watchUntil waits for ws to fire, ctx to end, or deadline (zero: none) to
// come, so a stream does not outlive its token and bookmarks are on time.
func watchUntil(ctx context.Context, ws memdb.WatchSet, deadline time.Time) error {
	wctx := ctx
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	if err := ws.WatchCtx(wctx); err != nil && ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	return nil
}
