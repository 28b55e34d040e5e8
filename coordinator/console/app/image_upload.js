// Sends a local file as an image's content (PUT /v1/images/{id}/content) with XMLHttpRequest,
// the one browser API that reports an upload's progress; the body streams from the file.
import { ApiError } from "./api.js";

/** Samples older than this leave the rate's window. */
const RATE_WINDOW_MS = 5000;

/**
 * @typedef {{bytes: number, total: number | null, rate: number | null, eta: number | null}} UploadProgress
 */

/**
 * @param {string} id the image awaiting its content
 * @param {File} file
 * @param {(p: UploadProgress) => void} onProgress
 * @returns {Promise<import("./images_model.js").Image>}
 */
export function uploadContent(id, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    /** @type {[number, number][]} */
    let samples = [];
    xhr.open("PUT", `/v1/images/${encodeURIComponent(id)}/content`);
    xhr.setRequestHeader("X-Plinth-Session", "1");
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => {
      const now = performance.now();
      samples = [...samples, /** @type {[number, number]} */ ([now, e.loaded])]
        .filter(([at], i, all) => i === all.length - 1 || now - at <= RATE_WINDOW_MS);
      const total = e.lengthComputable ? e.total : file.size;
      const [first, last] = [samples[0], samples[samples.length - 1]];
      const rate = last[0] > first[0] ? ((last[1] - first[1]) * 1000) / (last[0] - first[0]) : null;
      onProgress({ bytes: e.loaded, total, rate: rate || null, eta: rate ? Math.max(0, (total - e.loaded) / rate) : null });
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "the upload was interrupted", undefined));
    xhr.onload = () => {
      /** @type {any} */
      let body = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(body);
        return;
      }
      const err = body && body.error ? body.error : {};
      reject(new ApiError(xhr.status, err.code || "http_error", err.message || xhr.statusText, err.field));
    };
    xhr.send(file);
  });
}
