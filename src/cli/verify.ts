import type { Command } from 'commander';
import { verifyGpuCommand } from './verify-gpu.js';
import { verifyQuoteCommand } from './verify-quote.js';
import { verifySnpCommand } from './verify-snp.js';

/** `conclave verify quote|snp|gpu`: offline verification of evidence files, printing the result JSON. */
export function registerVerify(program: Command): void {
  const verify = program.command('verify').description('verify attestation evidence offline against vendor roots and collateral');
  verify
    .command('quote')
    .argument('<quote-file>', 'DCAP quote: binary, hex, 0x-prefixed hex or base64')
    .description('verify an Intel SGX/TDX DCAP quote: PCK chain to the Intel root, CRLs, TCB info, QE identity, signatures')
    .option('--collateral <file>', 'QvE-style collateral JSON (pck_crl_issuer_chain, root_ca_crl, pck_crl, tcb_info, …)')
    .option('--pccs <url>', 'fetch collateral from a PCS/PCCS/THIM-compatible base URL')
    .option('--at <iso8601>', 'verification time (default now)')
    .option('--freshness <policy>', 'strict (every nextUpdate enforced) or azure (collateral nextUpdate not enforced)', 'strict')
    .option('--ca-file <file>', 'extra CA certificate (PEM) to trust for --pccs')
    .option('--timeout <seconds>', 'one total deadline for the --pccs fetch, connect to last byte (default 30)')
    .addHelpText('after', '\nExample:\n  conclave verify quote quote.bin --collateral collateral.json --at 2025-06-20T00:00:00Z\n\nExit codes: 0 verified, 1 verification failed, 2 usage or I/O error.')
    .action(async (file: string, opts: Record<string, string>) => {
      process.exitCode = await verifyQuoteCommand(file, opts);
    });
  verify
    .command('snp')
    .argument('<evidence-file>', 'SNP report (binary, hex, 0x-hex or base64), Azure HCL report / trustee evidence JSON, or MAA SevSnpVm JSON')
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
  verify
    .command('gpu')
    .argument('<evidence-file>', "GPU attestation report (binary, hex, 0x-hex or base64), or NVIDIA's serialised evidence JSON")
    .description('verify NVIDIA GPU evidence: report signature, device chain to the pinned NVIDIA root, FWID, and measurements against signed RIMs')
    .option('--chain <file>', 'attestation certificate chain (PEM, leaf first) for a bare report')
    .option('--rim <dir>', 'directory of driver and VBIOS RIMs (SWID XML); one valid RIM per version')
    .option('--nonce <hex>', 'the 32-byte nonce the report must answer (default: not checked for a bare report)')
    .option('--at <iso8601>', 'verification time (default now)')
    .addHelpText('after', '\nExample:\n  conclave verify gpu report.bin --chain chain.pem --rim rims/ --at 2024-01-01T00:00:00Z\n\nExit codes: 0 verified (with --rim: every measurement matched), 1 verification failed, 2 usage or I/O error.')
    .action(async (file: string, opts: Record<string, string>) => {
      process.exitCode = await verifyGpuCommand(file, opts);
    });
}
