import { Command, CommanderError } from 'commander';
import { registerDb } from './db.js';
import { registerHsm } from './hsm.js';
import { CliError } from './output.js';
import { registerPolicyCheck } from './policy-check.js';
import { registerServe } from './serve.js';
import { registerCollateral } from './collateral.js';
import { registerAudit } from './audit.js';
import { registerKey } from './key.js';
import { registerRole } from './role.js';
import { registerSim } from './sim.js';
import { registerDemo } from './demo.js';
import { registerAgent } from './agent.js';
import { registerAttest } from './attest.js';
import { registerToken } from './token.js';
import { registerVerify } from './verify.js';

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
  registerAudit(program);
  registerPolicyCheck(program.command('policy').description('key release policy tools'));
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
