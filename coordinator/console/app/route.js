// The view lives in the URL's fragment (#/hosts?q=web&state=locked), so a filtered view can be
// shared and reloaded, and the coordinator serves one page for every view.
import { useEffect, useState } from "preact/hooks";

/** @typedef {{path: string, params: URLSearchParams}} Route */

/** @returns {Route} */
export function currentRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const q = hash.indexOf("?");
  return {
    path: q < 0 ? hash : hash.slice(0, q),
    params: new URLSearchParams(q < 0 ? "" : hash.slice(q + 1)),
  };
}

/** @returns {Route} */
export function useRoute() {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const update = () => setRoute(currentRoute());
    addEventListener("hashchange", update);
    return () => removeEventListener("hashchange", update);
  }, []);
  return route;
}

/**
 * Puts `params` in the current view's URL without a history entry per keystroke.
 * @param {string} path
 * @param {Record<string, string>} params empty values are left out
 */
export function replaceParams(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  history.replaceState(null, "", `#${path}${s ? `?${s}` : ""}`);
}
