/**
 * A one-shot signal for ordering the concurrent steps of a test: `[fired, fire]`, where `fire()` settles `fired`
 * (Node 20 has no Promise.withResolvers).
 */
export function signal(): [fired: Promise<void>, fire: () => void] {
  let fire!: () => void;
  const fired = new Promise<void>((r) => {
    fire = r;
  });
  return [fired, fire];
}
