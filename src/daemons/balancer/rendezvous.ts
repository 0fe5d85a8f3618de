/**
 * Rendezvous (highest random weight) hashing: every balancer ranks the hypervisors for a user
 * the same way from the names alone, and removing or adding one hypervisor moves only the users
 * whose first choice it was. The user's first choice among all configured hypervisors is their
 * home: the one that settles where their lease lives (docs/balancer.md). Pure: no I/O.
 */
export function rendezvousOrder(user: string, names: readonly string[]): string[] {
  const u = hash32(user, 0x9747b28c);
  return names
    .map((name) => ({ name, weight: mix32(u ^ hash32(name, 0x5bd1e995)) }))
    .sort((a, b) => b.weight - a.weight || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((x) => x.name);
}

/** FNV-1a over the UTF-16 code units, seeded, then finalized. */
function hash32(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return mix32(h);
}

/** murmur3's finalizer: every input bit affects every output bit. */
function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}
