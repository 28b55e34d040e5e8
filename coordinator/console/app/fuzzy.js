// Fuzzy matching for the lists' instant search: every character of the query appears in
// order; contiguous runs and matches at word starts score higher.

/**
 * The score of `query` (lower case) in `text` (lower case), or -1 when it does not match.
 * @param {string} query
 * @param {string} text
 */
export function fuzzyScore(query, text) {
  if (query === "") return 0;
  const direct = text.indexOf(query);
  if (direct >= 0) return 1000 - direct + (direct === 0 || isBoundary(text, direct) ? 500 : 0);
  let score = 0;
  let at = 0;
  let run = 0;
  for (const ch of query) {
    if (ch === " ") continue;
    const found = text.indexOf(ch, at);
    if (found < 0) return -1;
    run = found === at ? run + 1 : 0;
    score += 1 + run * 2 + (isBoundary(text, found) ? 3 : 0);
    at = found + 1;
  }
  return score;
}

/** @param {string} text @param {number} i */
function isBoundary(text, i) {
  return i === 0 || " -_./:".includes(text[i - 1]);
}
