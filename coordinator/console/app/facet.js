// One facet of a list: its values with how many rows each would show; several can be chosen.
import { html } from "./html.js";

/**
 * @param {{title: string, name: string, values: {value: string, label: string, count: number, raw?: boolean}[],
 *   selected: Set<string>, onToggle: (value: string) => void}} props
 */
export function Facet({ title, name, values, selected, onToggle }) {
  return html`
    <fieldset class="facet" data-facet=${name}>
      <legend>${title}</legend>
      ${values.map((v) => html`
        <label class=${v.count === 0 && !selected.has(v.value) ? "facet-value is-zero" : "facet-value"}>
          <input type="checkbox" checked=${selected.has(v.value)} value=${v.value}
            onChange=${() => onToggle(v.value)} />
          <span data-raw=${v.raw ? "" : undefined}>${v.label}</span>
          <span class="count" data-raw>${v.count}</span>
        </label>`)}
    </fieldset>`;
}
