// Package diskfree measures the space left on the filesystem (or volume)
// of a directory: the agent's work dir for its metrics and for the disk it
// offers restores.
package diskfree
