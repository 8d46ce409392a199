/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`) as text: where the samples land by self
 * time and by inclusive time, per function and per area (tasklb code, undici, Node's http
 * internals, GC, idle). Usage: node dist/bench/profile-summary.js <file.cpuprofile> [top=25]
 */
import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

function shortUrl(url: string): string {
  const i = url.indexOf("/node_modules/");
  if (i >= 0) return url.slice(i + 14);
  const j = url.search(/\/(src|bench)\//);
  if (j >= 0) return url.slice(j + 1);
  return url.replace(/^node:/, "");
}

export function area(url: string, fn: string): string {
  if (fn === "(garbage collector)") return "GC";
  if (fn === "(idle)") return "idle";
  if (fn === "(program)") return "V8/native (program)";
  if (url.includes("/node_modules/undici/")) return "undici";
  if (url.includes("/src/shared/")) return "tasklb shared (forward, headers…)";
  if (url.includes("/src/sidecar/")) return "tasklb sidecar";
  if (url.includes("/src/router/")) return "tasklb router";
  if (url.includes("/src/telemetry/")) return "tasklb telemetry";
  if (url.includes("/node_modules/")) return "other npm";
  if (
    /^node:(_http|http|internal\/http|internal\/streams|_stream|stream)/.test(url) ||
    url.includes("_http_")
  )
    return "node http/streams";
  if (
    url.startsWith("node:net") ||
    url.includes("internal/net") ||
    url.includes("stream_base") ||
    url === "node:net"
  )
    return "node net";
  if (url.startsWith("node:")) return "node other";
  if (url === "") return "native";
  return "other";
}

export function summarizeProfile(profile: Profile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (n: ProfileNode) =>
    `${n.callFrame.functionName || "(anonymous)"}  ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const id of profile.samples) {
    const n = byId.get(id);
    if (!n) continue;
    total++;
    if (n.callFrame.functionName === "(idle)") idle++;
    const k = key(n);
    self.set(k, (self.get(k) ?? 0) + 1);
    const a = area(n.callFrame.url, n.callFrame.functionName);
    areas.set(a, (areas.get(a) ?? 0) + 1);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const node = byId.get(cur)!;
      const kk = key(node);
      if (seen.has(kk)) continue;
      seen.add(kk);
      incl.set(kk, (incl.get(kk) ?? 0) + 1);
    }
  }
  const busy = total - idle;
  const pct = (v: number, of: number) => ((100 * v) / Math.max(1, of)).toFixed(1).padStart(5) + "%";
  const lines: string[] = [];
  lines.push(
    `${total} samples, ${busy} not idle (${pct(busy, total).trim()}). Percentages below are of non-idle samples.`,
  );
  lines.push("", "By area (self time):");
  for (const [a, v] of [...areas].filter(([a]) => a !== "idle").sort((x, y) => y[1] - x[1]))
    lines.push(`  ${pct(v, busy)}  ${a}`);
  lines.push("", `Top ${top} functions by self time:`);
  for (const [k, v] of [...self]
    .filter(([k]) => !k.startsWith("(idle)"))
    .sort((x, y) => y[1] - x[1])
    .slice(0, top))
    lines.push(`  ${pct(v, busy)}  ${k}`);
  lines.push("", `Top ${top} functions by inclusive time:`);
  for (const [k, v] of [...incl]
    .filter(([k]) => !k.startsWith("(idle)") && !k.startsWith("(root)"))
    .sort((x, y) => y[1] - x[1])
    .slice(0, top))
    lines.push(`  ${pct(v, busy)}  ${k}`);
  return lines.join("\n");
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop()!)) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write("usage: node profile-summary.js <file.cpuprofile> [top]\n");
    process.exit(2);
  }
  process.stdout.write(
    summarizeProfile(JSON.parse(readFileSync(file, "utf8")) as Profile, Number(process.argv[3] ?? 25)) + "\n",
  );
}
