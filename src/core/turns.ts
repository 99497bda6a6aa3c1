import { fail } from './errors.js';

/**
 * Runs CPU-bound jobs one at a time, each in its own turn of the event loop: a job starts from a
 * `setImmediate` queued after the previous one finished, so the poll phase (health checks, other
 * requests' I/O) runs between any two jobs. With each job bounded (a budget), no burst of jobs can
 * hold the loop for longer than one of them. At most `maxWaiting` jobs wait; more are refused with
 * `request.rate_limited` (429, Retry-After) rather than queued without bound.
 */
export function createTurnQueue(maxWaiting: number): <T>(job: () => T) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  let waiting = 0;
  return <T>(job: () => T): Promise<T> => {
    if (waiting >= maxWaiting) return Promise.reject(fail('request.rate_limited', 'too many policy evaluations are waiting; retry shortly', { retryAfterSeconds: 1 }));
    waiting++;
    const run = tail
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => {
        waiting--;
        return job();
      });
    tail = run.catch(() => undefined);
    return run;
  };
}

/**
 * Resolves in a later turn of the event loop, after pending I/O has been polled: long jobs that go page
 * by page await it between pages. Awaiting a store call is not enough: an embedded store answers
 * synchronously, so its promises resolve as microtasks and the loop never gets to the sockets.
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
