// Add or change a segment. The form's own checks (network_check.js) run as a field is left
// and before sending; what only the API can say (an overlap, a reserved range) comes back
// under the field it names, or above the buttons when it names none. Nothing is sent while a
// check fails.
import { useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { call } from "./api.js";
import { Dialog } from "./ui/dialog.js";
import { Field, FormError, useForm } from "./ui/form.js";
import { checkCidr, checkGateway, checkNic, checkRoutes, checkVlan } from "./network_check.js";

/** @typedef {import("../types/api").components["schemas"]["Segment"]} Segment */
/** @typedef {import("./network_check.js").Problem} Problem */

const FIELDS = ["name", "ip_version", "cidr", "gateway", "nic", "vlan", "route_policy", "routes", "state"];

/** @param {string} text */
function lines(text) {
  return text.split(/[\n,]/).map((l) => l.trim()).filter(Boolean);
}

/** @param {Problem | null} p */
function say(p) {
  return p ? t(p.key, p.vars) : "";
}

/**
 * @param {{segment?: Segment, onClose: () => void, onSaved: (s: Segment) => void}} props
 */
export function SegmentForm({ segment, onClose, onSaved }) {
  const editing = !!segment;
  const [v, setV] = useState(() => ({
    name: segment ? segment.name : "",
    cidr: segment ? segment.cidr : "",
    gateway: segment ? segment.gateway : "",
    nic: segment ? segment.nic : "",
    vlan: segment && segment.vlan != null ? String(segment.vlan) : "",
    route_policy: segment ? segment.route_policy : "default",
    routes: segment && segment.route_policy === "specified" ? segment.routes.join("\n") : "",
    state: segment ? segment.state : "available",
  }));
  const { errors, setErrors, busy, submit } = useForm();

  /** @param {string} field @param {typeof v} values */
  function check(field, values) {
    switch (field) {
      case "name": return values.name.trim() ? "" : say({ key: "network.check.required" });
      case "cidr": return editing ? "" : say(checkCidr(values.cidr));
      case "gateway": return say(checkGateway(values.gateway, values.cidr));
      case "nic": return say(checkNic(values.nic));
      case "vlan": return say(checkVlan(values.vlan));
      case "routes": return values.route_policy === "specified" ? say(checkRoutes(lines(values.routes), values.cidr)) : "";
      default: return "";
    }
  }

  /** @param {keyof typeof v} field @param {string} value */
  function set(field, value) {
    const next = { ...v, [field]: value };
    setV(next);
    // An error already shown follows the value as it is typed.
    if (errors[field]) setErrors({ ...errors, [field]: check(field, next) });
  }

  /** @param {string} field */
  function blur(field) {
    const msg = check(field, v);
    if (msg || errors[field]) setErrors({ ...errors, [field]: msg });
  }

  /** @param {Event} e */
  async function save(e) {
    e.preventDefault();
    /** @type {Record<string, string>} */
    const found = {};
    for (const f of FIELDS) {
      const msg = check(f, v);
      if (msg) found[f] = msg;
    }
    if (Object.keys(found).length) {
      setErrors(found);
      setTimeout(() => {
        const first = document.querySelector(".segment-form .has-error input, .segment-form .has-error textarea");
        if (first instanceof HTMLElement) first.focus();
      }, 0);
      return;
    }
    const vlan = v.vlan.trim() ? Number(v.vlan.trim()) : null;
    const routes = v.route_policy === "specified" ? lines(v.routes) : [];
    const saved = await submit(FIELDS, async () => {
      if (!segment) {
        return call("POST", "/v1/segments", {
          name: v.name.trim(), cidr: v.cidr.trim(), gateway: v.gateway.trim(), nic: v.nic, vlan,
          route_policy: v.route_policy, routes,
        });
      }
      /** @type {Record<string, unknown>} */
      const patch = {};
      if (v.name.trim() !== segment.name) patch.name = v.name.trim();
      if (v.gateway.trim() !== segment.gateway) patch.gateway = v.gateway.trim();
      if (v.nic !== segment.nic) patch.nic = v.nic;
      if (vlan !== (segment.vlan ?? null)) patch.vlan = vlan;
      if (v.route_policy !== segment.route_policy) patch.route_policy = v.route_policy;
      if (v.route_policy === "specified" && routes.join(",") !== segment.routes.join(",")) patch.routes = routes;
      if (v.state !== segment.state) patch.state = v.state;
      if (Object.keys(patch).length === 0) return segment;
      return call("PATCH", `/v1/segments/${encodeURIComponent(segment.id)}`, patch);
    });
    if (saved) onSaved(saved);
  }

  const input = (/** @type {keyof typeof v} */ f) => ({
    value: v[f],
    onInput: (/** @type {any} */ e) => set(f, e.currentTarget.value),
    onBlur: () => blur(f),
  });

  return html`
    <${Dialog} title=${editing ? t("network.form.edit_title") : t("network.form.new_title")} onClose=${onClose} testid="segment-form">
      <form class="form segment-form" novalidate onSubmit=${save}>
        <${Field} label=${t("network.form.name")} name="name" error=${errors.name}>
          <input autocomplete="off" ...${input("name")} />
        <//>
        <${Field} label=${t("network.form.cidr")} name="cidr" error=${errors.cidr}
          hint=${editing ? t("network.form.cidr_fixed") : t("network.form.cidr_hint")}>
          <input autocomplete="off" class="mono" disabled=${editing} placeholder="203.0.113.0/24" ...${input("cidr")} />
        <//>
        ${errors.ip_version && html`<p class="field-error" role="alert" data-raw>${errors.ip_version}</p>`}
        <${Field} label=${t("network.form.gateway")} name="gateway" error=${errors.gateway} hint=${t("network.form.gateway_hint")}>
          <input autocomplete="off" class="mono" placeholder="203.0.113.1" ...${input("gateway")} />
        <//>
        <${Field} label=${t("network.form.nic")} name="nic" error=${errors.nic} hint=${t("network.form.nic_hint")}>
          <input autocomplete="off" class="mono" placeholder=${t("network.form.nic_placeholder")} ...${input("nic")} />
        <//>
        <${Field} label=${t("network.form.vlan")} name="vlan" error=${errors.vlan} hint=${t("network.form.vlan_hint")}>
          <input autocomplete="off" inputmode="numeric" ...${input("vlan")} />
        <//>
        <${Field} label=${t("network.form.route_policy")} name="route_policy" error=${errors.route_policy}>
          <select value=${v.route_policy} onChange=${(/** @type {any} */ e) => set("route_policy", e.currentTarget.value)}>
            <option value="default">${t("network.route.default")}</option>
            <option value="specified">${t("network.route.specified")}</option>
            <option value="none">${t("network.route.none")}</option>
          </select>
        <//>
        ${v.route_policy === "specified" && html`
          <${Field} label=${t("network.form.routes")} name="routes" error=${errors.routes} hint=${t("network.form.routes_hint")}>
            <textarea rows="3" class="mono" ...${input("routes")}></textarea>
          <//>`}
        ${editing && html`
          <${Field} label=${t("network.form.state")} name="state" error=${errors.state}>
            <select value=${v.state} onChange=${(/** @type {any} */ e) => set("state", e.currentTarget.value)}>
              <option value="available">${t("network.state.available")}</option>
              <option value="disabled">${t("network.state.disabled")}</option>
            </select>
          <//>`}
        <${FormError} errors=${errors} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled=${busy}>${editing ? t("network.form.save") : t("network.form.create")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}
