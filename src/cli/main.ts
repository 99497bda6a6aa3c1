import { Command, CommanderError } from 'commander';
import { registerDb } from './db.js';
import { registerHsm } from './hsm.js';
import { CliError } from './output.js';
import { registerPolicyCheck } from './policy-check.js';
import { registerServe } from './serve.js';
import { registerCollateral } from './collateral.js';
import { registerAudit } from './audit.js';
import { registerLog } from './log.js';
import { registerKey } from './key.js';
import { registerRole } from './role.js';
import { registerClients } from './clients.js';
import { registerSim } from './sim.js';
import { registerDemo } from './demo.js';
import { registerAgent } from './agent.js';
import { registerAttest } from './attest.js';
import { registerToken } from './token.js';
import { registerVerify } from './verify.js';
import { registerConsole } from './console.js';

/**
 * Examples for the commands whose modules do not add their own, keyed by the full command name. Every
 * runnable command shows an example under --help (test/docs.test.ts checks it).
 */
const EXAMPLES: Record<string, string> = {
  'conclave collateral export': 'conclave collateral export bundle.json --data-dir ./data',
  'conclave collateral import': 'conclave collateral import bundle.json --data-dir ./data',
  'conclave collateral status': 'conclave collateral status --url https://127.0.0.1:8443 --data-dir ./data',
  'conclave collateral baseline': 'conclave collateral baseline --dry-run \'{"default":{"tcbEvaluationDataNumber":17}}\'',
  'conclave collateral refresh': 'conclave collateral refresh --url https://127.0.0.1:8443 --data-dir ./data',
  'conclave collateral qcnl-config': 'conclave collateral qcnl-config --url https://conclave.example:8443 --ca ./data/tls/ca.pem > /etc/sgx_default_qcnl.conf',
  'conclave db migrate': 'conclave db migrate --db postgres://postgres@127.0.0.1:5432/conclave',
  'conclave hsm info': "conclave hsm info --hsm 'pkcs11:module=/usr/lib/softhsm/libsofthsm2.so;token=conclave;pin-source=env:HSM_PIN'",
  'conclave hsm unpin-service-key': 'conclave hsm unpin-service-key release-signing:vault.example.com --data-dir ./data',
  'conclave key get': 'conclave key get app-key --output json',
  'conclave key list': 'conclave key list --output table',
  'conclave key versions': 'conclave key versions app-key',
  'conclave key rotate': 'conclave key rotate app-key',
  'conclave key delete': 'conclave key delete app-key',
  'conclave key recover': 'conclave key recover app-key',
  'conclave key purge': 'conclave key purge app-key',
  'conclave key import': 'conclave key import app-key --jwk private.jwk.json --hsm',
  'conclave key update': 'conclave key update app-key --disable --tags team=payments',
  'conclave key backup': 'conclave key backup app-key --file app-key.backup',
  'conclave key restore': 'conclave key restore --file app-key.backup',
  'conclave key encrypt': 'conclave key encrypt app-key --alg RSA-OAEP-256 --value aGVsbG8',
  'conclave key decrypt': 'conclave key decrypt app-key --alg RSA-OAEP-256 --value @ciphertext.b64',
  'conclave key wrap': 'conclave key wrap app-key --alg RSA-OAEP --value @aes-key.b64',
  'conclave key unwrap': 'conclave key unwrap app-key --alg RSA-OAEP --value @wrapped.b64',
  'conclave key sign': 'conclave key sign app-key --alg PS256 --digest @digest.b64',
  'conclave key verify': 'conclave key verify app-key --alg PS256 --digest @digest.b64 --signature @sig.b64',
  'conclave client create': 'conclave client create app-agent --out ./agent-client.json',
  'conclave role assign': 'conclave role assign --principal <client-id> --role "Key Vault Crypto Service Release User" --scope /keys/app-key',
  'conclave role list': 'conclave role list --output table',
  'conclave role remove': 'conclave role remove <assignment-id>',
  'conclave policy check': 'conclave policy check --policy policy.json --token token.json',
};

function addExamples(cmd: Command, path: string[] = []): void {
  const name = [...path, cmd.name()].join(' ');
  const example = EXAMPLES[name];
  if (example) cmd.addHelpText('after', `\nExample:\n  ${example}\n`);
  for (const sub of cmd.commands) addExamples(sub, [...path, cmd.name()]);
}

export function buildProgram(): Command {
  const program = new Command('conclave')
    .description('Conclave: self-hosted Azure Key Vault (Secure Key Release), Azure Attestation and THIM/PCCS collateral cache')
    .version('0.1.0')
    .option('--debug', 'show stack traces on errors')
    .configureHelp({ helpWidth: 100 })
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerServe(program);
  registerCollateral(program);
  registerAgent(program);
  registerAttest(program);
  registerToken(program);
  registerVerify(program);
  registerDb(program);
  registerHsm(program);
  registerSim(program);
  registerDemo(program);
  registerKey(program);
  registerRole(program);
  registerClients(program);
  registerAudit(program);
  registerLog(program);
  registerConsole(program);
  registerPolicyCheck(program.command('policy').description('key release policy tools'));
  addExamples(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2;
    }
    const debug = argv.includes('--debug');
    if (e instanceof CliError) {
      process.stderr.write(`error: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ''}`);
      return e.exitCode;
    }
    const err = e as { code?: string; message?: string; stack?: string };
    process.stderr.write(`error: ${err.message ?? String(e)}${err.code ? ` (${err.code})` : ''}\n`);
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    else process.stderr.write('hint: run with --debug for details\n');
    return 1;
  }
}
