// A list that renders only the rows in view (plus a few either side), so ten thousand rows
// cost as much as thirty. Rows have one fixed height.
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "./html.js";

// Rows rendered beyond the view on each side: enough for a wheel step, few enough that a
// keystroke re-renders little more than what shows.
const OVERSCAN = 4;

/**
 * @template T
 * @param {{items: T[], rowHeight: number, renderRow: (item: T, index: number) => any,
 *   label: string, empty: any}} props
 */
export function VirtualList({ items, rowHeight, renderRow, label, empty }) {
  /** @type {{current: HTMLDivElement | null}} */
  const box = useRef(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);

  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    setHeight(el.clientHeight);
    return () => ro.disconnect();
  }, []);

  // A shorter list than the scroll position: back to where rows are.
  const maxTop = Math.max(0, items.length * rowHeight - height);
  const top = Math.min(scrollTop, maxTop);
  const first = Math.max(0, Math.floor(top / rowHeight) - OVERSCAN);
  const last = Math.min(items.length, Math.ceil((top + height) / rowHeight) + OVERSCAN);
  const rows = [];
  for (let i = first; i < last; i++) rows.push(renderRow(items[i], i));

  return html`
    <div class="vlist" ref=${box} role="rowgroup" aria-label=${label}
      onScroll=${(/** @type {any} */ e) => setScrollTop(e.currentTarget.scrollTop)}>
      ${items.length === 0 && html`<p class="empty">${empty}</p>`}
      <div class="vlist-space" style=${{ height: `${items.length * rowHeight}px` }}>
        <div class="vlist-rows" style=${{ transform: `translateY(${first * rowHeight}px)` }}>${rows}</div>
      </div>
    </div>`;
}
