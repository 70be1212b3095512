/**
 * AsyncQueue: values pushed by one side, read by one consumer as an async
 * iterable. It feeds the request side of the bidirectional calls and carries
 * Control's pushed state changes.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #waiting: ((result: IteratorResult<T, undefined>) => void) | undefined;
  #closed = false;

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
      waiting({ value: item, done: false });
    }
    return true;
  }

  /** Ends the iteration once the values already pushed are read. */
  close(): void {
    this.#closed = true;
    if (this.#items.length === 0) {
      this.#waiting?.({ value: undefined, done: true });
      this.#waiting = undefined;
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T, undefined> {
    return {
      next: () => {
        if (this.#items.length > 0) {
          return Promise.resolve({ value: this.#items.shift() as T, done: false });
        }
        if (this.#closed) {
          return Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve) => {
          this.#waiting = resolve;
        });
      },
      // Connect ends the request side with return() or throw(): both end the queue.
      return: () => this.#end(),
      throw: () => this.#end(),
    };
  }

  #end(): Promise<IteratorResult<T, undefined>> {
    this.#items = [];
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }
}
