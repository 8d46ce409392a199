import assert from "node:assert/strict";
import { test } from "node:test";
import { Script } from "node:vm";
import { loadDashboardAssets } from "../../../../src/router/dashboard/assets.js";
import { APP_JS } from "../../../../src/router/dashboard/assets/app-script.js";
import { loginPage, PAGE_HTML } from "../../../../src/router/dashboard/assets/page.js";

void test("the embedded browser script is valid JavaScript", () => {
  assert.doesNotThrow(() => new Script(APP_JS, { filename: "app.js" }));
});

void test("every asset the page links to is served, uPlot included", () => {
  const assets = loadDashboardAssets();
  const linked = [...PAGE_HTML.matchAll(/dashboard\/assets\/([^"]+)"/g)].map((m) => m[1]!);
  assert.deepEqual(linked.sort(), ["app.js", "style.css", "uPlot.iife.min.js", "uPlot.min.css"]);
  for (const name of linked) assert.ok(assets.get(name)!.body.length > 500, name);
});

void test("the login page escapes its message", () => {
  assert.doesNotMatch(loginPage("<script>x</script>"), /<script>x/);
});
