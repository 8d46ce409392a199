/** Minimal flag parsing for the bench commands: `--name value`, `--name=value` and bare `--flag`. */
export function parseArgs(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf("=");
    if (eq > 0) out.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith("--")) out.set(a.slice(2), argv[++i]!);
    else out.set(a.slice(2), "true");
  }
  return out;
}

export function num(args: Map<string, string>, name: string, dflt: number): number {
  const v = args.get(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${v}`);
  return n;
}

export function list(args: Map<string, string>, name: string): string[] | undefined {
  const v = args.get(name);
  return v === undefined
    ? undefined
    : v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
}

/**
 * The `name=value` entries of a list flag (`--builds a=dir,b=dir`), trimmed, empty ones skipped.
 * An entry without a name throws `${want}, got <entry>`.
 */
export function namedEntries(
  spec: string,
  separator: string,
  want: string,
): { name: string; value: string }[] {
  return spec
    .split(separator)
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const eq = s.indexOf("=");
      if (eq <= 0) throw new Error(`${want}, got ${s}`);
      return { name: s.slice(0, eq), value: s.slice(eq + 1).trim() };
    });
}
