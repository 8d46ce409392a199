#!/usr/bin/env node
/**
 * The `tasklb` command. Subcommands live in their role's folder and are loaded on demand, so
 * `tasklb sidecar` never loads router or demo code. Each `main` parses its configuration once,
 * binds its ports, handles SIGTERM/SIGINT (graceful drain) and resolves when it has shut down.
 */
import { ConfigError } from "./shared/errors.js";

interface Command {
  readonly summary: string;
  readonly load: () => Promise<{ main(argv: string[], env: NodeJS.ProcessEnv): Promise<number | void> }>;
}

const COMMANDS: Record<string, Command> = {
  sidecar: {
    summary: "run beside an application server: proxy every call, time top-level calls, report load",
    load: () => import("./sidecar/main.js"),
  },
  router: {
    summary: "poll the sidecars, rank the servers and forward (or refer) each request to the best one",
    load: () => import("./router/main.js"),
  },
  demo: {
    summary: "start a local demo cluster (apps of different speeds, sidecars, a router, load) and watch it",
    load: () => import("./demo/main.js"),
  },
  simulate: {
    summary: "run the balancers against a simulated fleet (hundreds of servers, many routers)",
    load: () => import("./sim/main.js"),
  },
};

function usage(): string {
  const lines = ["Usage: tasklb <command> [flags]", "", "Commands:"];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  lines.push("", "Run `tasklb <command> --help` for the flags of a command.");
  return lines.join("\n") + "\n";
}

async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-v") {
    const { createRequire } = await import("node:module");
    const pkg = createRequire(import.meta.url)("../../package.json") as { version: string };
    process.stdout.write(pkg.version + "\n");
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`tasklb: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const mod = await command.load();
  const code = await mod.main(rest, process.env);
  return typeof code === "number" ? code : 0;
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`tasklb: ${err.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`tasklb: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
