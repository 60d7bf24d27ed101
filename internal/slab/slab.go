// Package slab reproduces the bookkeeping of nginx's slab allocator
// (src/core/ngx_slab.c) for one shared memory zone, so that a zone of the
// size nginx.conf gives fills up after as many allocations as nginx's,
// fragments as nginx's does, and reports the free pages nginx's would.
// lua_shared_dict zones (luahooks) and limit_req/limit_conn zones (proxy)
// keep their entries in one Pool each.
//
// No memory is handed out: a Pool only says whether an allocation of n
// bytes succeeds, and what to give back to free it. A Pool is not safe for
// concurrent use; its zone's mutex guards it.
//
// The model, for 64-bit Linux: a zone of size bytes starts with the pool's
// header (ngx_slab_pool_t, its 9 slots and their statistics), one page
// descriptor per page, and the pages of 4 KiB after them, page-aligned. An
// allocation of more than half a page takes whole contiguous pages, found
// first-fit in the list of free runs (a freed run joins its free
// neighbours and goes to the front of that list). A smaller one takes a
// chunk of the next power of two (8 bytes at least) in the first page of
// that size with a free chunk, or in a new page; pages of chunks under 64
// bytes keep their bitmap in their first chunks.
package slab

import (
	"container/list"
	"math/bits"
)

const (
	// PageSize is the allocator's page, ngx_pagesize.
	PageSize   = 1 << pageShift
	pageShift  = 12
	minShift   = 3 // 8-byte chunks
	exactShift = 6 // 64-byte chunks: the bitmap fits in the descriptor
	// poolHeader is what ngx_slab_init takes before the page descriptors:
	// ngx_slab_pool_t, then (page shift - min shift) slots and as many
	// statistics.
	poolHeader = 200 + (pageShift-minShift)*(24+32)
	pageDesc   = 24 // ngx_slab_page_t
)

// Pool is one zone's allocator. The zero Pool has no pages; use New.
type Pool struct {
	freePages int
	free      list.List // runs of free pages (*run), nginx's pool->free order
	start     map[int]*list.Element
	end       map[int]int // end (exclusive) of each free run -> its start
	// slots are, per chunk shift, the pages of that size with a free
	// chunk, the one allocated from first.
	slots [pageShift]list.List
}

type run struct{ first, n int }

// page is one page cut into chunks of 1<<shift bytes.
type page struct {
	first       int // its index, for freeing
	shift       uint
	used, total int
	elem        *list.Element // in its slot while it has a free chunk
}

// Chunk is what Alloc returns and Free takes back: a chunk of a page, or
// whole pages.
type Chunk struct {
	page         *page
	first, pages int
}

// New returns the Pool of a zone of size bytes, all its pages free.
func New(size int64) *Pool {
	pages := int((size - poolHeader) / (PageSize + pageDesc))
	start := (poolHeader + int64(pages)*pageDesc + PageSize - 1) / PageSize * PageSize
	if m := pages - int((size-start)/PageSize); m > 0 {
		pages -= m
	}
	p := &Pool{start: map[int]*list.Element{}, end: map[int]int{}}
	if pages > 0 {
		p.insertRun(0, pages)
	}
	return p
}

// FreePages is how many pages are free: what resty.core's free_space
// counts (times PageSize).
func (p *Pool) FreePages() int { return p.freePages }

func (p *Pool) insertRun(first, n int) {
	p.start[first] = p.free.PushFront(&run{first, n})
	p.end[first+n] = first
	p.freePages += n
}

func (p *Pool) removeRun(first int) int {
	r := p.free.Remove(p.start[first]).(*run)
	delete(p.start, first)
	delete(p.end, first+r.n)
	p.freePages -= r.n
	return r.n
}

// allocPages takes n contiguous pages, first fit (ngx_slab_alloc_pages):
// the run keeps its place in the list with what is left of it.
func (p *Pool) allocPages(n int) (int, bool) {
	for e := p.free.Front(); e != nil; e = e.Next() {
		r := e.Value.(*run)
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
		p.freePages -= n
		return first, true
	}
	return 0, false
}

// freePagesAt gives n pages from first back, joined with the free runs
// around them, at the front of the list (ngx_slab_free_pages).
func (p *Pool) freePagesAt(first, n int) {
	if _, ok := p.start[first+n]; ok {
		n += p.removeRun(first + n)
	}
	if prev, ok := p.end[first]; ok {
		n += p.removeRun(prev)
		first = prev
	}
	p.insertRun(first, n)
}

// Alloc takes n bytes (ngx_slab_alloc_locked); ok is false when the zone
// has no room for them.
func (p *Pool) Alloc(n int) (c Chunk, ok bool) {
	if n > PageSize/2 {
		pages := (n + PageSize - 1) >> pageShift
		first, ok := p.allocPages(pages)
		return Chunk{first: first, pages: pages}, ok
	}
	shift := uint(minShift)
	if n > 1<<minShift {
		shift = uint(bits.Len(uint(n - 1)))
	}
	slot := &p.slots[shift]
	if e := slot.Front(); e != nil {
		pg := e.Value.(*page)
		pg.used++
		if pg.used == pg.total {
			slot.Remove(e)
			pg.elem = nil
		}
		return Chunk{page: pg}, true
	}
	first, ok := p.allocPages(1)
	if !ok {
		return c, false
	}
	pg := &page{first: first, shift: shift, used: 1, total: chunksPerPage(shift)}
	pg.elem = slot.PushFront(pg)
	return Chunk{page: pg}, true
}

// chunksPerPage is how many chunks of 1<<shift bytes a page gives: small
// chunks lose the first ones to the page's bitmap.
func chunksPerPage(shift uint) int {
	n := PageSize >> shift
	if shift < exactShift {
		n -= max(n/((1<<shift)*8), 1)
	}
	return n
}

// Free gives back what Alloc returned (ngx_slab_free_locked); a page whose
// chunks are all free again goes back to the free pages.
func (p *Pool) Free(c Chunk) {
	pg := c.page
	if pg == nil {
		p.freePagesAt(c.first, c.pages)
		return
	}
	pg.used--
	switch {
	case pg.used == 0:
		if pg.elem != nil {
			p.slots[pg.shift].Remove(pg.elem)
			pg.elem = nil
		}
		p.freePagesAt(pg.first, 1)
	case pg.elem == nil:
		pg.elem = p.slots[pg.shift].PushFront(pg)
	}
}
