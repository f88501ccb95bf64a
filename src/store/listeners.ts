/** The lost/restored listeners every store keeps; a throwing listener does not stop the others. */
export class StoreListeners {
  readonly #lost = new Set<(error: Error) => void>();
  readonly #restored = new Set<() => void>();

  onLost(listener: (error: Error) => void): () => void {
    this.#lost.add(listener);
    return () => this.#lost.delete(listener);
  }

  onRestored(listener: () => void): () => void {
    this.#restored.add(listener);
    return () => this.#restored.delete(listener);
  }

  lost(error: Error): void {
    for (const listener of [...this.#lost]) {
      try {
        listener(error);
      } catch {
        // A listener's trouble is its own.
      }
    }
  }

  restored(): void {
    for (const listener of [...this.#restored]) {
      try {
        listener();
      } catch {
        // A listener's trouble is its own.
      }
    }
  }

  clear(): void {
    this.#lost.clear();
    this.#restored.clear();
  }
}
