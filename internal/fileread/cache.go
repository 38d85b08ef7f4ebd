package fileread

import (
	"io"
	"sync"
)

// cacheBlock and cacheBlocks size the child's read cache: parsers read a
// few hundred bytes at a time (a superblock, an inode, a directory block),
// and each miss is one NBD round trip.
const (
	cacheBlock  = 64 << 10
	cacheBlocks = 512 // 32 MiB
)

// cache is an io.ReaderAt of whole aligned blocks, kept least recently
// used first out; reads past the end are short with io.EOF, as
// io.ReaderAt wants (NBD refuses them).
type cache struct {
	mu     sync.Mutex
	r      io.ReaderAt
	size   int64
	blocks map[int64]*cached
	clock  uint64
}

type cached struct {
	data []byte
	used uint64
}

func newCache(r io.ReaderAt, size int64) *cache {
	return &cache{r: r, size: size, blocks: map[int64]*cached{}}
}

func (c *cache) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if off >= c.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > c.size-off {
		p = p[:c.size-off]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		b, err := c.block(pos / cacheBlock)
		if err != nil {
			return done, err
		}
		done += copy(p[done:], b[pos%cacheBlock:])
	}
	if done < want {
		return done, io.EOF
	}
	return done, nil
}

func (c *cache) block(i int64) ([]byte, error) {
	c.clock++
	if b, ok := c.blocks[i]; ok {
		b.used = c.clock
		return b.data, nil
	}
	n := min(int64(cacheBlock), c.size-i*cacheBlock)
	data := make([]byte, n)
	if _, err := c.r.ReadAt(data, i*cacheBlock); err != nil {
		return nil, err
	}
	if len(c.blocks) >= cacheBlocks {
		var oldest int64
		var at uint64 = ^uint64(0)
		for k, b := range c.blocks {
			if b.used < at {
				oldest, at = k, b.used
			}
		}
		delete(c.blocks, oldest)
	}
	c.blocks[i] = &cached{data: data, used: c.clock}
	return data, nil
}
