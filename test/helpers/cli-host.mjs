// A long-lived process that runs the compiled CLI (dist/src/cli/main.js, what bin/conclave.js runs) once per
// message, so a test pays Node's start-up and module loading once per file instead of once per command.
// Under node --test a test file's own stdout carries the runner's protocol, hence a child process: here
// stdout and stderr are captured per run. Commands run one at a time; each sees the environment it was
// given (the caller's whole environment), and process.exitCode is reset around it as a fresh process would have it.
import { main } from '../../dist/src/cli/main.js';

const write = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
let queue = Promise.resolve();

function capture(stream, sink) {
  stream.write = (chunk, encoding, cb) => {
    sink.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const done = typeof encoding === 'function' ? encoding : cb;
    if (typeof done === 'function') done();
    return true;
  };
}

async function run({ id, args, env }) {
  // The caller's whole environment, as a process of its own would inherit it.
  const saved = { ...process.env };
  for (const k of Object.keys(process.env)) if (!(k in env)) delete process.env[k];
  Object.assign(process.env, env);
  const out = [];
  const err = [];
  capture(process.stdout, out);
  capture(process.stderr, err);
  process.exitCode = undefined;
  let code;
  try {
    code = await main(args);
  } catch (e) {
    err.push(String(e?.stack ?? e));
    code = 70;
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
    process.exitCode = undefined;
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
  process.send({ id, code, stdout: out.join(''), stderr: err.join('') });
}

process.on('message', (m) => {
  queue = queue.then(() => run(m));
});
process.on('disconnect', () => process.exit(0));
