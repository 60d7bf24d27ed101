package luahooks

import (
	"container/list"
	"math/bits"
)

// slabPool reproduces the bookkeeping of nginx's slab allocator
// (src/core/ngx_slab.c) for one lua_shared_dict zone, so that a zone fills
// up after as many entries as nginx's, fragments as nginx's does, and
// free_space answers what nginx's does. No memory is handed out: the pool
// only says whether an allocation of n bytes succeeds, and where.
//
// A zone of size bytes starts with the pool's header (ngx_slab_pool_t,
// its 9 slots and their statistics, 64-bit Linux), one page descriptor per
// page, and the pages of 4 KiB after them, page-aligned. An allocation of
// more than half a page takes whole contiguous pages, found first-fit in
// the list of free runs (a freed run joins its free neighbours and goes to
// the front of that list); a smaller one takes a chunk of the next power
// of two (8 bytes at least) in the first page of its size that has a free
// chunk, or in a new page. Pages of chunks under 64 bytes keep their
// bitmap in their first chunks.
type slabPool struct {
	pfree int        // free pages: free_space is pfree pages
	free  *list.List // runs of free pages (*slabRun), nginx's pool->free order
	start map[int]*list.Element
	end   map[int]int // end (exclusive) of each free run -> its start
	// slots are, per chunk shift, the pages of that size with a free
	// chunk, the one allocated from first.
	slots [slabPageShift]list.List
}

const (
	slabPageShift = 12
	slabPageSize  = 1 << slabPageShift
	slabMinShift  = 3 // 8-byte chunks
	slabExact     = 6 // 64-byte chunks: the bitmap fits in the descriptor
	// slabPoolHeader is what ngx_slab_init takes before the page
	// descriptors: ngx_slab_pool_t, then (pagesize shift - min shift) slots
	// and as many statistics.
	slabPoolHeader = 200 + (slabPageShift-slabMinShift)*(24+32)
	slabPageDesc   = 24 // ngx_slab_page_t
)

type slabRun struct{ first, n int }

// slabPage is one page cut into chunks of 1<<shift bytes.
type slabPage struct {
	first       int // its index, for freeing
	shift       uint
	used, total int
	elem        *list.Element // in its slot while it has a free chunk
}

// slabChunk is what alloc returns: a chunk of page, or pages whole pages
// from first.
type slabChunk struct {
	page         *slabPage
	first, pages int
}

func newSlabPool(size int64) *slabPool {
	pages := int((size - slabPoolHeader) / (slabPageSize + slabPageDesc))
	start := (slabPoolHeader + int64(pages)*slabPageDesc + slabPageSize - 1) / slabPageSize * slabPageSize
	if m := pages - int((size-start)/slabPageSize); m > 0 {
		pages -= m
	}
	p := &slabPool{free: list.New(), start: map[int]*list.Element{}, end: map[int]int{}}
	if pages > 0 {
		p.insertRun(0, pages)
	}
	return p
}

func (p *slabPool) insertRun(first, n int) {
	p.start[first] = p.free.PushFront(&slabRun{first, n})
	p.end[first+n] = first
	p.pfree += n
}

func (p *slabPool) removeRun(first int) int {
	e := p.start[first]
	r := p.free.Remove(e).(*slabRun)
	delete(p.start, first)
	delete(p.end, first+r.n)
	p.pfree -= r.n
	return r.n
}

// allocPages takes n contiguous pages, first fit (ngx_slab_alloc_pages):
// the run keeps its place in the list with what is left of it.
func (p *slabPool) allocPages(n int) (int, bool) {
	for e := p.free.Front(); e != nil; e = e.Next() {
		r := e.Value.(*slabRun)
		if r.n < n {
			continue
		}
		first := r.first
		delete(p.start, first)
		if r.n == n {
			delete(p.end, first+n)
			p.free.Remove(e)
		} else {
			r.first, r.n = first+n, r.n-n
			p.start[r.first] = e
			p.end[r.first+r.n] = r.first
		}
		p.pfree -= n
		return first, true
	}
	return 0, false
}

// freePages gives n pages from first back, joined with the free runs
// around them, at the front of the list (ngx_slab_free_pages).
func (p *slabPool) freePages(first, n int) {
	if _, ok := p.start[first+n]; ok {
		n += p.removeRun(first + n)
	}
	if prev, ok := p.end[first]; ok {
		n += p.removeRun(prev)
		first = prev
	}
	p.insertRun(first, n)
}

// alloc takes n bytes; ok is false when the zone has no room for them.
func (p *slabPool) alloc(n int) (c slabChunk, ok bool) {
	if n > slabPageSize/2 {
		pages := (n + slabPageSize - 1) >> slabPageShift
		first, ok := p.allocPages(pages)
		return slabChunk{first: first, pages: pages}, ok
	}
	shift := uint(slabMinShift)
	if n > 1<<slabMinShift {
		shift = uint(bits.Len(uint(n - 1)))
	}
	slot := &p.slots[shift]
	if e := slot.Front(); e != nil {
		pg := e.Value.(*slabPage)
		pg.used++
		if pg.used == pg.total {
			slot.Remove(e)
			pg.elem = nil
		}
		return slabChunk{page: pg}, true
	}
	first, ok := p.allocPages(1)
	if !ok {
		return c, false
	}
	pg := &slabPage{first: first, shift: shift, used: 1, total: slabChunks(shift)}
	pg.elem = slot.PushFront(pg)
	return slabChunk{page: pg}, true
}

// slabChunks is how many chunks of 1<<shift bytes a page gives: small
// chunks lose the first ones to the page's bitmap.
func slabChunks(shift uint) int {
	n := slabPageSize >> shift
	if shift < slabExact {
		n -= max(n/((1<<shift)*8), 1)
	}
	return n
}

// release gives back what alloc returned; a page whose chunks are all
// free again goes back to the free pages.
func (p *slabPool) release(c slabChunk) {
	pg := c.page
	if pg == nil {
		p.freePages(c.first, c.pages)
		return
	}
	pg.used--
	switch {
	case pg.used == 0:
		if pg.elem != nil {
			p.slots[pg.shift].Remove(pg.elem)
			pg.elem = nil
		}
		p.freePages(pg.first, 1)
	case pg.elem == nil:
		pg.elem = p.slots[pg.shift].PushFront(pg)
	}
}
