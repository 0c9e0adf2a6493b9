/** A bounded set of recently seen ids (insertion-ordered eviction), to skip redelivered alerts. */
export function createRecentSet(capacity: number): { has(id: string): boolean; add(id: string): void } {
  const ids = new Set<string>();
  return {
    has: (id) => ids.has(id),
    add(id) {
      ids.add(id);
      if (ids.size > capacity) ids.delete(ids.values().next().value as string);
    },
  };
}
