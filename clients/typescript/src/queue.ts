/**
 * AsyncQueue: values pushed by one side, read by one consumer as an async
 * iterable. It feeds the request side of the bidirectional calls, carries
 * Control's pushed state changes and the WebSocket transport's responses.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #waiting: { resolve: (result: IteratorResult<T, undefined>) => void; reject: (error: unknown) => void } | undefined;
  #closed = false;
  /** Thrown by the iteration after the last value, when close() was given one. */
  #error: unknown;
  /** Set when the reader gave up: values still queued are not read but kept for unread(). */
  #abandoned = false;

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Adds a value; returns false (dropping it) when the queue is closed. */
  push(item: T): boolean {
    if (this.#closed) {
      return false;
    }
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting === undefined) {
      this.#items.push(item);
    } else {
      waiting.resolve({ value: item, done: false });
    }
    return true;
  }

  /**
   * Ends the iteration once the values already pushed are read, by throwing
   * `error` when one is given; a queue closed already stays as it is.
   */
  close(error?: unknown): void {
    if (this.#closed) {
      return;
    }
    this.#closed = true;
    this.#error = error;
    if (this.#items.length === 0 || this.#abandoned) {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      if (waiting !== undefined) {
        this.#finish().then(waiting.resolve, waiting.reject);
      }
    }
  }

  /**
   * Takes the values pushed but never read: those the reader left when it
   * gave up (a call that ended before it sent them) or that are still queued.
   */
  unread(): T[] {
    const items = this.#items;
    this.#items = [];
    return items;
  }

  [Symbol.asyncIterator](): AsyncIterator<T, undefined> {
    return {
      next: () => {
        if (this.#items.length > 0 && !this.#abandoned) {
          return Promise.resolve({ value: this.#items.shift() as T, done: false });
        }
        if (this.#closed) {
          return this.#finish();
        }
        return new Promise((resolve, reject) => {
          this.#waiting = { resolve, reject };
        });
      },
      // Connect ends the request side with return() or throw(): both end the queue.
      return: () => this.#end(),
      throw: () => this.#end(),
    };
  }

  #end(): Promise<IteratorResult<T, undefined>> {
    this.#abandoned = true;
    this.#error = undefined;
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  #finish(): Promise<IteratorResult<T, undefined>> {
    return this.#error === undefined ? Promise.resolve({ value: undefined, done: true }) : Promise.reject(this.#error);
  }
}
