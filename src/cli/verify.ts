import type { Command } from 'commander';
import { verifySnpCommand } from './verify-snp.js';

/** `conclave verify quote|snp`: offline verification of evidence files, printing the result JSON. */
export function registerVerify(program: Command): void {
  const verify = program.command('verify').description('verify attestation evidence offline against vendor roots and collateral');
  verify
    .command('snp')
    .argument('<evidence-file>', 'SNP report (raw), Azure HCL report / trustee evidence JSON, or MAA SevSnpVm JSON')
    .description('verify AMD SEV-SNP evidence: report signature, VCEK/VLEK chain to the pinned AMD root, runtime-data binding')
    .option('--vcek <file>', 'VCEK/VLEK certificate (DER or PEM, optionally followed by ASK and ARK), or THIM AMD JSON')
    .option('--chain <file>', 'ASK/ASVK and ARK (PEM as KDS cert_chain serves it)')
    .option('--kds <url>', 'AMD KDS-compatible base URL to fetch the VCEK from')
    .option('--format <format>', 'raw|azure-hcl|maa-json (default: detected)')
    .option('--runtime-data <file>', 'runtime data the report must bind')
    .option('--init-time-data <file>', 'init-time data (container security policy) HOST_DATA must bind')
    .option('--at <iso8601>', 'verification time (default now)')
    .addHelpText('after', '\nExample:\n  conclave verify snp report.bin --vcek vcek.pem --at 2025-06-01T00:00:00Z\n\nExit codes: 0 verified, 1 verification failed, 2 usage or I/O error.')
    .action(async (file: string, opts: Record<string, string>) => {
      process.exitCode = await verifySnpCommand(file, opts);
    });
}
