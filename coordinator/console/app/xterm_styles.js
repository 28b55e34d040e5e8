// xterm.js under the console's CSP (`style-src 'self'`, no 'unsafe-inline'): its DOM renderer
// styles the terminal with <style> elements it creates and fills (theme colours, font, cell
// size), which that policy refuses (and reports as an error). The CSSOM is not subject to
// style-src, so instead of relaxing the policy, while a console is open every <style> the
// page creates is a stand-in element whose text goes into a constructed stylesheet adopted
// by the document. No other code of the console makes <style> elements (the policy would
// refuse them anyway), so nothing else is affected. Left out: xterm's 24-bit colours, set
// as style attributes, which the policy refuses; serial consoles use the 16 ANSI colours.

let users = 0;
/** @type {typeof document.createElement | null} */
let native = null;

/** A stand-in for a <style> element: its text is a constructed, adopted stylesheet. */
function standIn(/** @type {Document} */ doc) {
  const el = /** @type {HTMLElement} */ (/** @type {any} */ (native).call(doc, "plinth-style"));
  el.hidden = true;
  const sheet = new CSSStyleSheet();
  let text = "";
  let adopted = false;
  const adopt = () => {
    if (!adopted) {
      doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet];
      adopted = true;
    }
  };
  Object.defineProperty(el, "textContent", {
    get: () => text,
    set: (v) => {
      text = String(v ?? "");
      sheet.replaceSync(text);
      adopt();
    },
  });
  el.remove = () => {
    doc.adoptedStyleSheets = doc.adoptedStyleSheets.filter((s) => s !== sheet);
    adopted = false;
    Element.prototype.remove.call(el);
  };
  return el;
}

/** While a terminal is open: <style> elements become stand-ins. @returns {() => void} undo */
export function useCssomStyles() {
  if (users++ === 0) {
    native = document.createElement;
    const orig = native;
    document.createElement = /** @type {any} */ (function (/** @type {string} */ tag, /** @type {any} */ opts) {
      if (String(tag).toLowerCase() === "style") return standIn(document);
      return orig.call(document, tag, opts);
    });
  }
  let done = false;
  return () => {
    if (done) return;
    done = true;
    if (--users === 0 && native) {
      document.createElement = native;
      native = null;
    }
  };
}
