// The command palette (Ctrl-K / Cmd-K) over hosts, instances, images, bare metal and IPs, and
// `/` to focus the screen's search. The lists are read from the API when the palette opens
// (the session's own: a tenant is answered its resources only) and kept for that opening; a
// result's Enter goes to its resource's page.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { listAll } from "./api.js";
import { fuzzyScore } from "./fuzzy.js";
import { Dialog } from "./ui/dialog.js";

/**
 * @typedef {"host" | "instance" | "image" | "baremetal" | "eip"} Kind
 * @typedef {{kind: Kind, id: string, label: string, sub: string, hay: string, href: string}} Item
 * @typedef {import("../types/api").components["schemas"]} S
 */

/** Results shown at most (the best ones). */
const MAX_RESULTS = 50;

/**
 * Where each kind's list is, who may read it, and how one of its items shows and links.
 * @type {{kind: Kind, path: string, admin: boolean, item: (x: any) => Omit<Item, "hay" | "kind">}[]}
 */
const SOURCES = [
  {
    kind: "host", path: "/v1/hosts", admin: true,
    item: (/** @type {S["Host"]} */ h) => ({
      id: h.id, label: h.id, sub: `${h.hostname} · ${h.ip} · ${h.cluster_id}`,
      href: `#/hosts/${encodeURIComponent(h.id)}`,
    }),
  },
  {
    kind: "instance", path: "/v1/instances", admin: false,
    item: (/** @type {S["Instance"]} */ i) => ({
      id: i.id, label: i.name, sub: `${i.id}${i.host_ip ? ` · ${i.host_ip}` : ""}`,
      href: `#/instances/${encodeURIComponent(i.id)}`,
    }),
  },
  {
    kind: "image", path: "/v1/images", admin: false,
    item: (/** @type {S["Image"]} */ i) => ({
      id: i.id, label: i.name, sub: i.id,
      href: `#/images?q=${encodeURIComponent(i.name)}`,
    }),
  },
  {
    kind: "baremetal", path: "/v1/baremetal", admin: false,
    item: (/** @type {S["Baremetal"]} */ b) => ({
      id: b.id, label: b.name, sub: `${b.id} · ${b.ipmi_ip}`,
      href: `#/baremetal/${encodeURIComponent(b.id)}`,
    }),
  },
  {
    kind: "eip", path: "/v1/eips", admin: false,
    item: (/** @type {S["Eip"]} */ e) => ({
      id: e.id, label: e.address, sub: `${e.id}${e.instance_id ? ` · ${e.instance_id}` : ""}`,
      href: `#/network?q=${encodeURIComponent(e.address)}`,
    }),
  },
];

/** @param {EventTarget | null} el whether typing there is typing text */
function isField(el) {
  if (!(el instanceof HTMLElement)) return false;
  if (el.isContentEditable) return true;
  const tag = el.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  if (tag !== "INPUT") return false;
  const type = /** @type {HTMLInputElement} */ (el).type;
  return !["checkbox", "radio", "button", "submit", "reset", "range", "color", "file"].includes(type);
}

/** The current screen's search box: an input with class "search" in the main area, shown. */
function screenSearch() {
  for (const el of document.querySelectorAll("main input.search")) {
    if (el instanceof HTMLInputElement && el.checkVisibility()) return el;
  }
  return null;
}

/**
 * The best `MAX_RESULTS` items for `query` (lower case), best first.
 * @param {Item[]} items @param {string} query
 */
function best(items, query) {
  /** @type {[Item, number][]} */
  const top = [];
  for (const it of items) {
    const s = fuzzyScore(query, it.hay);
    if (s < 0) continue;
    if (top.length === MAX_RESULTS && s <= top[top.length - 1][1]) continue;
    let i = top.length;
    while (i > 0 && top[i - 1][1] < s) i--;
    top.splice(i, 0, [it, s]);
    if (top.length > MAX_RESULTS) top.pop();
  }
  return top.map((x) => x[0]);
}

const OPEN_EVENT = "plinth-palette-open";

/** Opens the palette (the top bar's button: there is no Ctrl-K on a phone). */
export function openPalette() {
  document.dispatchEvent(new Event(OPEN_EVENT));
}

/** @param {{session: import("./app.js").Session, feed: import("./events.js").ChangeFeed}} props */
export function Palette({ session }) {
  const [open, setOpen] = useState(false);

  useEffect(() => {
    const show = () => setOpen(true);
    document.addEventListener(OPEN_EVENT, show);
    return () => document.removeEventListener(OPEN_EVENT, show);
  }, []);

  useEffect(() => {
    /** @param {KeyboardEvent} e */
    function onKey(e) {
      if ((e.ctrlKey || e.metaKey) && !e.altKey && !e.shiftKey && e.key.toLowerCase() === "k") {
        e.preventDefault();
        setOpen(true);
        return;
      }
      if (e.key === "/" && !e.ctrlKey && !e.metaKey && !e.altKey && !isField(e.target)) {
        if (document.querySelector("dialog[open]")) return;
        const search = screenSearch();
        if (!search) return;
        e.preventDefault();
        search.focus();
        search.select();
      }
    }
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);

  if (!open) return null;
  return html`<${PaletteDialog} admin=${session.role === "admin"} onClose=${() => setOpen(false)} />`;
}

/** @param {{admin: boolean, onClose: () => void}} props */
function PaletteDialog({ admin, onClose }) {
  const [query, setQuery] = useState("");
  const [active, setActive] = useState(0);
  const [version, setVersion] = useState(0);
  /** @type {{current: Item[]}} every item read for this opening */
  const items = useRef([]);
  const [pending, setPending] = useState(() => SOURCES.filter((s) => admin || !s.admin).length);
  const listRef = useRef(/** @type {HTMLUListElement | null} */ (null));
  const inputRef = useRef(/** @type {HTMLInputElement | null} */ (null));

  // After the dialog's showModal (a child's effect runs first), the query box has the focus.
  useEffect(() => {
    if (inputRef.current) inputRef.current.focus();
  }, []);

  useEffect(() => {
    let live = true;
    for (const src of SOURCES) {
      if (src.admin && !admin) continue;
      listAll(src.path)
        .then((list) => {
          if (!live) return;
          for (const x of list) {
            const it = src.item(x);
            items.current.push({ ...it, kind: src.kind, hay: `${it.label} ${it.sub}`.toLowerCase() });
          }
          setVersion((v) => v + 1);
        })
        .catch(() => {
          // That list is not offered to this session (or could not be read): leave it out.
        })
        .finally(() => live && setPending((n) => n - 1));
    }
    return () => {
      live = false;
    };
  }, []);

  const q = query.trim().toLowerCase();
  const results = useMemo(() => (q ? best(items.current, q) : []), [q, version]);
  const at = Math.min(active, Math.max(0, results.length - 1));

  useEffect(() => {
    const el = listRef.current && listRef.current.querySelector(`[data-index="${at}"]`);
    if (el) el.scrollIntoView({ block: "nearest" });
  }, [at, results]);

  /** @param {Item} it */
  function go(it) {
    onClose();
    location.hash = it.href.slice(1);
  }

  /** @param {KeyboardEvent} e */
  function onKeyDown(e) {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (results.length === 0) return;
      const step = e.key === "ArrowDown" ? 1 : -1;
      setActive((at + step + results.length) % results.length);
    } else if (e.key === "Home" && results.length) {
      e.preventDefault();
      setActive(0);
    } else if (e.key === "End" && results.length) {
      e.preventDefault();
      setActive(results.length - 1);
    } else if (e.key === "Enter") {
      e.preventDefault();
      if (results[at]) go(results[at]);
    }
  }

  const status = !q
    ? (pending > 0 ? t("palette.loading") : t("palette.hint"))
    : results.length === 0
      ? (pending > 0 ? t("palette.loading") : t("palette.none"))
      : t("palette.results", { n: results.length });
  const expanded = results.length > 0;

  return html`
    <${Dialog} title=${t("palette.title")} onClose=${onClose} testid="palette">
      <div class="palette">
        <input class="palette-input" type="text" role="combobox" autocomplete="off" spellcheck=${false}
          aria-label=${t("palette.input")} placeholder=${t("palette.placeholder")}
          aria-autocomplete="list" aria-expanded=${expanded ? "true" : "false"}
          aria-controls=${expanded ? "palette-list" : undefined}
          aria-activedescendant=${expanded ? `palette-opt-${at}` : undefined}
          value=${query} autofocus ref=${inputRef}
          onInput=${(/** @type {any} */ e) => {
            setQuery(e.currentTarget.value);
            setActive(0);
          }}
          onKeyDown=${onKeyDown} />
        <p class="palette-status" role="status" data-testid="palette-status">${status}</p>
        ${expanded && html`
          <ul class="palette-list" id="palette-list" role="listbox" aria-label=${t("palette.list")} ref=${listRef}>
            ${results.map((it, i) => html`
              <li id=${`palette-opt-${i}`} role="option" aria-selected=${i === at ? "true" : "false"}
                class=${i === at ? "palette-option is-active" : "palette-option"} data-index=${i}
                data-kind=${it.kind} data-id=${it.id} data-href=${it.href}
                onMouseMove=${() => i !== at && setActive(i)}
                onClick=${() => go(it)}>
                <span class=${`palette-kind kind-${it.kind}`}>${t(/** @type {any} */ (`palette.kind.${it.kind}`))}</span>
                <span class="palette-label" data-raw>${it.label}</span>
                <span class="palette-sub" data-raw>${it.sub}</span>
              </li>`)}
          </ul>`}
        <p class="palette-keys">${t("palette.keys")}</p>
      </div>
    <//>`;
}
