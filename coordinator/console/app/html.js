// htm bound to preact: components as tagged templates, no compiler.
import { h } from "preact";
import htm from "htm";

export const html = htm.bind(h);
