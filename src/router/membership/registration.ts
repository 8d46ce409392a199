/**
 * Self-registration: a sidecar started with `--router <admin URL>` posts
 * `{"dataUrl": "...", "controlUrl": "..."}` to `/v1/register` and renews it periodically. An entry
 * that is not renewed within `registrationTtlMs` expires, so a sidecar that vanished without saying
 * goodbye leaves the pool; a router that restarts is filled again by the next renewals.
 *
 * Registration changes where the router sends client traffic, so it is never open: it needs the
 * shared token (see admin.ts), and only http(s) origins of bounded length are accepted. The registry
 * is bounded too (`--max-registrations`): a registrant that holds the token but misbehaves cannot
 * grow it, and the set of servers the router polls, without limit.
 */
import {
  DEFAULT_MAX_REGISTRATIONS,
  defaultControlUrl,
  DEFAULT_POOL,
  parseOrigin,
  type ServerAddress,
} from "../config.js";
import { ConfigError } from "../../shared/errors.js";

/**
 * Longest `dataUrl` / `controlUrl` accepted, in characters. An origin is at most scheme, a 253-byte
 * DNS name and a port (~270); anything longer is not an address.
 */
export const MAX_REGISTRATION_URL_LENGTH = 512;

export interface Registration {
  readonly pool: string;
  readonly address: ServerAddress;
}

/** Validates a registration body. Returns an error message (for a 400) instead of throwing. */
export function parseRegistration(
  body: unknown,
  sidecarControlPort: number,
  knownPools: ReadonlySet<string>,
): Registration | { error: string } {
  if (body === null || typeof body !== "object" || Array.isArray(body))
    return { error: "body must be a JSON object" };
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (k !== "dataUrl" && k !== "controlUrl" && k !== "pool") return { error: `unknown field "${k}"` };
  }
  if (typeof b.dataUrl !== "string")
    return { error: "dataUrl must be a string such as http://10.0.0.7:8080" };
  if (b.controlUrl !== undefined && typeof b.controlUrl !== "string")
    return { error: "controlUrl must be a string" };
  for (const [name, v] of [
    ["dataUrl", b.dataUrl],
    ["controlUrl", b.controlUrl],
  ] as const) {
    if (v !== undefined && v.length > MAX_REGISTRATION_URL_LENGTH)
      return { error: `${name} is longer than ${MAX_REGISTRATION_URL_LENGTH} characters` };
  }
  const pool = b.pool ?? DEFAULT_POOL;
  if (typeof pool !== "string" || !knownPools.has(pool))
    return { error: `unknown pool ${JSON.stringify(pool)}` };
  try {
    const dataUrl = parseOrigin(b.dataUrl, "dataUrl");
    const controlUrl =
      b.controlUrl !== undefined
        ? parseOrigin(b.controlUrl, "controlUrl")
        : defaultControlUrl(dataUrl, sidecarControlPort);
    return { pool, address: { dataUrl, controlUrl } };
  } catch (err) {
    if (err instanceof ConfigError) return { error: err.message.replace(/^router: /, "") };
    throw err;
  }
}

export interface RegistryDeps {
  readonly onAdd: (reg: Registration) => void;
  readonly onRemove: (pool: string, dataUrl: string) => void;
}

/** What {@link Registry.register} did: a new entry, a renewal, or a refusal because the registry is full. */
export type RegisterOutcome = "added" | "renewed" | "full";

/** Registered servers and when each expires. Pure: `now` comes from the caller's clock. */
export class Registry {
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #deps: RegistryDeps;
  readonly #entries = new Map<string, { reg: Registration; expiresAtMs: number }>();

  /** `maxEntries` bounds the entries of all pools together; 0 refuses every registration. */
  constructor(ttlMs: number, deps: RegistryDeps, maxEntries = DEFAULT_MAX_REGISTRATIONS) {
    this.#ttlMs = ttlMs;
    this.#deps = deps;
    this.#maxEntries = maxEntries;
  }

  /**
   * Registers or renews. A renewal always succeeds (a server already in is never dropped for being
   * one too many); a new server is refused while the registry is full of entries still in date.
   */
  register(reg: Registration, now: number): RegisterOutcome {
    const key = `${reg.pool} ${reg.address.dataUrl}`;
    const known = this.#entries.get(key);
    if (!known && this.#entries.size >= this.#maxEntries) {
      // Entries past their TTL would be dropped by the next expiry tick anyway: make room now.
      this.expire(now);
      if (this.#entries.size >= this.#maxEntries) return "full";
    }
    this.#entries.set(key, { reg, expiresAtMs: now + this.#ttlMs });
    if (known) return "renewed";
    this.#deps.onAdd(reg);
    return "added";
  }

  unregister(pool: string, dataUrl: string): boolean {
    const key = `${pool} ${dataUrl}`;
    if (!this.#entries.delete(key)) return false;
    this.#deps.onRemove(pool, dataUrl);
    return true;
  }

  /** Drops entries not renewed in time. */
  expire(now: number): void {
    for (const [key, e] of this.#entries) {
      if (e.expiresAtMs <= now) {
        this.#entries.delete(key);
        this.#deps.onRemove(e.reg.pool, e.reg.address.dataUrl);
      }
    }
  }

  expiresInMs(pool: string, dataUrl: string, now: number): number | undefined {
    const e = this.#entries.get(`${pool} ${dataUrl}`);
    return e ? e.expiresAtMs - now : undefined;
  }

  get size(): number {
    return this.#entries.size;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  get maxEntries(): number {
    return this.#maxEntries;
  }
}
