// The checkpoint is a low watermark: the greatest key such that it and every
// key listed before it are finished. Objects finish out of order; the window of
// started-but-not-watermarked keys is bounded by the caller.

export interface Slot<T> {
  key: string;
  done: boolean;
  value?: T;
}

/**
 * Slots are committed (passed to `commit`) strictly in listing order, as the
 * watermark passes them: counters built from commits always agree with the
 * checkpoint, so saved with it they are the base of a resumed run, which
 * neither loses nor double-counts an object. (Progress counts objects as they
 * finish, apart from this: see tally.ts.)
 */
export class Watermark<T> {
  private readonly slots: Slot<T>[] = [];
  private head = 0;
  private mark: string | undefined;

  constructor(
    startAfter: string | undefined,
    private readonly commit: (key: string, value: T) => void,
  ) {
    this.mark = startAfter || undefined;
  }

  /** Registers a key in listing order; call finish() with the returned slot. */
  begin(key: string): Slot<T> {
    const slot: Slot<T> = { key, done: false };
    this.slots.push(slot);
    return slot;
  }

  finish(slot: Slot<T>, value: T): void {
    slot.done = true;
    slot.value = value;
    while (this.head < this.slots.length && this.slots[this.head]!.done) {
      const done = this.slots[this.head]!;
      this.mark = done.key;
      this.head++;
      this.commit(done.key, done.value as T);
      done.value = undefined;
    }
    // Drop the finished prefix now and then so memory stays bounded.
    if (this.head > 1024 && this.head * 2 > this.slots.length) {
      this.slots.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Keys begun but not yet under the watermark. */
  get pending(): number {
    return this.slots.length - this.head;
  }

  get value(): string | undefined {
    return this.mark;
  }
}
