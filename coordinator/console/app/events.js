// The change feed (GET /v1/events) followed with a streaming fetch: EventSource cannot send
// Last-Event-ID on a first connect nor run under our fetch wrapper. One follower per signed-in
// page; screens subscribe to the types they show and patch their rows by id.

/**
 * @typedef {{id: number, type: string, resource_id: string, tenant_id?: string | null,
 *   data: Record<string, any>, at: number}} ChangeEvent
 * @typedef {{live: boolean, staleSince: Date | null}} FeedStatus
 */

/** No byte for this long (the server sends a keep-alive every 15 s): the stream is dead. */
const SILENCE_MS = 40000;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 15000;

export class ChangeFeed {
  constructor() {
    /** @type {number | null} */
    this.lastId = null;
    /** @type {Set<(e: ChangeEvent) => void>} */
    this.listeners = new Set();
    /** @type {Set<() => void>} */
    this.reloadListeners = new Set();
    /** @type {Set<(s: FeedStatus) => void>} */
    this.statusListeners = new Set();
    /** @type {FeedStatus} */
    this.status = { live: false, staleSince: new Date() };
    this.stopped = false;
    /** @type {AbortController | null} */
    this.abort = null;
    this.retry = RETRY_MIN_MS;
    this.connects = 0;
    /** @type {Promise<void>} resolves once the first stream is open */
    this.opened = new Promise((resolve) => {
      this.markOpened = resolve;
    });
  }

  /** @param {(e: ChangeEvent) => void} f @returns {() => void} */
  onEvent(f) {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  /** @param {() => void} f @returns {() => void} */
  onReload(f) {
    this.reloadListeners.add(f);
    return () => this.reloadListeners.delete(f);
  }

  /** @param {(s: FeedStatus) => void} f @returns {() => void} */
  onStatus(f) {
    this.statusListeners.add(f);
    f(this.status);
    return () => this.statusListeners.delete(f);
  }

  /** @param {boolean} live */
  setLive(live) {
    if (live === this.status.live) return;
    this.status = { live, staleSince: live ? null : new Date() };
    for (const f of this.statusListeners) f(this.status);
  }

  start() {
    this.loop();
  }

  stop() {
    this.stopped = true;
    if (this.abort) this.abort.abort();
  }

  async loop() {
    while (!this.stopped) {
      try {
        await this.follow();
      } catch {
        // A dropped connection or a refused request: retry below.
      }
      if (this.stopped) return;
      this.setLive(false);
      await new Promise((r) => setTimeout(r, this.retry));
      this.retry = Math.min(this.retry * 2, RETRY_MAX_MS);
    }
  }

  async follow() {
    const abort = new AbortController();
    this.abort = abort;
    /** @type {Record<string, string>} */
    const headers = { Accept: "text/event-stream" };
    if (this.lastId !== null) headers["Last-Event-ID"] = String(this.lastId);
    const resp = await fetch("/v1/events", { headers, credentials: "same-origin", signal: abort.signal });
    if (!resp.ok || !resp.body) throw new Error(`events: ${resp.status}`);
    this.setLive(true);
    this.retry = RETRY_MIN_MS;
    this.connects += 1;
    if (this.markOpened) this.markOpened();
    // Reconnected without having seen an event, there is no id to resume from: what changed
    // while the stream was down is only in the lists, so they are read again.
    if (this.connects > 1 && this.lastId === null) for (const f of this.reloadListeners) f();
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let watchdog = setTimeout(() => abort.abort(), SILENCE_MS);
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        clearTimeout(watchdog);
        watchdog = setTimeout(() => abort.abort(), SILENCE_MS);
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          this.dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } finally {
      clearTimeout(watchdog);
    }
  }

  /** One SSE block: `id:`, `event:`, `data:` lines; `:` lines are keep-alive comments. */
  /** @param {string} block */
  dispatch(block) {
    let id = null;
    let type = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = Number(value);
      else if (field === "event") type = value;
      else if (field === "data") data.push(value);
    }
    if (id !== null && Number.isFinite(id)) this.lastId = id;
    if (type === "reload") {
      for (const f of this.reloadListeners) f();
      return;
    }
    if (data.length === 0) return;
    /** @type {ChangeEvent} */
    let event;
    try {
      event = JSON.parse(data.join("\n"));
    } catch {
      return;
    }
    for (const f of this.listeners) f(event);
  }
}
