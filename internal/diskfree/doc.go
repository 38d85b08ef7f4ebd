// Package diskfree measures disk space: what is left on the filesystem (or
// volume) of a directory, and what the files under one take. The agent
// offers restores' overlays the room of its work dir with it, holds each
// overlay to its growth limit, and exports the free space as a metric;
// raftnode keeps its reserve with it.
package diskfree
