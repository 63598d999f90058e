/** Caps on open event streams (SSE) of this node: per app token and per home, taken when a stream opens and given back when it ends. */
import { requirePositiveInt } from '../../runtime/require-positive-int.ts';

/** Open event streams one node serves at most per app token and per home. */
export interface SseLimit {
  /** Per app token (the admin token is counted per home only). */
  readonly perToken: number;
  /** Per home, whoever opened them. */
  readonly perHome: number;
}

/** The defaults of SSE_MAX_PER_TOKEN and SSE_MAX_PER_HOME. */
export const DEFAULT_SSE_LIMIT: SseLimit = { perToken: 16, perHome: 64 };

/** A stream may open: call `release` once it ended (later calls do nothing). */
export interface SlotTaken {
  readonly ok: true;
  readonly release: () => void;
}

/** A stream may not open: `scope` is the cap it would pass, `limit` its size. */
export interface SlotRefused {
  readonly ok: false;
  readonly scope: 'token' | 'home';
  readonly limit: number;
}

/**
 * Counts open streams by token key and by home. Each stream holds a connection, a feed
 * subscription and timers until its client leaves, so without a cap one token could hold a
 * node's sockets. Counts are per node: a client spread over N nodes may hold N times the cap.
 * Keys whose count falls to zero are dropped, so the maps hold only open streams.
 */
export class EventStreamSlots {
  private readonly byToken = new Map<string, number>();
  private readonly byHome = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly limit: SseLimit = DEFAULT_SSE_LIMIT,
    /** Told the number of open streams after every change (the open-streams gauge). */
    private readonly onChange: (open: number) => void = () => {},
  ) {
    for (const name of ['perToken', 'perHome'] as const) requirePositiveInt(`sseLimit.${name}`, limit[name]);
  }

  /** Open streams on this node. */
  get open(): number {
    return this.total;
  }

  /** Open streams of one home (for tests and introspection). */
  openForHome(homeId: string): number {
    return this.byHome.get(homeId) ?? 0;
  }

  /**
   * Takes a slot for a stream of `homeId` opened by `tokenKey` (an app token's digest;
   * undefined for the admin token, which only the home cap applies to), or says which cap is full.
   */
  take(tokenKey: string | undefined, homeId: string): SlotTaken | SlotRefused {
    if (tokenKey !== undefined && (this.byToken.get(tokenKey) ?? 0) >= this.limit.perToken)
      return { ok: false, scope: 'token', limit: this.limit.perToken };
    if ((this.byHome.get(homeId) ?? 0) >= this.limit.perHome) return { ok: false, scope: 'home', limit: this.limit.perHome };
    if (tokenKey !== undefined) bump(this.byToken, tokenKey, 1);
    bump(this.byHome, homeId, 1);
    this.onChange(++this.total);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        if (tokenKey !== undefined) bump(this.byToken, tokenKey, -1);
        bump(this.byHome, homeId, -1);
        this.onChange(--this.total);
      },
    };
  }
}

function bump(counts: Map<string, number>, key: string, by: 1 | -1): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n <= 0) counts.delete(key);
  else counts.set(key, n);
}
