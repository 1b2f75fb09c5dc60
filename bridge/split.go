package bridge

import (
	"strings"

	"github.com/rivo/uniseg"
)

// minBudget is the smallest piece Split cuts: below it a platform's limit is misconfigured.
const minBudget = 16

// Split cuts text into pieces that each measure at most budget, never inside a grapheme cluster (so
// neither a UTF-8 sequence nor an emoji with its skin tone, flag pair or ZWJ family is broken). It cuts
// after the last line break in the second half of a piece if there is one, else after the last space
// there, else between two grapheme clusters. Joining the pieces gives text back exactly. measure must
// be additive over grapheme clusters.
func Split(text string, budget int, measure func(string) int) []string {
	budget = max(budget, minBudget)
	if measure(text) <= budget {
		return []string{text}
	}
	var parts []string
	start, used := 0, 0 // the current piece is text[start:pos], measuring used
	lineCut, spaceCut := -1, -1
	lineUsed, spaceUsed := 0, 0
	g := uniseg.NewGraphemes(text)
	for g.Next() {
		from, to := g.Positions()
		cluster := text[from:to]
		cost := measure(cluster)
		// At most twice: a cut at an earlier break may leave too little room for this cluster.
		for used+cost > budget && from > start {
			cut, cutUsed := from, used
			switch {
			case lineCut > start && lineUsed*2 >= budget:
				cut, cutUsed = lineCut, lineUsed
			case spaceCut > start && spaceUsed*2 >= budget:
				cut, cutUsed = spaceCut, spaceUsed
			}
			parts = append(parts, text[start:cut])
			start, used = cut, used-cutUsed
			// A break after the cut still counts for the next piece, measured from the cut.
			lineCut, lineUsed = laterBreak(lineCut, lineUsed, cut, cutUsed)
			spaceCut, spaceUsed = laterBreak(spaceCut, spaceUsed, cut, cutUsed)
		}
		used += cost
		switch {
		case strings.ContainsRune(cluster, '\n'):
			lineCut, lineUsed = to, used
		case cluster == " " || cluster == "\t":
			spaceCut, spaceUsed = to, used
		}
	}
	if start < len(text) {
		parts = append(parts, text[start:])
	}
	return parts
}

func laterBreak(at, used, cut, cutUsed int) (int, int) {
	if at <= cut {
		return -1, 0
	}
	return at, used - cutUsed
}
