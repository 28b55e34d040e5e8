// Starts the console: the app component into #app, in the language chosen before.
import { render } from "preact";
import { html } from "./html.js";
import { App } from "./app.js";
import { lang } from "./i18n.js";

document.documentElement.lang = lang();
const root = document.getElementById("app");
if (root) render(html`<${App} />`, root);
