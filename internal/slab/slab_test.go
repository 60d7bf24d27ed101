package slab

import "testing"

func TestChunksPerPage(t *testing.T) {
	for _, tc := range []struct {
		shift uint
		want  int
	}{{3, 504}, {4, 254}, {5, 127}, {6, 64}, {7, 32}, {11, 2}} {
		if got := chunksPerPage(tc.shift); got != tc.want {
			t.Errorf("chunksPerPage(%d) = %d, want %d", tc.shift, got, tc.want)
		}
	}
}

// TestNewPages pins the pages a zone's size gives, after the pool's
// header and one descriptor per page, as ngx_slab_init counts them.
func TestNewPages(t *testing.T) {
	for _, tc := range []struct {
		size int64
		want int
	}{{1 << 20, 254}, {12 << 10, 2}, {32 << 10, 7}, {10 << 20, 2544}, {4096, 0}, {0, 0}} {
		if got := New(tc.size).FreePages(); got != tc.want {
			t.Errorf("New(%d): %d pages, want %d", tc.size, got, tc.want)
		}
	}
}

func TestChunks(t *testing.T) {
	p := New(1 << 20)
	c, _ := p.Alloc(100)
	d, _ := p.Alloc(100)
	if p.FreePages() != 253 {
		t.Errorf("two chunks of 128: %d pages free, want 253", p.FreePages())
	}
	// A page of 32 chunks of 128 bytes: the 33rd needs a new page.
	var held []Chunk
	for range 30 {
		c, _ := p.Alloc(128)
		held = append(held, c)
	}
	if p.FreePages() != 253 {
		t.Errorf("32 chunks of 128: %d pages free, want 253", p.FreePages())
	}
	e, _ := p.Alloc(65)
	if p.FreePages() != 252 {
		t.Errorf("33rd chunk of 128: %d pages free, want 252", p.FreePages())
	}
	// Sizes round up to powers of two, 8 bytes at least.
	small, _ := p.Alloc(1)
	if small.page.shift != 3 {
		t.Errorf("1 byte: chunk shift %d, want 3", small.page.shift)
	}
	p.Free(small)
	for _, c := range append(held, c, d, e) {
		p.Free(c)
	}
	if p.FreePages() != 254 {
		t.Errorf("emptied pages go back: %d pages free, want 254", p.FreePages())
	}
}

// TestPages covers allocations of more than half a page: whole pages,
// first fit, freed runs joined with their free neighbours.
func TestPages(t *testing.T) {
	p := New(32 << 10) // 7 pages
	a, ok := p.Alloc(5000)
	if !ok || p.FreePages() != 5 {
		t.Fatalf("5000 bytes take 2 pages: ok %v, %d free", ok, p.FreePages())
	}
	b, _ := p.Alloc(PageSize)
	c, _ := p.Alloc(PageSize/2 + 1)
	if p.FreePages() != 3 {
		t.Fatalf("%d pages free, want 3", p.FreePages())
	}
	p.Free(b) // a hole of one page between a and c
	if _, ok := p.Alloc(4 * PageSize); ok {
		t.Error("4 pages from runs of 1 and 3 pages")
	}
	p.Free(a) // joins the hole: pages 0-2
	d, ok := p.Alloc(3 * PageSize)
	if !ok || d.first != 0 {
		t.Errorf("3 pages after the join: ok %v, first %d, want page 0", ok, d.first)
	}
	p.Free(c)
	p.Free(d)
	if _, ok := p.Alloc(7 * PageSize); !ok {
		t.Error("all 7 pages, every run joined again: no room")
	}
}

// TestFull fills a zone with chunks: a full zone refuses, and one freed
// chunk makes room again in its page.
func TestFull(t *testing.T) {
	p := New(12 << 10) // 2 pages of 64 chunks of 64 bytes
	var last Chunk
	n := 0
	for ; ; n++ {
		c, ok := p.Alloc(64)
		if !ok {
			break
		}
		last = c
	}
	if n != 128 {
		t.Errorf("the zone held %d chunks of 64, want 128", n)
	}
	p.Free(last)
	if _, ok := p.Alloc(33); !ok {
		t.Error("a freed chunk's room refused")
	}
	if _, ok := p.Alloc(16); ok {
		t.Error("a new size found a page in a full zone")
	}
}
