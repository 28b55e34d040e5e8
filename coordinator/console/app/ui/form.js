// Forms: an API error shown next to the field it names (`error.field`, a JSON path such as
// `gateway` or `devices.usb[0]`), the rest above the buttons; a field with its label, hint
// and error wired for assistive technology.
import { cloneElement } from "preact";
import { useState } from "preact/hooks";
import { html } from "../html.js";
import { ApiError } from "../api.js";

/** @typedef {Record<string, string>} FieldErrors field path → message; "" for the form's own */

/**
 * Where an error belongs: under its field when the answer names one that the form shows,
 * else above the buttons.
 * @param {unknown} err
 * @param {string[]} fields the fields the form shows
 * @returns {FieldErrors}
 */
export function errorsOf(err, fields) {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ApiError && err.field) {
    const name = fields.find((f) => err.field === f || err.field?.startsWith(`${f}.`) || err.field?.startsWith(`${f}[`));
    if (name) return { [name]: message };
  }
  return { "": message };
}

/**
 * A form's errors and its busy flag; `submit(fields, f)` runs `f`, and an error it throws is
 * put next to its field.
 */
export function useForm() {
  const [errors, setErrors] = useState(/** @type {FieldErrors} */ ({}));
  const [busy, setBusy] = useState(false);
  /**
   * @template T
   * @param {string[]} fields
   * @param {() => Promise<T>} f
   * @returns {Promise<T | undefined>}
   */
  async function submit(fields, f) {
    setBusy(true);
    setErrors({});
    try {
      return await f();
    } catch (err) {
      setErrors(errorsOf(err, fields));
      return undefined;
    } finally {
      setBusy(false);
    }
  }
  return { errors, setErrors, busy, submit };
}

/**
 * A labelled control with its hint and error. `children` is the control; it gets its id,
 * `aria-invalid` and `aria-describedby` from here (pass `name`, which is also the field path
 * API errors name).
 * @param {{label: string, name: string, error?: string, hint?: string, children: any}} props
 */
export function Field({ label, name, error, hint, children }) {
  const id = `f-${name.replace(/[^\w-]/g, "-")}`;
  const described = [hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ") || undefined;
  const control = children && children.props
    ? cloneElement(children, { id, name, "aria-invalid": error ? "true" : undefined, "aria-describedby": described })
    : children;
  return html`
    <div class=${error ? "field has-error" : "field"} data-field=${name}>
      <label for=${id}>${label}</label>
      ${control}
      ${hint && html`<p class="hint" id=${`${id}-hint`}>${hint}</p>`}
      ${error && html`<p class="field-error" id=${`${id}-error`} role="alert" data-raw>${error}</p>`}
    </div>`;
}

/** The form's own error (not about one field), if any. @param {{errors: FieldErrors}} props */
export function FormError({ errors }) {
  return errors[""] ? html`<p class="error" role="alert" data-raw data-testid="form-error">${errors[""]}</p>` : null;
}
