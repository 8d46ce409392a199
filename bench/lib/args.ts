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

/**
 * A `--<flag> "semi4=--max-semi-space-size=4;opt=--a --b"` value: one named list of Node flags per
 * entry, for the benches that start a target again under other Node/V8 flags. Entries are
 * separated by `;` (a flag's own value may hold `,`); every word must be a flag. `flag` names the
 * option in the error messages.
 */
export function nodeArgVariants(
  spec: string | undefined,
  flag: string,
): { name: string; nodeArgs: string[] }[] {
  if (spec === undefined) return [];
  const want = `${flag} wants name=--node-flag … entries separated by ';'`;
  const seen = new Set<string>();
  return namedEntries(spec, ";", want).map(({ name, value }) => {
    const nodeArgs = value.split(/\s+/).filter(Boolean);
    if (nodeArgs.length === 0 || nodeArgs.some((a) => !a.startsWith("-")))
      throw new Error(`${want}, got ${name}=${value}`);
    if (seen.has(name)) throw new Error(`${flag}: the name ${name} is given twice`);
    seen.add(name);
    return { name, nodeArgs };
  });
}

/** Arguments joined for a shell, quoted where they hold spaces or shell characters. */
export function shellArgs(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}
